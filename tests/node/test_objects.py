"""PutObject/GetObject/HeadObject/CopyObject/DeleteObject through boto3 with default checksums."""

from __future__ import annotations

import base64
import hashlib
import os
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from s3util import error_code

from anode.s3.checksums import Checksummer


@pytest.mark.parametrize("size", [0, 1, 4096, 4 * 1024 * 1024, 4 * 1024 * 1024 + 1, 9_000_001])
def test_put_then_get_returns_same_bytes_and_etag(s3, bucket, size):
    data = os.urandom(size)
    put = s3.put_object(Bucket=bucket, Key=f"obj-{size}", Body=data)
    assert put["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    got = s3.get_object(Bucket=bucket, Key=f"obj-{size}")
    assert got["Body"].read() == data
    assert got["ETag"] == put["ETag"]
    assert got["ContentLength"] == size


def test_default_crc_checksum_is_validated_and_returned(s3, bucket):
    data = b"checksummed body" * 1000
    put = s3.put_object(Bucket=bucket, Key="k", Body=data)
    expected = Checksummer("CRC32")
    expected.update(data)
    assert put["ChecksumCRC32"] == expected.b64digest()
    head = s3.head_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == expected.b64digest()


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"])
def test_every_checksum_algorithm_round_trips(s3, bucket, algorithm):
    data = os.urandom(100_000)
    put = s3.put_object(Bucket=bucket, Key=algorithm, Body=data, ChecksumAlgorithm=algorithm)
    expected = Checksummer(algorithm)
    expected.update(data)
    assert put[f"Checksum{algorithm}"] == expected.b64digest()
    got = s3.get_object(Bucket=bucket, Key=algorithm, ChecksumMode="ENABLED")
    assert got["Body"].read() == data
    assert got[f"Checksum{algorithm}"] == expected.b64digest()


def test_user_metadata_and_content_headers_round_trip(s3, bucket):
    expires = datetime(2030, 1, 1, tzinfo=UTC)
    s3.put_object(Bucket=bucket, Key="m", Body=b"x", Metadata={"Color": "blue", "n": "1"},
                  ContentType="text/plain", ContentEncoding="identity",
                  ContentDisposition='attachment; filename="x.txt"', CacheControl="max-age=60",
                  ContentLanguage="en", Expires=expires)
    head = s3.head_object(Bucket=bucket, Key="m")
    assert head["Metadata"] == {"color": "blue", "n": "1"}
    assert head["ContentType"] == "text/plain"
    assert head["ContentEncoding"] == "identity"
    assert head["ContentDisposition"] == 'attachment; filename="x.txt"'
    assert head["CacheControl"] == "max-age=60"
    assert head["ContentLanguage"] == "en"
    assert head["Expires"] == expires


def test_response_overrides_on_get(s3, bucket):
    s3.put_object(Bucket=bucket, Key="o", Body=b"x", ContentType="text/plain")
    got = s3.get_object(Bucket=bucket, Key="o", ResponseContentType="application/json",
                        ResponseContentDisposition="inline")
    assert got["ContentType"] == "application/json"
    assert got["ContentDisposition"] == "inline"


@pytest.mark.parametrize(("header", "expected"), [
    ("bytes=0-9", slice(0, 10)),
    ("bytes=10-", slice(10, None)),
    ("bytes=-7", slice(-7, None)),
    ("bytes=4194300-4194310", slice(4194300, 4194311)),
    ("bytes=100-999999999", slice(100, None)),
])
def test_range_get(s3, bucket, header, expected):
    data = os.urandom(5 * 1024 * 1024)
    s3.put_object(Bucket=bucket, Key="r", Body=data)
    got = s3.get_object(Bucket=bucket, Key="r", Range=header)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    body = got["Body"].read()
    assert body == data[expected]
    start = expected.start if expected.start >= 0 else len(data) + expected.start
    assert got["ContentRange"] == f"bytes {start}-{start + len(body) - 1}/{len(data)}"


def test_unsatisfiable_range_is_416(s3, bucket):
    s3.put_object(Bucket=bucket, Key="r", Body=b"0123456789")
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="r", Range="bytes=10-20")
    assert error_code(exc) == ("InvalidRange", 416)


@pytest.mark.parametrize("method", ["get_object", "head_object"])
def test_not_modified_carries_etag_and_last_modified(s3, bucket, method):
    put = s3.put_object(Bucket=bucket, Key="nm", Body=b"data")
    head = s3.head_object(Bucket=bucket, Key="nm")
    since = datetime.now(UTC) + timedelta(hours=1)
    for conditions in ({"IfNoneMatch": put["ETag"]}, {"IfModifiedSince": since}):
        with pytest.raises(ClientError) as exc:
            getattr(s3, method)(Bucket=bucket, Key="nm", **conditions)
        headers = exc.value.response["ResponseMetadata"]["HTTPHeaders"]
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
        assert headers["etag"] == put["ETag"]
        assert headers["last-modified"] == head["ResponseMetadata"]["HTTPHeaders"]["last-modified"]


def test_conditional_get(s3, bucket):
    put = s3.put_object(Bucket=bucket, Key="c", Body=b"data")
    etag = put["ETag"]
    assert s3.get_object(Bucket=bucket, Key="c", IfMatch=etag)["Body"].read() == b"data"
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="c", IfMatch='"deadbeef"')
    assert error_code(exc) == ("PreconditionFailed", 412)
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="c", IfNoneMatch=etag)
    assert error_code(exc)[1] == 304
    future = datetime.now(UTC) + timedelta(hours=1)
    past = datetime.now(UTC) - timedelta(hours=1)
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="c", IfModifiedSince=future)
    assert error_code(exc)[1] == 304
    assert s3.get_object(Bucket=bucket, Key="c", IfModifiedSince=past)["Body"].read() == b"data"
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="c", IfUnmodifiedSince=past)
    assert error_code(exc)[1] == 412
    # If-Match holding makes If-Unmodified-Since irrelevant (RFC 9110 precedence)
    assert s3.get_object(Bucket=bucket, Key="c", IfMatch=etag,
                         IfUnmodifiedSince=past)["ETag"] == etag


def test_conditional_put_if_none_match_star(s3, bucket):
    s3.put_object(Bucket=bucket, Key="once", Body=b"first", IfNoneMatch="*")
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="once", Body=b"second", IfNoneMatch="*")
    assert error_code(exc) == ("PreconditionFailed", 412)
    assert s3.get_object(Bucket=bucket, Key="once")["Body"].read() == b"first"


def test_conditional_put_if_match(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="cas", Body=b"v1")["ETag"]
    s3.put_object(Bucket=bucket, Key="cas", Body=b"v2", IfMatch=etag)
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="cas", Body=b"v3", IfMatch=etag)
    assert error_code(exc) == ("PreconditionFailed", 412)
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="absent", Body=b"v", IfMatch=etag)
    assert error_code(exc) == ("NoSuchKey", 404)
    assert s3.get_object(Bucket=bucket, Key="cas")["Body"].read() == b"v2"


def test_copy_object_copies_metadata_by_default(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"payload", Metadata={"a": "1"},
                  ContentType="text/csv")
    result = s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    got = s3.get_object(Bucket=bucket, Key="dst")
    assert got["Body"].read() == b"payload"
    assert got["Metadata"] == {"a": "1"}
    assert got["ContentType"] == "text/csv"
    assert result["CopyObjectResult"]["ETag"] == got["ETag"]


def test_copy_object_replace_directive_and_copy_onto_itself(s3, bucket):
    s3.put_object(Bucket=bucket, Key="self", Body=b"payload", Metadata={"a": "1"})
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket=bucket, Key="self", CopySource=f"{bucket}/self")
    assert error_code(exc) == ("InvalidRequest", 400)
    s3.copy_object(Bucket=bucket, Key="self", CopySource=f"{bucket}/self",
                   MetadataDirective="REPLACE", Metadata={"b": "2"}, ContentType="text/plain")
    head = s3.head_object(Bucket=bucket, Key="self")
    assert head["Metadata"] == {"b": "2"}
    assert head["ContentType"] == "text/plain"
    assert s3.get_object(Bucket=bucket, Key="self")["Body"].read() == b"payload"


def test_copy_conditions(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="src", Body=b"x")["ETag"]
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket=bucket, Key="d", CopySource=f"{bucket}/src",
                       CopySourceIfMatch='"0000"')
    assert error_code(exc) == ("PreconditionFailed", 412)
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket=bucket, Key="d", CopySource=f"{bucket}/src",
                       CopySourceIfNoneMatch=etag)
    assert error_code(exc) == ("PreconditionFailed", 412)
    s3.copy_object(Bucket=bucket, Key="d", CopySource=f"{bucket}/src", CopySourceIfMatch=etag)
    assert s3.get_object(Bucket=bucket, Key="d")["Body"].read() == b"x"


def test_copy_from_missing_source(s3, bucket):
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket=bucket, Key="d", CopySource=f"{bucket}/missing")
    assert error_code(exc) == ("NoSuchKey", 404)


def test_delete_object_and_missing_key_errors(s3, bucket):
    s3.put_object(Bucket=bucket, Key="gone", Body=b"x")
    assert s3.delete_object(Bucket=bucket, Key="gone")["ResponseMetadata"]["HTTPStatusCode"] == 204
    s3.delete_object(Bucket=bucket, Key="gone")  # deleting an absent key succeeds
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="gone")
    assert error_code(exc) == ("NoSuchKey", 404)
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="gone")
    assert error_code(exc)[1] == 404


def test_delete_objects_normal_and_quiet(s3, bucket):
    for i in range(5):
        s3.put_object(Bucket=bucket, Key=f"d/{i}", Body=b"x")
    result = s3.delete_objects(Bucket=bucket, Delete={
        "Objects": [{"Key": "d/0"}, {"Key": "d/1"}, {"Key": "never-existed"}]})
    assert sorted(d["Key"] for d in result["Deleted"]) == ["d/0", "d/1", "never-existed"]
    quiet = s3.delete_objects(Bucket=bucket, Delete={
        "Objects": [{"Key": "d/2"}, {"Key": "d/3"}], "Quiet": True})
    assert "Deleted" not in quiet
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys == ["d/4"]


@pytest.mark.parametrize("key", [
    "unicode/日本語/ключ/🎉.txt", "spaces and+plus=equals&amp", "percent%20encoded%2F",
    "../../etc/passwd", "a/./b/../c", "trailing/", "~tilde!*'()", "new\nline",
])
def test_unusual_keys_are_opaque_and_round_trip(s3, bucket, node, key):
    s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == key.encode()
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert listed == [key]
    # traversal-looking keys never touch the filesystem outside the chunk store
    assert not (node.data_dir.parent / "etc").exists()


def test_content_md5_is_checked(s3, bucket):
    good = base64.b64encode(hashlib.md5(b"body").digest()).decode()
    s3.put_object(Bucket=bucket, Key="md5", Body=b"body", ContentMD5=good)
    bad = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="md5", Body=b"changed", ContentMD5=bad)
    assert error_code(exc) == ("BadDigest", 400)
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="md5", Body=b"changed", ContentMD5="not-base64!")
    assert error_code(exc) == ("InvalidDigest", 400)
    assert s3.get_object(Bucket=bucket, Key="md5")["Body"].read() == b"body"


def test_overwrite_replaces_and_last_modified_moves(s3, bucket):
    s3.put_object(Bucket=bucket, Key="o", Body=b"one")
    first = s3.head_object(Bucket=bucket, Key="o")["LastModified"]
    time.sleep(1.1)
    s3.put_object(Bucket=bucket, Key="o", Body=b"two")
    head = s3.head_object(Bucket=bucket, Key="o")
    assert head["LastModified"] > first
    assert s3.get_object(Bucket=bucket, Key="o")["Body"].read() == b"two"


def test_presigned_get_and_put(s3, bucket):
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "p"},
                                        ExpiresIn=60)
    request = urllib.request.Request(put_url, data=b"presigned body", method="PUT")
    with urllib.request.urlopen(request) as response:
        assert response.status == 200
    get_url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "p"},
                                        ExpiresIn=60)
    with urllib.request.urlopen(get_url) as response:
        assert response.read() == b"presigned body"


def test_virtual_host_style_addressing(node, s3, bucket):
    s3.put_object(Bucket=bucket, Key="vhost", Body=b"virtual")
    url = f"{node.s3_url}/vhost"
    request = AWSRequest(method="GET", url=url, headers={"Host": f"{bucket}.localhost"})
    S3SigV4Auth(Credentials(node.access_key, node.secret_key), "s3", "us-east-1").add_auth(request)
    prepared = urllib.request.Request(url, headers=dict(request.headers.items()))
    with urllib.request.urlopen(prepared) as response:
        assert response.read() == b"virtual"


def test_signature_v2_header_and_presigned_urls(node, bucket):
    """boto3 presigns with SigV2 by default for custom endpoints; plain clients still use it."""
    import boto3

    v2 = boto3.client("s3", endpoint_url=node.s3_url, aws_access_key_id=node.access_key,
                      aws_secret_access_key=node.secret_key, region_name="us-east-1")
    v2.put_object(Bucket=bucket, Key="v2 key", Body=b"signed the old way")
    url = v2.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "v2 key"})
    assert "Signature=" in url and "AWSAccessKeyId=" in url
    with urllib.request.urlopen(url) as response:
        assert response.read() == b"signed the old way"
    tampered = url.replace("Signature=", "Signature=x")
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(tampered)
    assert exc.value.code == 403

    from botocore.auth import HmacV1Auth

    request = AWSRequest(method="GET", url=f"{node.s3_url}/{bucket}/v2%20key")
    HmacV1Auth(Credentials(node.access_key, node.secret_key)).add_auth(request)
    with urllib.request.urlopen(urllib.request.Request(
            request.url, headers=dict(request.headers.items()))) as response:
        assert response.read() == b"signed the old way"
    HmacV1Auth(Credentials(node.access_key, "wrong")).add_auth(request)
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(urllib.request.Request(
            request.url, headers=dict(request.headers.items())))
    assert exc.value.code == 403


def test_signature_v2_header_on_bucket_operations(node):
    """botocore signs a bucket's root as "/bucket/" though it sends "/bucket" (CreateBucket,
    ListObjects, DeleteBucket, ...); a signature by the wrong secret still fails."""
    import boto3
    from botocore.config import Config

    def client(secret: str):
        return boto3.client("s3", endpoint_url=node.s3_url, aws_access_key_id=node.access_key,
                            aws_secret_access_key=secret, region_name="us-east-1",
                            config=Config(signature_version="s3"))

    v2 = client(node.secret_key)
    name = f"sigv2-bucket-{os.urandom(4).hex()}"
    v2.create_bucket(Bucket=name)
    v2.put_object(Bucket=name, Key="k", Body=b"x")
    assert [o["Key"] for o in v2.list_objects(Bucket=name)["Contents"]] == ["k"]
    assert v2.get_bucket_versioning(Bucket=name)["ResponseMetadata"]["HTTPStatusCode"] == 200
    with pytest.raises(ClientError) as exc:
        client("wrong").list_objects(Bucket=name)
    assert error_code(exc) == ("SignatureDoesNotMatch", 403)
    v2.delete_object(Bucket=name, Key="k")
    v2.delete_bucket(Bucket=name)


def test_request_signed_with_a_date_header_in_utc_minus_zero(node, bucket):
    """With a Date header present botocore's SigV4 signs it, as "..., -0000" (RFC 2822's "UTC,
    zone unknown"), instead of X-Amz-Date; AWS accepts that, so must we."""
    from email.utils import formatdate

    url = f"{node.s3_url}/{bucket}/dated"
    request = AWSRequest(method="PUT", url=url, data=b"x", headers={"Date": formatdate()})
    S3SigV4Auth(Credentials(node.access_key, node.secret_key), "s3", "us-east-1").add_auth(request)
    assert request.headers["Date"].endswith("-0000") and "X-Amz-Date" not in request.headers
    with urllib.request.urlopen(urllib.request.Request(
            url, data=b"x", method="PUT", headers=dict(request.headers.items()))) as response:
        assert response.status == 200


@pytest.mark.parametrize(("amz_date", "code"), [
    ("", "AccessDenied"),  # present but empty: it still overrides Date, and is no time
    ("Tue, 07 Jul 1950 21:53:04 GMT", "AccessDenied"),
    ("Tue, 07 Jul 2010 21:53:04 GMT", "RequestTimeTooSkewed"),
])
def test_signature_v2_x_amz_date_decides_the_request_time(node, bucket, amz_date, code):
    from botocore.auth import HmacV1Auth

    url = f"{node.s3_url}/{bucket}/v2-dated"
    request = AWSRequest(method="PUT", url=url, data=b"x", headers={"x-amz-date": amz_date})
    HmacV1Auth(Credentials(node.access_key, node.secret_key)).add_auth(request)
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(urllib.request.Request(
            url, data=b"x", method="PUT", headers=dict(request.headers.items())))
    assert exc.value.code == 403 and f"<Code>{code}</Code>" in exc.value.read().decode()


@pytest.mark.parametrize("encrypted", [False, True])
def test_copy_with_a_checksum_algorithm_stores_that_checksum(s3, bucket, encrypted):
    """CopyObject with x-amz-checksum-algorithm gets a whole-object checksum of that algorithm
    (aws s3 cp --checksum-algorithm, boto3 copy with ChecksumAlgorithm); Anode kept the source's
    CRC32 and answered it instead."""
    body = os.urandom(300_000)
    extra = {"ServerSideEncryption": "AES256"} if encrypted else {}
    s3.put_object(Bucket=bucket, Key="src", Body=body, **extra)
    done = s3.copy_object(Bucket=bucket, Key="dst", CopySource=f"{bucket}/src",
                          ChecksumAlgorithm="SHA256", **extra)["CopyObjectResult"]
    want = base64.b64encode(hashlib.sha256(body).digest()).decode()
    assert (done["ChecksumSHA256"], done["ChecksumType"]) == (want, "FULL_OBJECT")
    head = s3.head_object(Bucket=bucket, Key="dst", ChecksumMode="ENABLED")
    assert (head["ChecksumSHA256"], head["ChecksumType"]) == (want, "FULL_OBJECT")
    assert "ChecksumCRC32" not in head
    got = s3.get_object(Bucket=bucket, Key="dst", ChecksumMode="ENABLED")
    assert got["Body"].read() == body  # botocore verified the SHA256 on the way
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket=bucket, Key="bad", CopySource=f"{bucket}/src",
                       ChecksumAlgorithm="MD4")
    assert error_code(exc) == ("InvalidRequest", 400)
