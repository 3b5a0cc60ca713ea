"""The audit log (`[audit]`): one JSON record per S3 and admin request, refusals included, with
the right principal and result; no secret in it; rotation; a dead webhook never slows requests.

Real nodes, real boto3; records are matched to requests by the request id the client got."""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import botocore
import pytest
from anode_procs import ACCESS_KEY, SECRET_KEY, NodeProcess
from botocore.exceptions import ClientError

BOB_KEY, BOB_SECRET = "AKBOBAUDIT", "bob-audit-secret-key-123"
AUDIT = "\n[audit]\nenabled = true\n"
BOB = f'\n[[users]]\nname = "bob"\naccess_key = "{BOB_KEY}"\nsecret_key = "{BOB_SECRET}"\n'


def read_records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def records_of(path: Path, request_id: str, *, timeout: float = 10) -> list[dict[str, Any]]:
    """The records of one request: written just after the answer was sent, so wait a little."""
    deadline = time.monotonic() + timeout
    while True:
        found = [r for r in read_records(path) if r["request_id"] == request_id]
        if found or time.monotonic() > deadline:
            time.sleep(0.2)  # a second record would have come by now
            return [r for r in read_records(path) if r["request_id"] == request_id]
        time.sleep(0.05)


def metric(node: NodeProcess, line_prefix: str) -> float:
    with urllib.request.urlopen(node.admin_url + "/metrics") as r:
        for line in r.read().decode().splitlines():
            if line.startswith(line_prefix):
                return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{line_prefix} not in /metrics")


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    proc = NodeProcess(tmp_path_factory.mktemp("audit") / "data", extra_config=AUDIT + BOB)
    yield proc.start()
    proc.stop()


class Calls:
    """Runs client calls and returns the request id of each, answered or refused."""

    @staticmethod
    def run(call: Callable[[], Any]) -> tuple[str, int]:
        try:
            meta = call()["ResponseMetadata"]
        except ClientError as e:
            meta = e.response["ResponseMetadata"]
        return meta["RequestId"], meta["HTTPStatusCode"]


def test_every_operation_family_has_exactly_one_record(audited: NodeProcess) -> None:
    root = audited.client()
    bob = audited.client(BOB_KEY, BOB_SECRET)
    anonymous = audited.client(signature_version=botocore.UNSIGNED)
    wrong_secret = audited.client(ACCESS_KEY, "not-the-secret")
    unknown_key = audited.client("AKNOSUCHKEY", "whatever-secret")
    bucket, theirs = "audit-families", "audit-bobs"
    policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "s3:GetObject",
                    "Resource": f"arn:aws:s3:::{bucket}/public/*",
                }
            ],
        }
    )
    cases: list[tuple[Callable[[], Any], str, str, int, str | None]] = [
        # (call, operation, principal, status, error)
        (lambda: root.create_bucket(Bucket=bucket), "CreateBucket", "root", 200, None),
        (lambda: bob.create_bucket(Bucket=theirs), "CreateBucket", "bob", 200, None),
        (lambda: root.head_bucket(Bucket=bucket), "HeadBucket", "root", 200, None),
        (lambda: root.list_buckets(), "ListBuckets", "root", 200, None),
        (
            lambda: root.put_object(Bucket=bucket, Key="a/k", Body=b"x" * 1000),
            "PutObject",
            "root",
            200,
            None,
        ),
        (lambda: root.get_object(Bucket=bucket, Key="a/k"), "GetObject", "root", 200, None),
        (lambda: root.head_object(Bucket=bucket, Key="a/k"), "HeadObject", "root", 200, None),
        (
            lambda: root.copy_object(
                Bucket=bucket, Key="a/copy", CopySource={"Bucket": bucket, "Key": "a/k"}
            ),
            "CopyObject",
            "root",
            200,
            None,
        ),
        (
            lambda: root.list_objects_v2(Bucket=bucket, Prefix="a/"),
            "ListObjectsV2",
            "root",
            200,
            None,
        ),
        (lambda: root.list_objects(Bucket=bucket), "ListObjects", "root", 200, None),
        (
            lambda: root.put_object_tagging(
                Bucket=bucket, Key="a/k", Tagging={"TagSet": [{"Key": "t", "Value": "v"}]}
            ),
            "PutObjectTagging",
            "root",
            200,
            None,
        ),
        (
            lambda: root.get_object_tagging(Bucket=bucket, Key="a/k"),
            "GetObjectTagging",
            "root",
            200,
            None,
        ),
        (
            lambda: root.put_bucket_acl(Bucket=bucket, ACL="private"),
            "PutBucketAcl",
            "root",
            200,
            None,
        ),
        (lambda: root.get_bucket_acl(Bucket=bucket), "GetBucketAcl", "root", 200, None),
        (lambda: root.get_object_acl(Bucket=bucket, Key="a/k"), "GetObjectAcl", "root", 200, None),
        (
            lambda: root.put_bucket_policy(Bucket=bucket, Policy=policy),
            "PutBucketPolicy",
            "root",
            204,
            None,
        ),
        (lambda: root.get_bucket_policy(Bucket=bucket), "GetBucketPolicy", "root", 200, None),
        (
            lambda: root.put_object(Bucket=bucket, Key="public/p", Body=b"open"),
            "PutObject",
            "root",
            200,
            None,
        ),
        (
            lambda: anonymous.get_object(Bucket=bucket, Key="public/p"),
            "GetObject",
            "anonymous",
            200,
            None,
        ),
        # refusals: wrong credentials, another user's bucket, anonymous, missing things
        (
            lambda: wrong_secret.get_object(Bucket=bucket, Key="a/k"),
            "GetObject",
            "unauthenticated",
            403,
            "SignatureDoesNotMatch",
        ),
        (
            lambda: unknown_key.list_buckets(),
            "ListBuckets",
            "unauthenticated",
            403,
            "InvalidAccessKeyId",
        ),
        (lambda: bob.get_object(Bucket=bucket, Key="a/k"), "GetObject", "bob", 403, "AccessDenied"),
        (
            lambda: bob.put_object(Bucket=bucket, Key="a/bob", Body=b"no"),
            "PutObject",
            "bob",
            403,
            "AccessDenied",
        ),
        (
            lambda: anonymous.get_object(Bucket=bucket, Key="a/k"),
            "GetObject",
            "anonymous",
            403,
            "AccessDenied",
        ),
        (
            lambda: anonymous.list_objects_v2(Bucket=theirs),
            "ListObjectsV2",
            "anonymous",
            403,
            "AccessDenied",
        ),
        (
            lambda: root.get_object(Bucket=bucket, Key="missing"),
            "GetObject",
            "root",
            404,
            "NoSuchKey",
        ),
        (
            lambda: root.head_object(Bucket=bucket, Key="missing"),
            "HeadObject",
            "root",
            404,
            "NoSuchKey",
        ),
        (
            lambda: root.list_objects_v2(Bucket="audit-no-such-bucket"),
            "ListObjectsV2",
            "root",
            404,
            "NoSuchBucket",
        ),
        (lambda: root.delete_bucket_policy(Bucket=bucket), "DeleteBucketPolicy", "root", 204, None),
        (
            lambda: root.delete_object(Bucket=bucket, Key="a/copy"),
            "DeleteObject",
            "root",
            204,
            None,
        ),
        (
            lambda: root.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "public/p"}]}),
            "DeleteObjects",
            "root",
            200,
            None,
        ),
    ]
    log = audited.data_dir / "audit.log"
    for call, operation, principal, status, error in cases:
        request_id, got_status = Calls.run(call)
        assert got_status == status, (operation, got_status)
        found = records_of(log, request_id)
        assert len(found) == 1, (operation, found)
        record = found[0]
        assert (record["operation"], record["principal"], record["status"], record["error"]) == (
            operation,
            principal,
            status,
            error,
        ), record
        assert record["api"] == "s3" and record["node"] == "test-node"
        assert record["source"] == "127.0.0.1" and record["duration_ms"] >= 0
        if record["operation"] not in ("ListBuckets",):
            assert record["bucket"] in (bucket, theirs, "audit-no-such-bucket"), record
        expected_category = (
            "auth-failure"
            if status == 403
            else "read"
            if operation.startswith(("Get", "Head", "List"))
            else "write"
        )
        assert record["category"] == expected_category, record
    by_op = {r["request_id"]: r for r in read_records(log)}
    put = next(r for r in by_op.values() if r["operation"] == "PutObject" and r["key"] == "a/k")
    assert put["bytes_in"] == 1000 and put["access_key"] == ACCESS_KEY
    get = next(
        r
        for r in by_op.values()
        if r["operation"] == "GetObject" and r["status"] == 200 and r["key"] == "a/k"
    )
    assert get["bytes_out"] == 1000
    assert put["bytes_out"] == 0  # headers only
    refused = next(r for r in by_op.values() if r["error"] == "SignatureDoesNotMatch")
    assert refused["access_key"] == ACCESS_KEY  # the key claimed, for tracing failed attempts


def test_multipart_and_versions_are_recorded(audited: NodeProcess) -> None:
    s3 = audited.client()
    log = audited.data_dir / "audit.log"
    bucket = "audit-multipart"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    upload = s3.create_multipart_upload(Bucket=bucket, Key="big")
    part = s3.upload_part(
        Bucket=bucket,
        Key="big",
        UploadId=upload["UploadId"],
        PartNumber=1,
        Body=b"p" * (5 * 1024 * 1024),
    )
    done = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="big",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    listed = s3.list_object_versions(Bucket=bucket)
    expected = [
        (upload, "CreateMultipartUpload"),
        (part, "UploadPart"),
        (done, "CompleteMultipartUpload"),
        (listed, "ListObjectVersions"),
    ]
    for answer, operation in expected:
        found = records_of(log, answer["ResponseMetadata"]["RequestId"])
        assert [(r["operation"], r["status"], r["key"]) for r in found] == [
            (operation, 200, None if operation == "ListObjectVersions" else "big")
        ]
    big = s3.get_object(Bucket=bucket, Key="big")  # streamed: headers change after it started
    assert len(big["Body"].read()) == 5 * 1024 * 1024
    (read,) = records_of(log, big["ResponseMetadata"]["RequestId"])
    assert read["bytes_out"] == 5 * 1024 * 1024 and read["version_id"] == done["VersionId"]
    (uploaded,) = records_of(log, part["ResponseMetadata"]["RequestId"])
    assert uploaded["bytes_in"] == 5 * 1024 * 1024
    (completed,) = records_of(log, done["ResponseMetadata"]["RequestId"])
    assert completed["version_id"] == done["VersionId"]


def test_refusals_before_any_handler_have_one_record(audited: NodeProcess) -> None:
    """An `Expect: 100-continue` upload refused before its body, and a malformed request."""
    log = audited.data_dir / "audit.log"
    conn = http.client.HTTPConnection("127.0.0.1", audited.s3_port, timeout=10)
    conn.putrequest("PUT", "/audit-no-such-bucket/k")
    conn.putheader("Content-Length", "10")
    conn.putheader("Expect", "100-continue")
    conn.endheaders()
    response = conn.getresponse()
    response.read()
    conn.close()
    assert response.status == 404  # refused before the body is sent
    found = records_of(log, response.getheader("x-amz-request-id"))
    assert [
        (r["operation"], r["principal"], r["status"], r["error"], r["bytes_in"]) for r in found
    ] == [("PutObject", "anonymous", 404, "NoSuchBucket", 0)]
    conn = http.client.HTTPConnection("127.0.0.1", audited.s3_port, timeout=10)
    conn.request(
        "GET",
        "/audit-families/k?X-Amz-Credential=AKPRESIGNED/20260101/us-east-1/s3/"
        "aws4_request&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=bad",
    )
    response = conn.getresponse()
    response.read()
    conn.close()
    assert response.status in (400, 403)
    (record,) = records_of(log, response.getheader("x-amz-request-id"))
    assert (record["principal"], record["access_key"], record["status"]) == (
        "unauthenticated",
        "AKPRESIGNED",
        response.status,
    )


def test_admin_api_calls_are_recorded(audited: NodeProcess) -> None:
    log = audited.data_dir / "audit.log"
    before = len(read_records(log))
    status, created = audited.admin("/users", method="POST", body={"name": "carol"})
    assert status == 201
    assert audited.admin("/users")[0] == 200
    assert (
        audited.admin("/buckets/audit-families/quota", method="PUT", body={"max_bytes": 10**9})[0]
        == 200
    )
    assert audited.admin("/status", token="wrong-token")[0] == 401
    urllib.request.urlopen(audited.admin_url + "/metrics").read()  # probes: not audited
    urllib.request.urlopen(audited.admin_url + "/health").read()
    deadline = time.monotonic() + 10
    while len(read_records(log)) < before + 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    admin = [r for r in read_records(log)[before:] if r["api"] == "admin"]
    assert [
        (r["operation"], r["principal"], r["status"], r["category"], r["error"]) for r in admin
    ] == [
        ("AdminCreateUser", "root", 201, "admin", None),
        ("AdminListUsers", "root", 200, "admin", None),
        ("AdminSetBucketQuota", "root", 200, "admin", None),
        ("AdminStatus", "unauthenticated", 401, "auth-failure", "Unauthorized"),
    ]
    assert admin[2]["bucket"] == "audit-families" and admin[0]["access_key"] == ACCESS_KEY
    assert created["secret_key"] not in log.read_text()


def test_no_secret_or_signature_is_ever_logged(audited: NodeProcess) -> None:
    s3 = audited.client()
    signatures: list[str] = []

    def keep_signature(request: Any, **_: Any) -> None:
        auth = request.headers.get("Authorization", b"")
        auth = auth.decode() if isinstance(auth, bytes) else auth
        if "Signature=" in auth:
            signatures.append(auth.rsplit("Signature=", 1)[1])

    s3.meta.events.register_last("before-send.s3", keep_signature)
    bucket = "audit-secrets"
    s3.create_bucket(Bucket=bucket)
    key = os.urandom(32)
    sse = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": key}
    s3.put_object(Bucket=bucket, Key="sealed", Body=b"secret body", **sse)
    assert s3.get_object(Bucket=bucket, Key="sealed", **sse)["Body"].read() == b"secret body"
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "sealed"})
    presigned_signature = url.split("X-Amz-Signature=")[1].split("&")[0]
    with pytest.raises(urllib.error.HTTPError):  # SSE-C object: no key, refused, still logged
        urllib.request.urlopen(url)
    status, _ = audited.admin(
        "/users", method="POST", body={"name": "dave", "secret_key": "dave-very-secret-key"}
    )
    assert status == 201
    time.sleep(0.5)
    text = (audited.data_dir / "audit.log").read_text()
    assert signatures and presigned_signature
    forbidden = [
        SECRET_KEY,
        BOB_SECRET,
        "dave-very-secret-key",
        presigned_signature,
        base64.b64encode(key).decode(),
        *signatures,
    ]
    leaked = [secret for secret in forbidden if secret in text]
    assert not leaked
    gets = [
        r
        for r in read_records(audited.data_dir / "audit.log")
        if r["key"] == "sealed" and r["operation"] == "GetObject"
    ]
    assert [(r["principal"], r["status"]) for r in gets][:1] == [("root", 200)]
    assert gets[-1]["principal"] == "root" and gets[-1]["status"] >= 400  # presigned, no key


def test_rotation_at_the_size_limit_and_stdout(tmp_path: Path) -> None:
    proc = NodeProcess(
        tmp_path / "data",
        extra_config=AUDIT + 'max_size = "2KiB"\nbackups = 2\nstdout = true\n'
        'categories = ["write", "auth-failure"]\n',
    )
    proc.start()
    try:
        s3 = proc.client()
        s3.create_bucket(Bucket="rotate")
        for i in range(40):
            s3.put_object(Bucket="rotate", Key=f"k{i}", Body=b"x")
            s3.get_object(Bucket="rotate", Key=f"k{i}")  # a read: not a category kept here
        time.sleep(0.5)
    finally:
        proc.stop()
    files = sorted(p.name for p in (tmp_path / "data").glob("audit.log*"))
    assert files == ["audit.log", "audit.log.1", "audit.log.2"]
    records = []
    for name in files:
        path = tmp_path / "data" / name
        assert path.stat().st_size <= 2048
        records += read_records(path)
    assert records and all(r["category"] == "write" for r in records)
    assert len(records) < 41  # the oldest went with the third rotation
    node_output = (tmp_path / "data.log").read_text().splitlines()
    printed = [json.loads(line) for line in node_output if line.startswith('{"time"')]
    assert len([r for r in printed if r["operation"] == "PutObject"]) == 40


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.extend(json.loads(line) for line in body.decode().splitlines())
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_webhook_receives_records(tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/audit"
    proc = NodeProcess(
        tmp_path / "data", extra_config=AUDIT + f'file = ""\nwebhook_url = "{url}"\n'
    )
    proc.start()
    try:
        s3 = proc.client()
        answer = s3.create_bucket(Bucket="hooked")
        for i in range(20):
            s3.put_object(Bucket="hooked", Key=f"k{i}", Body=b"x")
        deadline = time.monotonic() + 20
        while len(_Receiver.received) < 21 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(_Receiver.received) == 21
        assert _Receiver.received[0]["request_id"] == answer["ResponseMetadata"]["RequestId"]
        assert not (tmp_path / "data" / "audit.log").exists()
        assert metric(proc, 'anode_audit_dropped_records_total{reason="queue_full"}') == 0
    finally:
        proc.stop()
        server.shutdown()


def test_a_blackholed_webhook_does_not_slow_requests(tmp_path: Path) -> None:
    """The receiver accepts connections and never answers: the node's poster waits for its
    timeout (60 s) while requests go on; records beyond the queue are dropped and counted."""
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(64)
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(hole.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    url = f"http://127.0.0.1:{hole.getsockname()[1]}/audit"
    proc = NodeProcess(
        tmp_path / "data",
        extra_config=AUDIT
        + (f'webhook_url = "{url}"\nwebhook_queue = 50\nwebhook_timeout = "60s"\n'),
    )
    proc.start()
    try:
        s3 = proc.client()
        s3.create_bucket(Bucket="blackholed")
        started = time.monotonic()
        for i in range(200):
            s3.put_object(Bucket="blackholed", Key=f"k{i}", Body=b"x" * 100)
        elapsed = time.monotonic() - started
        # one request waiting for the webhook would take its 60 s timeout
        assert elapsed < 60, elapsed
        assert accepted, "the node never connected to the webhook"
        dropped = metric(proc, 'anode_audit_dropped_records_total{reason="queue_full"}')
        print(f"200 PUTs, webhook blackholed: {elapsed:.1f} s, {dropped:.0f} records dropped")
        assert dropped >= 100
        time.sleep(0.3)
        records = read_records(tmp_path / "data" / "audit.log")
        assert len([r for r in records if r["operation"] == "PutObject"]) == 200
    finally:
        proc.stop()
        hole.close()
        for conn in accepted:
            conn.close()


def test_each_cluster_member_records_the_requests_it_served(tmp_path: Path) -> None:
    from anode_procs import ClusterProcesses

    cluster = ClusterProcesses(tmp_path)
    for member in cluster.nodes:
        member.extra_config = AUDIT
    cluster.start()
    try:
        served: dict[str, list[str]] = {}
        cluster.nodes[0].client().create_bucket(Bucket="audit-cluster")
        for member in cluster.nodes:
            s3 = member.client()
            answers = [s3.put_object(Bucket="audit-cluster", Key=member.node_id, Body=b"m")]
            answers.append(s3.get_object(Bucket="audit-cluster", Key=member.node_id))
            try:
                s3.get_object(Bucket="audit-cluster", Key="missing")
            except ClientError as e:
                answers.append(e.response)
            served[member.node_id] = [a["ResponseMetadata"]["RequestId"] for a in answers]
        for member in cluster.nodes:
            log = member.data_dir / "audit.log"
            for request_id in served[member.node_id]:
                (record,) = records_of(log, request_id)
                assert record["node"] == member.node_id and record["principal"] == "root"
            others = {rid for node_id, ids in served.items() if node_id != member.node_id
                      for rid in ids}  # fmt: skip
            assert not others & {r["request_id"] for r in read_records(log)}
    finally:
        cluster.stop()


def test_audit_config_from_file_and_environment(tmp_path: Path) -> None:
    from anode.config import ConfigError, load_config

    path = tmp_path / "anode.toml"
    path.write_text('[audit]\nenabled = true\nmax_size = "10MiB"\n')
    env = {"ANODE_AUDIT_CATEGORIES": "write,auth-failure", "ANODE_AUDIT_STDOUT": "true",
           "ANODE_AUDIT_WEBHOOK_URL": "https://collector:8443/audit"}  # fmt: skip
    audit = load_config(path, env=env).audit
    assert audit.enabled and audit.stdout and audit.max_size == 10 * 1024 * 1024
    assert audit.categories == ["write", "auth-failure"] and audit.file == "audit.log"
    assert audit.webhook_url == "https://collector:8443/audit"
    for bad, message in [
        ({"ANODE_AUDIT_CATEGORIES": "write,everything"}, "audit.categories"),
        ({"ANODE_AUDIT_FILE": ""}, "audit.enabled"),
        ({"ANODE_AUDIT_WEBHOOK_URL": "collector:8443"}, "audit.webhook_url"),
        ({"ANODE_AUDIT_WEBHOOK_QUEUE": "0"}, "audit.webhook_queue"),
    ]:
        with pytest.raises(ConfigError, match=message):
            load_config(path, env=bad)


def test_claimed_access_keys_and_categories() -> None:
    from anode.audit.record import category, claimed_access_key

    v4 = "AWS4-HMAC-SHA256 Credential=AKID1/20260101/us-east-1/s3/aws4_request, Signature=abc"
    assert claimed_access_key(v4, {}) == "AKID1"
    assert claimed_access_key("AWS AKID2:c2lnbmF0dXJl", {}) == "AKID2"
    assert claimed_access_key(None, {"X-Amz-Credential": "AKID3/20260101/x"}) == "AKID3"
    assert claimed_access_key(None, {"AWSAccessKeyId": "AKID4", "Signature": "s"}) == "AKID4"
    assert claimed_access_key(None, {}) is None
    assert category("s3", "GET", "GetObject", 200) == "read"
    assert category("s3", "POST", "SelectObjectContent", 200) == "read"
    assert category("s3", "POST", "DeleteObjects", 200) == "write"
    assert category("s3", "PUT", "PutObject", 403) == "auth-failure"
    assert category("admin", "GET", "AdminStatus", 200) == "admin"
    assert category("admin", "GET", "AdminStatus", 401) == "auth-failure"
