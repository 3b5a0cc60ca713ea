"""The web console's pure parts: session cookies, the loopback S3 signature (checked by the
node's own SigV4 verifier), and what pages show."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from anode.console import present, session
from anode.console.app import _attachment
from anode.console.s3client import encode_query, object_path, parse_listing, sign
from anode.s3.sigv4 import authenticate
from anode.users import User

KEY = b"k" * 32
SECRETS = {"AKALICE": "alice-secret", "AKBOB": "bob-secret"}


def test_a_session_cookie_round_trips_and_nothing_else_does() -> None:
    made = session.new_session("AKALICE", now=1000.0, ttl=60)
    cookie = session.encode(made, KEY, "alice-secret")
    assert "alice-secret" not in cookie
    assert session.decode(cookie, KEY, SECRETS.get, now=1059.9) == made
    assert session.decode(cookie, KEY, SECRETS.get, now=1060.0) is None  # expired
    assert session.decode(cookie, b"x" * 32, SECRETS.get, now=1001) is None  # another cluster
    assert session.decode(cookie, KEY, {"AKALICE": "new-secret"}.get, now=1001) is None
    assert session.decode(cookie, KEY, {}.get, now=1001) is None  # the user is gone
    mac = cookie.split(".")[1]
    bob = session.encode(session.Session("AKBOB", 2000.0, made.nonce), KEY, "alice-secret")
    assert session.decode(f"{bob.split('.')[0]}.{mac}", KEY, SECRETS.get, now=1001) is None


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        ".",
        "a.b",
        "!!!.???",
        "e30.x",
        "WzEsMiwzXQ.x",
        "WyJBS0FMSUNFIiwgdHJ1ZSwgIm4iXQ.x",
        "\udcff.\x00",
    ],
)
def test_garbage_cookies_are_no_session_and_no_crash(garbage: str) -> None:
    assert session.decode(garbage, KEY, SECRETS.get, now=0) is None


def test_csrf_tokens_belong_to_one_session() -> None:
    one = session.new_session("AKALICE", now=0, ttl=60)
    two = session.new_session("AKALICE", now=0, ttl=60)
    token = session.csrf_token(one, KEY)
    assert session.csrf_ok(one, KEY, token)
    assert not session.csrf_ok(two, KEY, token)
    assert not session.csrf_ok(one, KEY, "")
    assert not session.csrf_ok(one, KEY, "ü" * 64)


@pytest.mark.parametrize(
    "key", ["plain.txt", "a/../b", "./x", "sp ace+plus&q=1?#", "ü/日本/", "%2e%2e/%41", "<script>"]
)
def test_the_loopback_signature_is_what_the_node_verifies(key: str) -> None:
    user = User("alice", "AKALICE", "alice-secret")
    path = object_path("bucket", key)
    query = [("list-type", "2"), ("prefix", key), ("delimiter", "/")]
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    headers = sign(
        method="GET",
        host="127.0.0.1:8080",
        raw_path=path,
        query=query,
        payload_sha256="e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        user=user,
        region="us-east-1",
        now=now,
    )
    auth = authenticate(
        method="GET",
        raw_path=path,
        raw_query=encode_query(query),
        headers=headers,
        lookup=SECRETS.get,
        now=now,
        region="us-east-1",
    )
    assert auth is not None and auth.access_key == "AKALICE"
    assert "/" not in path.removeprefix("/bucket/") and ".." not in path


def test_a_listing_with_url_encoded_keys() -> None:
    body = (
        b'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult '
        b'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><IsTruncated>true</IsTruncated>'
        b"<Contents><Key>a%01%3Cb%3E</Key><LastModified>2026-12-07T00:00:00.000Z</LastModified>"
        b"<ETag>&quot;abc&quot;</ETag><Size>3</Size></Contents>"
        b"<CommonPrefixes><Prefix>d%C3%BC/</Prefix></CommonPrefixes>"
        b"<NextContinuationToken>tok</NextContinuationToken></ListBucketResult>"
    )
    listing = parse_listing(body)
    assert [(o.key, o.size, o.etag) for o in listing.objects] == [("a\x01<b>", 3, "abc")]
    assert listing.prefixes == ["dü/"] and listing.next_token == "tok"


def test_pages_show() -> None:
    assert present.breadcrumbs("a/b/c") == [("a/", "a/"), ("b/", "a/b/"), ("c", "a/b/c")]
    assert present.breadcrumbs("") == []
    assert present.parent_prefix("a/b/c.txt") == "a/b/" and present.parent_prefix("x") == ""
    assert (
        present.url("/console/browse/b", prefix="a&b/", token=None)
        == "/console/browse/b?prefix=a%26b%2F"
    )
    assert present.size(0) == "0 B" and present.size(1536) == "1.5 KiB"
    assert present.quota({"bytes": 1024, "objects": 5}) == "1.0 KiB max, 5 objects max"
    rows = dict(
        present.bucket_settings(
            {
                "owner": "alice",
                "versioning": "Enabled",
                "objectlock": {"enabled": True, "rule": {"mode": "GOVERNANCE", "days": 3}},
                "encryption": {"algorithm": "aws:kms", "key": "k1"},
                "tags": [["a", "b"]],
            }
        )
    )
    assert rows["Object Lock"] == "Enabled, default GOVERNANCE for 3 days"
    assert rows["Default encryption"] == "aws:kms (key k1)" and rows["Tags"] == "a=b"


def test_download_names_cannot_break_the_header() -> None:
    header = _attachment('dir/evil"\r\nSet-Cookie: x=1; ü.txt')
    assert "\r" not in header and "\n" not in header
    assert header.startswith('attachment; filename="evil___Set-Cookie: x=1; _.txt"; ')
    assert header.endswith("filename*=UTF-8''evil%22%0D%0ASet-Cookie%3A%20x%3D1%3B%20%C3%BC.txt")
