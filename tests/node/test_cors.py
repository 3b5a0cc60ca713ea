"""CORS over S3: Put/Get/DeleteBucketCors, OPTIONS preflights and CORS headers on responses."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError
from s3util import error_code

RULES = [
    {"AllowedMethods": ["GET"], "AllowedOrigins": ["*suffix"]},
    {"AllowedMethods": ["GET"], "AllowedOrigins": ["start*end"]},
    {"ID": "put", "AllowedMethods": ["PUT", "POST"], "AllowedOrigins": ["*.put"],
     "AllowedHeaders": ["x-amz-*", "content-type"], "ExposeHeaders": ["ETag", "x-amz-version-id"],
     "MaxAgeSeconds": 3000},
]


def http(method: str, url: str, headers: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


@pytest.fixture
def cors_bucket(s3, bucket):
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": RULES})
    return bucket


def test_put_get_delete_bucket_cors(s3, bucket):
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_cors(Bucket=bucket)
    assert error_code(exc) == ("NoSuchCORSConfiguration", 404)
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": RULES})
    rules = s3.get_bucket_cors(Bucket=bucket)["CORSRules"]
    assert rules[2] == RULES[2]
    assert rules[0] == RULES[0]
    s3.delete_bucket_cors(Bucket=bucket)
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_cors(Bucket=bucket)
    assert error_code(exc) == ("NoSuchCORSConfiguration", 404)


@pytest.mark.parametrize("rule, code", [
    ({"AllowedMethods": ["PATCH"], "AllowedOrigins": ["*"]}, "InvalidRequest"),
    ({"AllowedMethods": ["GET"], "AllowedOrigins": ["*a*"]}, "InvalidRequest"),
    ({"AllowedMethods": ["GET"], "AllowedOrigins": ["*"], "AllowedHeaders": ["*x*"]},
     "InvalidRequest"),
])
def test_invalid_cors_rules(s3, bucket, rule, code):
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [rule]})
    assert error_code(exc) == (code, 400)


def test_preflight_without_configuration_or_headers(node, bucket):
    url = f"{node.s3_url}/{bucket}/k"
    assert http("OPTIONS", url)[0] == 400
    assert http("OPTIONS", url, {"Origin": "a.suffix"})[0] == 400
    status, _, body = http("OPTIONS", url, {"Origin": "a.suffix",
                                            "Access-Control-Request-Method": "GET"})
    assert status == 403 and b"<Code>CORSResponse</Code>" in body


@pytest.mark.parametrize("origin, method, allowed", [
    ("foo.suffix", "GET", True), ("foo.bar", "GET", False), ("foo.suffix.get", "GET", False),
    ("startend", "GET", True), ("start12end", "GET", True), ("0start12end", "GET", False),
    ("a.put", "GET", False), ("a.put", "PUT", True), ("foo.suffix", "DELETE", False),
])
def test_preflight_matches_origins_and_methods(node, cors_bucket, origin, method, allowed):
    status, headers, body = http("OPTIONS", f"{node.s3_url}/{cors_bucket}/any/key", {
        "Origin": origin, "Access-Control-Request-Method": method})
    if not allowed:
        assert status == 403 and b"CORSResponse" in body
        assert "Access-Control-Allow-Origin" not in headers
        return
    assert status == 200
    assert headers["Access-Control-Allow-Origin"] == origin
    assert method in headers["Access-Control-Allow-Methods"]


def test_preflight_headers_expose_and_max_age(node, cors_bucket):
    url = f"{node.s3_url}/{cors_bucket}"
    status, headers, _ = http("OPTIONS", url, {
        "Origin": "https://app.put", "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "X-Amz-Meta-Color, Content-Type"})
    assert status == 200
    assert headers["Access-Control-Allow-Origin"] == "https://app.put"
    assert headers["Access-Control-Allow-Methods"] == "PUT, POST"
    assert headers["Access-Control-Allow-Headers"] == "x-amz-meta-color, content-type"
    assert headers["Access-Control-Expose-Headers"] == "ETag, x-amz-version-id"
    assert headers["Access-Control-Max-Age"] == "3000"
    assert headers["Access-Control-Allow-Credentials"] == "true"
    status, _, _ = http("OPTIONS", url, {
        "Origin": "https://app.put", "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "authorization"})
    assert status == 403


def test_cors_headers_on_real_requests(node, s3, cors_bucket):
    s3.put_bucket_acl(Bucket=cors_bucket, ACL="public-read")
    url = f"{node.s3_url}/{cors_bucket}"
    status, headers, _ = http("GET", url, {"Origin": "foo.suffix"})
    assert status == 200
    assert headers["Access-Control-Allow-Origin"] == "foo.suffix"
    assert headers["Access-Control-Allow-Methods"] == "GET"
    status, headers, _ = http("GET", url, {"Origin": "foo.put"})  # only PUT is allowed there
    assert status == 200 and "Access-Control-Allow-Origin" not in headers
    status, headers, _ = http("GET", url)
    assert "Access-Control-Allow-Origin" not in headers
    # signed requests too, errors included
    seen: list[dict] = []
    s3.meta.events.register("before-sign.s3.GetObject",
                            lambda request, **_: request.headers.add_header("Origin", "x.suffix"))
    s3.meta.events.register("after-call.s3.GetObject",
                            lambda http_response, **_: seen.append(dict(http_response.headers)))
    s3.put_object(Bucket=cors_bucket, Key="k", Body=b"v")
    s3.get_object(Bucket=cors_bucket, Key="k")
    assert seen[-1]["Access-Control-Allow-Origin"] == "x.suffix"
    with pytest.raises(ClientError):
        s3.get_object(Bucket=cors_bucket, Key="missing")
    assert seen[-1]["Access-Control-Allow-Origin"] == "x.suffix"


def test_wildcard_origin_answers_star(node, s3, bucket):
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [
        {"AllowedMethods": ["GET", "HEAD"], "AllowedOrigins": ["*"]}]})
    status, headers, _ = http("OPTIONS", f"{node.s3_url}/{bucket}/k", {
        "Origin": "https://anywhere.example", "Access-Control-Request-Method": "HEAD"})
    assert status == 200
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in headers


def test_preflight_to_missing_bucket(node):
    status, _, body = http("OPTIONS", f"{node.s3_url}/no-such-bucket-cors/k", {
        "Origin": "a", "Access-Control-Request-Method": "GET"})
    assert status == 404 and b"NoSuchBucket" in body


def test_cors_headers_on_refused_requests(node, s3, cors_bucket):
    status, headers, _ = http("GET", f"{node.s3_url}/{cors_bucket}/k?X-Amz-Signature=bad",
                              {"Origin": "a.suffix"})
    assert status in (400, 403)
    assert headers["Access-Control-Allow-Origin"] == "a.suffix"
    status, headers, _ = http("GET", f"{node.s3_url}/{cors_bucket}/private",
                              {"Origin": "a.suffix"})
    assert status == 403 and headers["Access-Control-Allow-Origin"] == "a.suffix"


def test_streamed_answers_carry_cors_headers_and_the_request_id(node, s3, cors_bucket):
    """A large GET is streamed: its headers go out before the handler returns, and must already
    hold the CORS headers and the request id."""
    body = b"s" * (2 * 1024 * 1024)
    s3.put_object(Bucket=cors_bucket, Key="big", Body=body, ACL="public-read")
    status, headers, got = http("GET", f"{node.s3_url}/{cors_bucket}/big", {"Origin": "a.suffix"})
    assert status == 200 and got == body
    assert headers["Access-Control-Allow-Origin"] == "a.suffix"
    assert len(headers["x-amz-request-id"]) == 16 and headers["Server"] == "Anode"
