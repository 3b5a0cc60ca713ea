"""Encryption at rest through boto3 (single node and cluster): SSE-C on PUT/GET/HEAD, ranges,
multipart and copies between keys; SSE-S3 and bucket default encryption; wrong and missing keys;
what reaches the disk (ciphertext only, no key) and what a damaged chunk does (never wrong bytes).
"""

from __future__ import annotations

import base64
import hashlib
import os

import pytest
from anode_procs import NodeProcess
from botocore.exceptions import ClientError
from s3util import caught_up, error_code

MiB = 1024 * 1024
KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


def sse_c(key: bytes = KEY) -> dict:
    return {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": key}


def copy_source_sse_c(key: bytes = KEY) -> dict:
    return {"CopySourceSSECustomerAlgorithm": "AES256", "CopySourceSSECustomerKey": key}


def key_md5(key: bytes = KEY) -> str:
    return base64.b64encode(hashlib.md5(key).digest()).decode()


def with_headers(s3, event: str, headers: dict[str, str]):
    """A client whose `event` requests carry (or lose, for None) some raw headers."""

    def edit(request, **_):
        for name, value in headers.items():
            if name in request.headers:
                del request.headers[name]
            if value is not None:
                request.headers[name] = value

    s3.meta.events.register(f"before-sign.s3.{event}", edit)
    return s3


# ---- SSE-C ------------------------------------------------------------------------------------


def test_sse_c_round_trip_needs_the_same_key(s3, bucket):
    data = os.urandom(300_000)
    put = s3.put_object(Bucket=bucket, Key="k", Body=data, **sse_c())
    assert put["SSECustomerAlgorithm"] == "AES256"
    assert put["SSECustomerKeyMD5"] == key_md5()
    assert put["ETag"].strip('"') != hashlib.md5(data).hexdigest()  # AWS: not the data's MD5
    got = s3.get_object(Bucket=bucket, Key="k", **sse_c())
    assert got["Body"].read() == data
    assert got["SSECustomerKeyMD5"] == key_md5()
    assert got["ETag"] == put["ETag"]
    head = s3.head_object(Bucket=bucket, Key="k", **sse_c())
    assert head["ContentLength"] == len(data)
    for call in (s3.get_object, s3.head_object):
        with pytest.raises(ClientError) as exc:
            call(Bucket=bucket, Key="k", **sse_c(OTHER_KEY))
        assert error_code(exc) == ("AccessDenied" if call == s3.get_object else "403", 403)
        with pytest.raises(ClientError) as exc:
            call(Bucket=bucket, Key="k")
        assert error_code(exc) == ("InvalidRequest" if call == s3.get_object else "400", 400)


def test_key_headers_are_checked(s3, bucket):
    cases = [
        ({"x-amz-server-side-encryption-customer-key-MD5": key_md5(OTHER_KEY)},
         ("InvalidArgument", 400)),
        ({"x-amz-server-side-encryption-customer-key-MD5": None}, ("InvalidArgument", 400)),
        ({"x-amz-server-side-encryption-customer-algorithm": "AES128"},
         ("InvalidEncryptionAlgorithmError", 400)),
        ({"x-amz-server-side-encryption-customer-key": base64.b64encode(b"short").decode(),
          "x-amz-server-side-encryption-customer-key-MD5": key_md5(b"short")},
         ("InvalidArgument", 400)),
        ({"x-amz-server-side-encryption": "AES256"}, ("InvalidArgument", 400)),
    ]
    for headers, expected in cases:
        client = with_headers(_fresh_client(s3), "PutObject", headers)
        with pytest.raises(ClientError) as exc:
            client.put_object(Bucket=bucket, Key="k", Body=b"x", **sse_c())
        assert error_code(exc) == expected, headers
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="k")
    assert error_code(exc)[1] == 404  # nothing was stored


def _fresh_client(s3):
    import boto3

    creds = s3._request_signer._credentials
    return boto3.client("s3", endpoint_url=s3.meta.endpoint_url, region_name="us-east-1",
                        aws_access_key_id=creds.access_key, aws_secret_access_key=creds.secret_key,
                        config=s3.meta.config)


def test_sse_c_over_plain_http_is_refused_unless_allowed(tmp_path):
    name = "sse-c-bucket"
    strict = NodeProcess(tmp_path / "strict", s3_options="").start()
    try:
        s3 = strict.client()
        s3.create_bucket(Bucket=name)
        with pytest.raises(ClientError) as exc:
            s3.put_object(Bucket=name, Key="k", Body=b"secret", **sse_c())
        assert error_code(exc) == ("InvalidRequest", 400)
        assert "must be made over a secure connection" in exc.value.response["Error"]["Message"]
        s3.put_object(Bucket=name, Key="plain", Body=b"x")
        with pytest.raises(ClientError) as exc:  # the copy-source key is a key all the same
            s3.copy_object(Bucket=name, Key="c", CopySource=f"{name}/plain", **copy_source_sse_c())
        assert error_code(exc) == ("InvalidRequest", 400)
        assert [o["Key"] for o in s3.list_objects_v2(Bucket=name)["Contents"]] == ["plain"]
    finally:
        strict.stop()
    allowed = NodeProcess(tmp_path / "allowed", s3_options="",
                          env={"ANODE_S3_SSE_C_ALLOW_INSECURE": "true"}).start()
    try:
        s3 = allowed.client()
        s3.create_bucket(Bucket=name)
        s3.put_object(Bucket=name, Key="k", Body=b"secret", **sse_c())
        assert s3.get_object(Bucket=name, Key="k", **sse_c())["Body"].read() == b"secret"
    finally:
        allowed.stop()


def test_key_on_an_unencrypted_object_is_an_invalid_request(s3, bucket):
    s3.put_object(Bucket=bucket, Key="plain", Body=b"x")
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="plain", **sse_c())
    assert error_code(exc) == ("InvalidRequest", 400)


def test_sse_c_range_reads_across_segments_and_chunks(s3, bucket):
    data = os.urandom(9 * MiB + 12345)  # three chunks of 4 MiB, many 64 KiB segments
    s3.put_object(Bucket=bucket, Key="big", Body=data, **sse_c())
    for start, end in ((0, 0), (1, 100), (65535, 65537), (100_000, 300_000),
                       (4 * MiB - 10, 4 * MiB + 10), (len(data) - 5, len(data) - 1),
                       (3 * MiB, 9 * MiB)):
        got = s3.get_object(Bucket=bucket, Key="big", Range=f"bytes={start}-{end}", **sse_c())
        assert got["Body"].read() == data[start : end + 1], (start, end)
    assert s3.get_object(Bucket=bucket, Key="big", **sse_c())["Body"].read() == data


def test_sse_c_multipart_upload(s3, bucket):
    parts = [os.urandom(5 * MiB), os.urandom(1000)]
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp", **sse_c())
    assert upload["SSECustomerKeyMD5"] == key_md5()
    uid = upload["UploadId"]
    with pytest.raises(ClientError) as exc:
        s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=1, Body=parts[0])
    assert error_code(exc) == ("InvalidRequest", 400)
    with pytest.raises(ClientError) as exc:
        s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=1, Body=parts[0],
                       **sse_c(OTHER_KEY))
    assert error_code(exc) == ("AccessDenied", 403)
    etags = []
    for number, body in enumerate(parts, 1):
        part = s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=number,
                              Body=body, **sse_c())
        assert part["SSECustomerKeyMD5"] == key_md5()
        etags.append(part["ETag"])
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=uid, **sse_c(),
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, 1)]})
    assert "x-amz-server-side-encryption-customer-key-md5" not in done["ResponseMetadata"][
        "HTTPHeaders"]  # AWS: Complete does not repeat the SSE-C key
    data = b"".join(parts)
    assert s3.get_object(Bucket=bucket, Key="mp", **sse_c())["Body"].read() == data
    got = s3.get_object(Bucket=bucket, Key="mp", Range=f"bytes={5 * MiB - 3}-{5 * MiB + 3}",
                        **sse_c())
    assert got["Body"].read() == data[5 * MiB - 3 : 5 * MiB + 4]
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="mp")
    assert error_code(exc) == ("InvalidRequest", 400)


def test_copies_between_keys_and_to_and_from_the_clear(s3, bucket):
    data = os.urandom(200_000)
    s3.put_object(Bucket=bucket, Key="src", Body=data, **sse_c())
    with pytest.raises(ClientError) as exc:  # the source's key is needed to read it
        s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    assert error_code(exc) == ("InvalidRequest", 400)
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"},
                       **copy_source_sse_c(OTHER_KEY))
    assert error_code(exc) == ("AccessDenied", 403)
    copied = s3.copy_object(Bucket=bucket, Key="other", CopySource={"Bucket": bucket, "Key": "src"},
                            **copy_source_sse_c(), **sse_c(OTHER_KEY))
    assert copied["SSECustomerKeyMD5"] == key_md5(OTHER_KEY)
    assert s3.get_object(Bucket=bucket, Key="other", **sse_c(OTHER_KEY))["Body"].read() == data
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="other", **sse_c())
    assert error_code(exc) == ("AccessDenied", 403)
    s3.copy_object(Bucket=bucket, Key="clear", CopySource={"Bucket": bucket, "Key": "src"},
                   **copy_source_sse_c())
    assert s3.get_object(Bucket=bucket, Key="clear")["Body"].read() == data
    s3.copy_object(Bucket=bucket, Key="s3", CopySource={"Bucket": bucket, "Key": "clear"},
                   ServerSideEncryption="AES256")
    got = s3.get_object(Bucket=bucket, Key="s3")
    assert got["ServerSideEncryption"] == "AES256" and got["Body"].read() == data
    # Re-encrypting an object in place is a legal copy onto itself.
    s3.copy_object(Bucket=bucket, Key="src", CopySource={"Bucket": bucket, "Key": "src"},
                   **copy_source_sse_c(), **sse_c(OTHER_KEY))
    assert s3.get_object(Bucket=bucket, Key="src", **sse_c(OTHER_KEY))["Body"].read() == data


def test_upload_part_copy_from_an_sse_c_source(s3, bucket):
    data = os.urandom(6 * MiB)
    s3.put_object(Bucket=bucket, Key="src", Body=data, **sse_c())
    uid = s3.create_multipart_upload(Bucket=bucket, Key="mp", **sse_c(OTHER_KEY))["UploadId"]
    etag = s3.upload_part_copy(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=1,
                               CopySource={"Bucket": bucket, "Key": "src"},
                               CopySourceRange="bytes=100-200099", **copy_source_sse_c(),
                               **sse_c(OTHER_KEY))["CopyPartResult"]["ETag"]
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": etag}]})
    got = s3.get_object(Bucket=bucket, Key="mp", **sse_c(OTHER_KEY))["Body"].read()
    assert got == data[100:200100]


# ---- SSE-S3 and bucket default encryption -----------------------------------------------------


def test_sse_s3_put_and_get(s3, bucket):
    put = s3.put_object(Bucket=bucket, Key="k", Body=b"hello", ServerSideEncryption="AES256")
    assert put["ServerSideEncryption"] == "AES256"
    assert put["ETag"] == f'"{hashlib.md5(b"hello").hexdigest()}"'  # AWS: SSE-S3 keeps the MD5
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["ServerSideEncryption"] == "AES256" and got["Body"].read() == b"hello"
    assert s3.get_object(Bucket=bucket, Key="k", Range="bytes=1-3")["Body"].read() == b"ell"
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", ServerSideEncryption="AES512")
    assert error_code(exc) == ("InvalidArgument", 400)


def test_bucket_default_encryption(node, s3, bucket):
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_encryption(Bucket=bucket)
    assert error_code(exc) == ("ServerSideEncryptionConfigurationNotFoundError", 404)
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules == [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
                      "BucketKeyEnabled": False}]
    caught_up(node, bucket)
    assert s3.put_object(Bucket=bucket, Key="d", Body=b"x")["ServerSideEncryption"] == "AES256"
    assert s3.head_object(Bucket=bucket, Key="d")["ServerSideEncryption"] == "AES256"
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")
    assert upload["ServerSideEncryption"] == "AES256"
    part = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload["UploadId"], PartNumber=1,
                          Body=b"part")
    assert part["ServerSideEncryption"] == "AES256"
    done = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload["UploadId"],
                                        MultipartUpload={"Parts": [{"PartNumber": 1,
                                                                    "ETag": part["ETag"]}]})
    assert done["ServerSideEncryption"] == "AES256"
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == b"part"
    put = s3.put_object(Bucket=bucket, Key="c", Body=b"x", **sse_c())  # SSE-C wins
    assert "ServerSideEncryption" not in put and put["SSECustomerKeyMD5"] == key_md5()
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [
            {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "DES"}}]})
    assert error_code(exc) == ("MalformedXML", 400)
    s3.delete_bucket_encryption(Bucket=bucket)
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_encryption(Bucket=bucket)
    assert error_code(exc) == ("ServerSideEncryptionConfigurationNotFoundError", 404)
    assert "ServerSideEncryption" not in s3.put_object(Bucket=bucket, Key="p", Body=b"x")
    assert s3.get_object(Bucket=bucket, Key="d")["Body"].read() == b"x"


# ---- at rest: what the disk holds ---------------------------------------------------------------


def test_disk_holds_ciphertext_dedups_within_a_key_only_and_never_the_key(fresh_node):
    node = fresh_node.start()
    s3 = node.client()
    s3.create_bucket(Bucket="bkt")
    marker = b"PLAINTEXT-MARKER-" * 4096
    s3.put_object(Bucket="bkt", Key="one", Body=marker, **sse_c())
    assert len(node.chunk_files()) == 1
    s3.put_object(Bucket="bkt", Key="two", Body=marker, **sse_c())  # same key: deduplicated
    assert len(node.chunk_files()) == 1
    s3.put_object(Bucket="bkt", Key="three", Body=marker, **sse_c(OTHER_KEY))
    s3.put_object(Bucket="bkt", Key="four", Body=marker, ServerSideEncryption="AES256")
    s3.put_object(Bucket="bkt", Key="five", Body=marker)
    assert len(node.chunk_files()) == 4  # each key domain (and the clear) apart
    encrypted = [p.read_bytes() for p in node.chunk_files()]
    assert sum(marker in data for data in encrypted) == 1  # only the unencrypted copy
    stored = b"".join(p.read_bytes() for p in node.data_dir.rglob("*") if p.is_file())
    for secret in (KEY, OTHER_KEY, base64.b64encode(KEY)):
        assert secret not in stored
    # The SSE-S3 master key generated at first use survives a restart.
    node.stop()
    node.start()
    assert node.client().get_object(Bucket="bkt", Key="four")["Body"].read() == marker


def test_a_damaged_encrypted_chunk_is_never_served(fresh_node):
    node = fresh_node.start()
    s3 = node.client()
    s3.create_bucket(Bucket="rot")
    data = os.urandom(300_000)
    s3.put_object(Bucket="rot", Key="k", Body=data, **sse_c())
    # A partial read makes the chunk's segment table (without one, a damaged chunk is
    # refused whole: its undamaged parts cannot be told apart).
    assert s3.get_object(Bucket="rot", Key="k", Range="bytes=0-9", **sse_c())["Body"].read() == (
        data[:10])
    (chunk,) = node.chunk_files()
    raw = bytearray(chunk.read_bytes())
    raw[200_000] ^= 0x01
    chunk.write_bytes(bytes(raw))
    for extra in ({}, {"Range": "bytes=199000-201000"}):
        with pytest.raises(ClientError) as exc:
            s3.get_object(Bucket="rot", Key="k", **extra, **sse_c())["Body"].read()
        assert error_code(exc) == ("InternalError", 500)
    # Bytes before the damaged segment still authenticate and are served.
    assert s3.get_object(Bucket="rot", Key="k", Range="bytes=0-999",
                         **sse_c())["Body"].read() == data[:1000]


def test_a_damaged_copy_never_yields_wrong_plaintext(node, s3, bucket):
    """On a cluster the other holders' copies serve the read; alone, the read fails."""
    from anode_procs import ClusterFront

    holder = node.cluster.nodes[0] if isinstance(node, ClusterFront) else node
    before = set(holder.chunk_files())
    data = os.urandom(150_000)
    s3.put_object(Bucket=bucket, Key="k", Body=data, **sse_c())
    (chunk,) = set(holder.chunk_files()) - before
    raw = bytearray(chunk.read_bytes())
    raw[100_000] ^= 0x80
    chunk.write_bytes(bytes(raw))
    for extra in ({}, {"Range": "bytes=99000-101000"}):
        try:
            got = s3.get_object(Bucket=bucket, Key="k", **extra, **sse_c())["Body"].read()
        except ClientError as exc:
            assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 500
        else:
            assert got == (data if not extra else data[99000:101001])


def test_browser_post_upload_follows_the_bucket_default(s3, bucket):
    from test_post_upload import post, presigned

    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    url, fields = presigned(s3, bucket, "form.bin")
    status, headers, _ = post(url, fields, b"from a browser")
    assert status == 204 and headers["x-amz-server-side-encryption"] == "AES256"
    got = s3.get_object(Bucket=bucket, Key="form.bin")
    assert got["ServerSideEncryption"] == "AES256" and got["Body"].read() == b"from a browser"


def test_object_attributes_of_an_sse_c_object_need_its_key(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"abc", **sse_c())
    with pytest.raises(ClientError) as exc:
        s3.get_object_attributes(Bucket=bucket, Key="k", ObjectAttributes=["ObjectSize"])
    assert error_code(exc) == ("InvalidRequest", 400)
    got = s3.get_object_attributes(  # botocore leaves the key's encoding to us here
        Bucket=bucket, Key="k", ObjectAttributes=["ObjectSize"], SSECustomerAlgorithm="AES256",
        SSECustomerKey=base64.b64encode(KEY).decode(), SSECustomerKeyMD5=key_md5())
    assert got["ObjectSize"] == 3


def test_bucket_policy_can_require_encryption(node, s3):
    import json

    keys = {"name": "sse-alice", "access_key": "SSEALICEKEY", "secret_key": "sse-alice-secret"}
    status, doc = node.admin("/users", method="POST", body=keys)
    assert status in (200, 201), doc
    alice = node.client(keys["access_key"], keys["secret_key"])
    name = f"sse-policy-{os.getpid()}"
    alice.create_bucket(Bucket=name)
    alice.put_bucket_policy(Bucket=name, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
         "Resource": f"arn:aws:s3:::{name}/*",
         "Condition": {"Null": {"s3:x-amz-server-side-encryption-customer-algorithm": "true"}}}]}))
    for extra in ({}, {"ServerSideEncryption": "AES256"}):
        with pytest.raises(ClientError) as exc:
            alice.put_object(Bucket=name, Key="k", Body=b"x", **extra)
        assert error_code(exc) == ("AccessDenied", 403)
    alice.put_object(Bucket=name, Key="k", Body=b"x", **sse_c())
