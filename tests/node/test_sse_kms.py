"""SSE-KMS through boto3 (single node and cluster): named keys from the admin API and CLI, the
default key, key ids as names/aliases/ARNs, encryption context, bucket keys and bucket defaults,
every object size class, dedup, copies between every pair of modes, disabled and unknown keys.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from anode_procs import NodeProcess
from botocore.exceptions import ClientError
from s3util import caught_up, error_code

MiB = 1024 * 1024
ANODE = str(Path(sys.executable).parent / "anode")
SSE_C_KEY = bytes(range(32))
# inline (<= 32 KiB), cached small chunk, several 4 MiB chunks, exactly one chunk
SIZES = [0, 1, 1000, 40_000, 4 * MiB, 9 * MiB + 7]


def kms_args(key_id: str | None = None, **extra) -> dict:
    args = {"ServerSideEncryption": "aws:kms", **extra}
    if key_id is not None:
        args["SSEKMSKeyId"] = key_id
    return args


def create_key(node, name: str) -> dict:
    status, doc = node.admin("/kms/keys", method="POST", body={"name": name})
    assert status in (200, 201), doc
    return doc


@pytest.fixture(scope="module")
def key(node) -> str:
    return create_key(node, f"app-{os.getpid()}")["name"]


@pytest.mark.parametrize("size", SIZES)
def test_round_trip_with_a_named_key_at_every_size(s3, bucket, key, size):
    body = os.urandom(size)
    put = s3.put_object(Bucket=bucket, Key="k", Body=body, **kms_args(key))
    assert put["ServerSideEncryption"] == "aws:kms"
    assert put["SSEKMSKeyId"].endswith(f":key/{key}") and put["SSEKMSKeyId"].startswith("arn:")
    for _ in range(2):  # the second read comes through the chunk cache
        got = s3.get_object(Bucket=bucket, Key="k")
        assert got["Body"].read() == body
        assert got["ServerSideEncryption"] == "aws:kms" and got["SSEKMSKeyId"] == put["SSEKMSKeyId"]
    head = s3.head_object(Bucket=bucket, Key="k")
    assert head["SSEKMSKeyId"] == put["SSEKMSKeyId"] and head["ContentLength"] == size
    if size > 10:
        part = s3.get_object(Bucket=bucket, Key="k", Range=f"bytes=3-{size - 2}")
        assert part["Body"].read() == body[3:size - 1]


def test_default_key_alias_and_arn_name_the_same_key(s3, bucket, key):
    default = s3.put_object(Bucket=bucket, Key="d", Body=b"default", **kms_args())
    assert default["SSEKMSKeyId"].endswith(":key/aws/s3")
    arn = s3.put_object(Bucket=bucket, Key="a", Body=b"x", **kms_args(key))["SSEKMSKeyId"]
    for key_id in (f"alias/{key}", arn, key):
        put = s3.put_object(Bucket=bucket, Key="b", Body=b"y", **kms_args(key_id))
        assert put["SSEKMSKeyId"] == arn
        assert s3.get_object(Bucket=bucket, Key="b")["Body"].read() == b"y"


def test_same_body_twice_under_one_key_and_under_two_keys(node, s3, bucket, key):
    other = create_key(node, f"other-{os.getpid()}")["name"]
    for size in (9, 40_000, 5 * MiB):
        body = b"Y" * size
        s3.put_object(Bucket=bucket, Key="one", Body=body, **kms_args(key))
        s3.put_object(Bucket=bucket, Key="two", Body=body, **kms_args(key))
        s3.put_object(Bucket=bucket, Key="three", Body=body, **kms_args(other))
        s3.put_object(Bucket=bucket, Key="four", Body=body, **kms_args(key,
                      SSEKMSEncryptionContext=base64.b64encode(b'{"a":"b"}').decode()))
        for name in ("one", "two", "three", "four", "one", "two"):
            assert s3.get_object(Bucket=bucket, Key=name)["Body"].read() == body, (size, name)


def test_encryption_context_and_bucket_key_are_returned(s3, bucket, key):
    context = base64.b64encode(json.dumps({"project": "x", "team": "y"}).encode()).decode()
    put = s3.put_object(Bucket=bucket, Key="c", Body=b"ctx", **kms_args(
        key, SSEKMSEncryptionContext=context, BucketKeyEnabled=True))
    assert put["SSEKMSEncryptionContext"] == context and put["BucketKeyEnabled"] is True
    assert s3.get_object(Bucket=bucket, Key="c")["Body"].read() == b"ctx"
    for bad in ("not base64!", base64.b64encode(b"[1, 2]").decode()):
        with pytest.raises(ClientError) as exc:
            s3.put_object(Bucket=bucket, Key="bad", Body=b"x",
                          **kms_args(key, SSEKMSEncryptionContext=bad))
        assert error_code(exc) == ("InvalidArgument", 400)
    with pytest.raises(ClientError) as exc:  # a key id without aws:kms
        s3.put_object(Bucket=bucket, Key="bad", Body=b"x", SSEKMSKeyId=key)
    assert error_code(exc) == ("InvalidArgument", 400)
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="bad")
    assert error_code(exc)[1] == 404


def test_multipart_under_kms(s3, bucket, key):
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp", **kms_args(key))
    assert upload["ServerSideEncryption"] == "aws:kms"
    parts, bodies = [], [os.urandom(5 * MiB), os.urandom(1000)]
    for number, body in enumerate(bodies, 1):
        part = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload["UploadId"],
                              PartNumber=number, Body=body)
        assert part["ServerSideEncryption"] == "aws:kms"
        parts.append({"PartNumber": number, "ETag": part["ETag"]})
    done = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload["UploadId"],
                                        MultipartUpload={"Parts": parts})
    assert done["ServerSideEncryption"] == "aws:kms"
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == b"".join(bodies)
    assert s3.get_object(Bucket=bucket, Key="mp", PartNumber=2)["Body"].read() == bodies[1]


MODES = {
    "none": ({}, {}, {}),
    "sse-s3": ({"ServerSideEncryption": "AES256"}, {}, {}),
    "sse-c": ({"SSECustomerAlgorithm": "AES256", "SSECustomerKey": SSE_C_KEY},
              {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": SSE_C_KEY},
              {"CopySourceSSECustomerAlgorithm": "AES256", "CopySourceSSECustomerKey": SSE_C_KEY}),
    "sse-kms": (None, {}, {}),  # the key is the module's
}


def _mode(name: str, key: str) -> tuple[dict, dict, dict]:
    write, read, source = MODES[name]
    return (kms_args(key) if write is None else write), read, source


@pytest.mark.parametrize("size", [100, 5 * MiB])
@pytest.mark.parametrize("target", list(MODES))
@pytest.mark.parametrize("source", list(MODES))
def test_copy_between_every_pair_of_modes(s3, bucket, key, source, target, size):
    body = os.urandom(size)
    src_write, src_read, src_copy = _mode(source, key)
    dst_write, dst_read, _ = _mode(target, key)
    s3.put_object(Bucket=bucket, Key="src", Body=body, **src_write)
    s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"},
                   **src_copy, **dst_write)
    got = s3.get_object(Bucket=bucket, Key="dst", **dst_read)
    assert got["Body"].read() == body
    assert ("SSEKMSKeyId" in got) == (target == "sse-kms")
    assert s3.get_object(Bucket=bucket, Key="src", **src_read)["Body"].read() == body


def test_bucket_default_aws_kms(node, s3, bucket, key):
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms",
                                                "KMSMasterKeyID": f"alias/{key}"},
         "BucketKeyEnabled": True}]})
    config = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
    default = config["Rules"][0]["ApplyServerSideEncryptionByDefault"]
    assert default["SSEAlgorithm"] == "aws:kms" and default["KMSMasterKeyID"].endswith(
        f":key/{key}")
    caught_up(node, bucket)
    put = s3.put_object(Bucket=bucket, Key="plain-request", Body=b"defaulted")
    assert put["ServerSideEncryption"] == "aws:kms" and put["SSEKMSKeyId"].endswith(f"/{key}")
    assert put["BucketKeyEnabled"] is True
    assert s3.get_object(Bucket=bucket, Key="plain-request")["Body"].read() == b"defaulted"
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]})
    caught_up(node, bucket)
    put = s3.put_object(Bucket=bucket, Key="default-key", Body=b"d")
    assert put["SSEKMSKeyId"].endswith(":key/aws/s3")


def test_unknown_and_disabled_keys_are_refused_and_nothing_is_stored(node, s3, bucket):
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="u", Body=b"x", **kms_args("no-such-key"))
    assert error_code(exc) == ("KMS.NotFoundException", 400)
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="u")
    assert error_code(exc)[1] == 404
    name = create_key(node, f"soon-disabled-{os.getpid()}")["name"]
    s3.put_object(Bucket=bucket, Key="d", Body=b"before", **kms_args(name))
    assert node.admin(f"/kms/keys/{name}", method="PUT", body={"enabled": False})[0] == 200
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="d2", Body=b"x", **kms_args(name))
    assert error_code(exc) == ("KMS.DisabledException", 400)
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="d")
    assert error_code(exc) == ("KMS.DisabledException", 400)
    assert node.admin(f"/kms/keys/{name}", method="PUT", body={"enabled": True})[0] == 200
    assert s3.get_object(Bucket=bucket, Key="d")["Body"].read() == b"before"
    status, doc = node.admin("/kms/keys/never-made", method="PUT", body={"enabled": False})
    assert status == 400 and doc  # KMS.NotFoundException


def test_admin_cli_manages_keys_and_never_shows_material(node):
    env = dict(os.environ, ANODE_ROOT_SECRET_KEY=node.secret_key)

    def cli(*args: str) -> dict:
        out = subprocess.run([ANODE, "admin", "--url", node.admin_url, "kms", "keys", *args],
                             env=env, capture_output=True, text=True, check=True).stdout
        return json.loads(out)

    name = f"cli-{os.getpid()}"
    created = cli("create", name)
    assert created["name"] == name and created["enabled"] is True
    assert set(created) == {"name", "arn", "enabled", "created"}
    assert cli("create", name)["created"] == created["created"]  # the name keeps its key
    assert cli("disable", name)["enabled"] is False
    assert cli("enable", name)["enabled"] is True
    assert name in [k["name"] for k in cli("list")["keys"]]


def test_key_material_never_reaches_the_disk_in_the_clear(tmp_path):
    node = NodeProcess(tmp_path / "data").start()
    try:
        s3 = node.client()
        s3.create_bucket(Bucket="bkt")
        marker = b"KMS-PLAINTEXT-MARKER-" * 3000
        s3.put_object(Bucket="bkt", Key="k", Body=marker, **kms_args())
        stored = b"".join(p.read_bytes() for p in node.data_dir.rglob("*") if p.is_file())
        assert marker[:4096] not in stored
        node.stop()
        node.start()  # the wrapped key and the master key survive a restart
        assert node.client().get_object(Bucket="bkt", Key="k")["Body"].read() == marker
    finally:
        node.stop()


@pytest.mark.parametrize(
    "header",
    [("x-amz-server-side-encryption", "aws:kms"),
     ("x-amz-server-side-encryption", "AES256"),
     ("x-amz-server-side-encryption-aws-kms-key-id", "any-key")],
)
def test_get_and_head_refuse_write_encryption_headers(node, bucket, key, header):
    """AWS answers 400 to a GET or HEAD carrying SSE-S3/SSE-KMS request headers, whatever the
    object's encryption (Ceph's s3-tests test_sse_kms_read_declare; Anode served the object)."""
    client = node.client()
    name, value = header
    client.meta.events.register("before-sign.s3", lambda request, **_: (
        request.headers.__setitem__(name, value) if request.method in ("GET", "HEAD") else None))
    plain = node.client()
    plain.put_object(Bucket=bucket, Key="plain", Body=b"p")
    plain.put_object(Bucket=bucket, Key="kms", Body=b"k", **kms_args(key))
    for object_key in ("plain", "kms"):
        with pytest.raises(ClientError) as exc:
            client.get_object(Bucket=bucket, Key=object_key)
        assert error_code(exc) == ("InvalidArgument", 400)
        with pytest.raises(ClientError) as exc:
            client.head_object(Bucket=bucket, Key=object_key)
        assert error_code(exc)[1] == 400
        assert plain.get_object(Bucket=bucket, Key=object_key)["Body"].read() in (b"p", b"k")
