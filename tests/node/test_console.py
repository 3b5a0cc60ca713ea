"""The web console (`/console/` on the admin port), over HTTP against real nodes: login refused
and accepted, the session cookie (HttpOnly, SameSite=Strict, no secret, expiry, forgery, a
changed secret), CSRF and cross-origin refusals, read-only mode, what root and a plain user may
see, the bucket browser (prefixes, pagination, upload, download, delete) and hostile keys
escaped on every page. The headless-browser test is test_console_browser.py."""

from __future__ import annotations

import base64
import html
import http.client
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from anode_procs import ACCESS_KEY, SECRET_KEY, ClusterFront, NodeProcess
from botocore.exceptions import ClientError
from markupsafe import escape

BOB_KEY, BOB_SECRET = "AKBOBCONSOLE", "bob-console-secret-key-1"
BOB = f'\n[[users]]\nname = "bob"\naccess_key = "{BOB_KEY}"\nsecret_key = "{BOB_SECRET}"\n'
HOSTILE_KEYS = [
    "<script>alert('k')</script>.txt",
    "dir/\"quoted\" & 'single' <img src=x onerror=alert(1)>.txt",
    "dir/ünïcødé/日本語 ファイル.txt",
    "dir/javascript:alert(1)",
    "../../etc/passwd",
    "a/./b/../c",
    "%2e%2e/%3Cscript%3E",
    "tab\tand\u202eRLO.txt",
]


class Console:
    """A browser-like client: a cookie jar, forms posted with their CSRF token and Origin."""

    def __init__(self, node: NodeProcess) -> None:
        self.base = node.admin_url + "/console"
        self.http = requests.Session()
        self.http.headers["Origin"] = node.admin_url

    def login(
        self, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY
    ) -> requests.Response:
        return self.post("/login", {"access_key": access_key, "secret_key": secret_key})

    def get(self, path: str, **params: str) -> requests.Response:
        return self.http.get(self.base + path, params=params, allow_redirects=False, timeout=30)

    def post(self, path: str, data: dict, files: dict | None = None) -> requests.Response:
        return self.http.post(
            self.base + path, data=data, files=files, allow_redirects=False, timeout=30
        )

    def csrf(self) -> str:
        page = self.get("/buckets").text
        return re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)


def logged_in(
    node: NodeProcess, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY
) -> Console:
    console = Console(node)
    assert console.login(access_key, secret_key).status_code == 303
    return console


@pytest.fixture(scope="module")
def writable(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    config = BOB + '\n[console]\nwrites = true\npage_size = 3\nmax_upload = "64KiB"\n'
    config += "\n[audit]\nenabled = true\n"
    proc = NodeProcess(tmp_path_factory.mktemp("console") / "data", extra_config=config)
    yield proc.start()
    proc.stop()


@pytest.fixture(scope="module")
def readonly(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    config = BOB + '\n[console]\nsession_ttl = "3s"\n'
    proc = NodeProcess(tmp_path_factory.mktemp("console-ro") / "data", extra_config=config)
    yield proc.start()
    proc.stop()


def test_login_refused_without_the_right_secret(writable: NodeProcess) -> None:
    console = Console(writable)
    for access_key, secret in [
        (ACCESS_KEY, "wrong"),
        ("AKNOSUCH", SECRET_KEY),
        (ACCESS_KEY, ""),
        (BOB_KEY, SECRET_KEY),
        ("", ""),
    ]:
        answer = console.login(access_key, secret)
        assert answer.status_code == 401, (access_key, secret)
        assert "Wrong access key or secret key." in answer.text
        assert "Set-Cookie" not in answer.headers
    redirect = console.get("/buckets")
    assert redirect.status_code == 303 and redirect.headers["Location"] == "/console/login"


def test_login_sets_a_short_lived_strict_httponly_cookie_without_the_secret(
    writable: NodeProcess,
) -> None:
    answer = Console(writable).login()
    assert answer.status_code == 303
    cookie = answer.headers["Set-Cookie"]
    assert re.search(r"\bHttpOnly\b", cookie) and "SameSite=Strict" in cookie
    assert "Max-Age=1800" in cookie and "Path=/console/" in cookie
    value = cookie.split(";")[0].split("=", 1)[1]
    payload = base64.urlsafe_b64decode(value.split(".")[0] + "==").decode()
    assert ACCESS_KEY in payload and SECRET_KEY not in payload and SECRET_KEY not in value
    page = Console(writable)
    page.http.cookies.set("anode_console", value)
    assert page.get("/buckets").status_code == 200
    assert 'type="password"' in Console(writable).get("/login").text


def test_forged_or_stale_cookies_are_refused(writable: NodeProcess) -> None:
    console = logged_in(writable, BOB_KEY, BOB_SECRET)
    value = console.http.cookies["anode_console"]
    payload, mac = value.split(".")
    forged_payload = (
        base64.urlsafe_b64encode(
            base64.urlsafe_b64decode(payload + "==").replace(BOB_KEY.encode(), ACCESS_KEY.encode())
        )
        .rstrip(b"=")
        .decode()
    )
    for bad in [f"{forged_payload}.{mac}", f"{payload}.{mac[:-2]}AA", "garbage", ".", ""]:
        other = Console(writable)
        other.http.cookies.set("anode_console", bad)
        assert other.get("/buckets").status_code == 303, bad
    # a new secret ends the user's sessions; so does deleting the user
    carol = {"name": "carol", "access_key": "AKCAROL", "secret_key": "carol-secret-1"}
    assert writable.admin("/users", method="POST", body=carol)[0] == 201
    session = logged_in(writable, "AKCAROL", "carol-secret-1")
    assert session.get("/buckets").status_code == 200
    assert writable.admin("/users/carol", method="DELETE")[0] == 204
    assert (
        writable.admin("/users", method="POST", body={**carol, "secret_key": "new-secret-2"})[0]
        == 201
    )
    assert session.get("/buckets").status_code == 303
    fresh = logged_in(writable, "AKCAROL", "new-secret-2")
    assert fresh.get("/buckets").status_code == 200
    assert writable.admin("/users/carol", method="DELETE")[0] == 204
    assert fresh.get("/buckets").status_code == 303
    assert console.get("/buckets").status_code == 200  # bob's own session is untouched


def test_root_sees_cluster_users_and_every_bucket(writable: NodeProcess) -> None:
    root = writable.client()
    root.create_bucket(Bucket="root-bucket")
    writable.client(BOB_KEY, BOB_SECRET).create_bucket(Bucket="bob-bucket")
    console = logged_in(writable)
    assert console.get("/").headers["Location"] == "/console/cluster"
    assert console.get("").headers["Location"] == "/console/"
    missing = console.get("/no-such-page")
    assert missing.status_code == 404 and "There is no such page." in missing.text
    cluster = console.get("/cluster").text
    assert 'id="health">ready<' in cluster and "test-node" in cluster
    users = console.get("/users").text
    assert BOB_KEY in users and "bob" in users and BOB_SECRET not in users
    buckets = console.get("/buckets").text
    assert "root-bucket" in buckets and "bob-bucket" in buckets
    settings = console.get("/buckets/root-bucket").text
    assert "Versioning" in settings and "Default encryption" in settings


def test_a_plain_user_sees_only_what_s3_lets_them(writable: NodeProcess) -> None:
    writable.client().create_bucket(Bucket="root-only")
    writable.client().put_object(Bucket="root-only", Key="secret.txt", Body=b"root data")
    writable.client(BOB_KEY, BOB_SECRET).create_bucket(Bucket="bobs")
    bob = logged_in(writable, BOB_KEY, BOB_SECRET)
    assert bob.get("/").headers["Location"] == "/console/buckets"
    assert bob.get("/cluster").status_code == 403 and bob.get("/users").status_code == 403
    buckets = bob.get("/buckets").text
    assert "bobs" in buckets and "root-only" not in buckets
    assert bob.get("/buckets/root-only").status_code == 404
    refused = bob.get("/browse/root-only")
    assert refused.status_code == 403 and "AccessDenied" in refused.text
    download = bob.get("/download/root-only", key="secret.txt")
    assert download.status_code == 403 and b"root data" not in download.content
    assert bob.get("/browse/bobs").status_code == 200


def test_browser_lists_prefixes_and_pages(writable: NodeProcess) -> None:
    s3 = writable.client()
    s3.create_bucket(Bucket="paged")
    keys = [f"top-{i}.txt" for i in range(7)] + ["folder/a.txt", "folder/sub/b.txt"]
    for key in keys:
        s3.put_object(Bucket="paged", Key=key, Body=key.encode())
    console = logged_in(writable)
    seen, folders, token, pages = [], [], None, 0
    while True:
        page = console.get("/browse/paged", **({"token": token} if token else {})).text
        pages += 1
        seen += re.findall(r'<td class="mono key">([^<]*)</td>', page)
        folders += re.findall(
            r'<tr class="folder"><td><a href="[^"]*" class="mono">([^<]*)</a>', page
        )
        match = re.search(r'href="([^"]*)" id="next-page"', page)
        if not match:
            break
        token = re.search(r"token=([^&\"]+)", html.unescape(match.group(1))).group(1)
        token = requests.utils.unquote(token)
    assert pages == 3  # 8 entries (7 keys and one folder), 3 per page
    assert sorted(seen) == sorted(k for k in keys if "/" not in k) and folders == ["folder/"]
    inner = console.get("/browse/paged", prefix="folder/").text
    assert re.findall(r'<td class="mono key">([^<]*)</td>', inner) == ["a.txt"]
    assert 'prefix=folder%2Fsub%2F"' in inner
    assert '<a href="/console/browse/paged?prefix=folder%2F">folder/</a>' in inner


def test_hostile_keys_are_escaped_on_every_page_and_download_exactly(
    writable: NodeProcess,
) -> None:
    s3 = writable.client()
    s3.create_bucket(Bucket="hostile")
    for key in HOSTILE_KEYS:
        s3.put_object(Bucket="hostile", Key=key, Body=b"body of " + key.encode())
    console = logged_in(writable)
    pages = [
        console.get("/browse/hostile", prefix=prefix).text
        for prefix in ["", "dir/", "dir/ünïcødé/", "<script>alert('k')</", "a/./b/../"]
    ]
    every = "\n".join(pages)
    assert "<script>" not in every and "<img" not in every
    assert "&lt;script&gt;alert(&#39;k&#39;)&lt;/" in every
    assert "&#34;quoted&#34; &amp; &#39;single&#39; &lt;img src=x onerror=alert(1)&gt;.txt" in every
    assert "日本語 ファイル.txt" in every
    assert 'href="javascript' not in every
    for key in HOSTILE_KEYS:
        answer = console.get("/download/hostile", key=key)
        assert answer.status_code == 200, key
        assert answer.content == b"body of " + key.encode()
        assert answer.headers["Content-Type"] == "application/octet-stream"
        assert answer.headers["Content-Disposition"].startswith("attachment; ")
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        confirm = console.get("/delete/hostile", key=key).text
        assert f'<pre id="delete-key">{escape(key)}</pre>' in confirm, key
    head = console.get("/browse/hostile").headers
    assert "script-src" not in head["Content-Security-Policy"]
    assert "default-src 'none'" in head["Content-Security-Policy"]
    assert head["X-Frame-Options"] == "DENY"


def test_upload_download_and_delete_with_confirmation(
    writable: NodeProcess, tmp_path: Path
) -> None:
    s3 = writable.client()
    s3.create_bucket(Bucket="files")
    console = logged_in(writable)
    body = bytes(range(256)) * 100
    answer = console.post(
        "/upload/files",
        {"csrf": console.csrf(), "prefix": "in/<dir>/"},
        files={"file": ("ünï <x>.bin", body, "application/x-test")},
    )
    assert answer.status_code == 303
    key = "in/<dir>/ünï <x>.bin"
    got = s3.get_object(Bucket="files", Key=key)
    assert got["Body"].read() == body and got["ContentType"] == "application/x-test"
    listed = console.get(answer.headers["Location"].removeprefix("/console")).text
    assert 'Uploaded <span class="mono">in/&lt;dir&gt;/ünï &lt;x&gt;.bin</span>' in listed
    assert console.get("/download/files", key=key).content == body
    confirm = console.get("/delete/files", key=key)
    assert confirm.status_code == 200 and "Delete this object?" in confirm.text
    s3.head_object(Bucket="files", Key=key)  # a GET of the confirmation deletes nothing
    deleted = console.post("/delete/files", {"csrf": console.csrf(), "key": key})
    assert deleted.status_code == 303
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket="files", Key=key)
    assert e.value.response["Error"]["Code"] == "404"


def test_an_upload_over_the_limit_is_refused(writable: NodeProcess) -> None:
    writable.client().create_bucket(Bucket="small")
    console = logged_in(writable)
    answer = console.post(
        "/upload/small",
        {"csrf": console.csrf(), "prefix": ""},
        files={"file": ("big.bin", b"x" * (64 * 1024 + 1))},
    )
    assert answer.status_code == 413 and "EntityTooLarge" in answer.text
    assert "Contents" not in writable.client().list_objects_v2(Bucket="small")


def test_writes_without_this_sessions_csrf_token_or_from_another_origin_are_refused(
    writable: NodeProcess,
) -> None:
    s3 = writable.client()
    s3.create_bucket(Bucket="guarded")
    s3.put_object(Bucket="guarded", Key="keep.txt", Body=b"keep")
    root = logged_in(writable)
    bob_token = logged_in(writable, BOB_KEY, BOB_SECRET).csrf()
    good = root.csrf()
    for token in ["", "0" * 64, bob_token, good[:-1]]:
        refused = root.post("/delete/guarded", {"csrf": token, "key": "keep.txt"})
        assert refused.status_code == 403 and "InvalidCsrfToken" in refused.text, token
        upload = root.post("/upload/guarded", {"csrf": token}, files={"file": ("new.txt", b"new")})
        assert upload.status_code == 403, token
    cross = root.http.post(
        root.base + "/delete/guarded",
        data={"csrf": good, "key": "keep.txt"},
        headers={"Origin": "http://evil.example"},
        allow_redirects=False,
    )
    assert cross.status_code == 403
    logout = root.post("/logout", {"csrf": bob_token})
    assert logout.status_code == 403
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="guarded")["Contents"]] == ["keep.txt"]
    assert root.post("/logout", {"csrf": good}).status_code == 303


def test_console_requests_are_audited_with_the_user(writable: NodeProcess) -> None:
    """Logins (refused too) and pages are recorded with the console's user as principal; the
    S3 requests the console makes for them carry that user as well."""
    writable.client(BOB_KEY, BOB_SECRET).create_bucket(Bucket="bob-audited")
    Console(writable).login(ACCESS_KEY, "wrong-secret-for-audit")
    bob = logged_in(writable, BOB_KEY, BOB_SECRET)
    bob.get("/static/console.css")
    bob.get("/browse/bob-audited")
    bob.get("/download/bob-audited", key="no <such> key")
    log = writable.data_dir / "audit.log"

    def records() -> list[dict]:
        return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]

    deadline = time.monotonic() + 10
    while not any(r["operation"] == "ConsoleDownload" for r in records()):
        assert time.monotonic() < deadline, "no record of the console download"
        time.sleep(0.1)
    console = [r for r in records() if r["api"] == "admin" and r["operation"].startswith("Console")]
    refused = [r for r in console if r["operation"] == "ConsoleLogin" and r["status"] == 401]
    assert refused and refused[-1]["principal"] == "unauthenticated"
    assert refused[-1]["access_key"] == ACCESS_KEY and refused[-1]["category"] == "auth-failure"
    login = [r for r in console if r["operation"] == "ConsoleLogin" and r["principal"] == "bob"]
    assert login and login[-1]["status"] == 303 and login[-1]["access_key"] == BOB_KEY
    (browse,) = [
        r for r in console if r["operation"] == "ConsoleBrowse" and r["bucket"] == "bob-audited"
    ]
    assert browse["principal"] == "bob" and browse["status"] == 200
    (download,) = [
        r for r in console if r["operation"] == "ConsoleDownload" and r["bucket"] == "bob-audited"
    ]
    assert download["key"] == "no <such> key" and download["status"] == 404
    assert not [r for r in console if r["operation"] == "ConsoleStylesheet"]
    s3 = [r for r in records() if r["api"] == "s3" and r["bucket"] == "bob-audited"]
    assert {(r["operation"], r["principal"]) for r in s3} >= {
        ("ListObjectsV2", "bob"),
        ("GetObject", "bob"),
    }
    text = log.read_text()
    assert "wrong-secret-for-audit" not in text and BOB_SECRET not in text


def test_the_admin_api_still_wants_its_token(writable: NodeProcess) -> None:
    """The console's own login does not open the JSON API next to it, however the path is
    spelled."""
    logged = logged_in(writable)
    assert logged.http.get(writable.admin_url + "/users", timeout=10).status_code == 401
    for path in ["/console/../users", "/console/..%2Fusers", "/console%2F../users"]:
        conn = http.client.HTTPConnection("127.0.0.1", writable.admin_port, timeout=10)
        conn.request("GET", path)
        answer = conn.getresponse()
        assert answer.status in (303, 401, 404), path
        assert b"access_key" not in answer.read(), path
        conn.close()


def test_read_only_console_refuses_writes(readonly: NodeProcess) -> None:
    s3 = readonly.client()
    s3.create_bucket(Bucket="read-only")
    s3.put_object(Bucket="read-only", Key="k.txt", Body=b"data")
    console = logged_in(readonly)
    page = console.get("/browse/read-only").text
    assert "read-only" in page and 'id="upload"' not in page and 'class="delete"' not in page
    token = console.csrf()
    assert console.get("/delete/read-only", key="k.txt").status_code == 403
    deleted = console.post("/delete/read-only", {"csrf": token, "key": "k.txt"})
    assert deleted.status_code == 403 and "ReadOnly" in deleted.text
    upload = console.post("/upload/read-only", {"csrf": token}, files={"file": ("n.txt", b"n")})
    assert upload.status_code == 403
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="read-only")["Contents"]] == ["k.txt"]
    assert console.get("/download/read-only", key="k.txt").content == b"data"  # reads still work


def test_sessions_expire(readonly: NodeProcess) -> None:
    console = logged_in(readonly)
    assert "Max-Age=3" in console.login().headers["Set-Cookie"]
    assert console.get("/buckets").status_code == 200
    token = console.csrf()
    time.sleep(3.5)
    assert console.get("/buckets").headers.get("Location") == "/console/login"
    # the browser drops the cookie at Max-Age; a client that keeps it is refused all the same
    console.http.cookies.set("anode_console", console.http.cookies.get("anode_console") or "")
    assert console.post("/logout", {"csrf": token}).status_code in (401, 303)


def test_the_shared_nodes_console_shows_every_member_and_sessions_work_on_each(node) -> None:
    """On the node (and the 3-node cluster) every S3 test uses: a session made on one member is
    good on every member (the session key comes from the cluster secret)."""
    members = node.cluster.nodes if isinstance(node, ClusterFront) else [node]
    console = logged_in(members[0])
    cookie = console.http.cookies["anode_console"]
    for member in members:
        other = Console(member)
        other.http.cookies.set("anode_console", cookie)
        page = other.get("/cluster")
        assert page.status_code == 200, member.node_id
        assert page.text.count('class="ok">healthy<') == len(members)
        assert f"<strong>{member.node_id}</strong>" in page.text
        assert 'id="health">ready<' in page.text
        assert "read-only" in page.text  # the default


def test_keys_reach_s3_verbatim(writable: NodeProcess) -> None:
    """The console's own S3 requests carry any key byte for byte (quoted, never normalised)."""
    s3 = writable.client()
    s3.create_bucket(Bucket="verbatim")
    console = logged_in(writable)
    for key in ["../x", "./y", "a//b", "sp ace", "q?u#e&r=y", "%41", "+plus"]:
        answer = console.post(
            "/upload/verbatim",
            {"csrf": console.csrf(), "prefix": key},
            files={"file": ("f", key.encode())},
        )
        assert answer.status_code == 303, key
        assert s3.get_object(Bucket="verbatim", Key=key + "f")["Body"].read() == key.encode()
        assert console.get("/download/verbatim", key=key + "f").content == key.encode()
