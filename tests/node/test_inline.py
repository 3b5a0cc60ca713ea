"""Small bodies kept in the metadata (`storage.inline_max`), and writes admitted without a read
barrier: both on one node and on the 3-node cluster (requests to random nodes)."""

from __future__ import annotations

import hashlib
import os
import time

import pytest
from anode_procs import ClusterFront, NodeProcess
from botocore.exceptions import ClientError
from s3util import error_code

from anode.meta.store import MetaStore, open_db

INLINE_MAX = 32 * 1024  # the default


def members(node) -> list[NodeProcess]:
    return list(node.cluster.nodes) if isinstance(node, ClusterFront) else [node]


def stored_as_file(node, body: bytes) -> bool:
    digest = hashlib.sha256(body).hexdigest()
    return any(p.name == digest for proc in members(node) for p in proc.chunk_files())


@pytest.mark.parametrize("size", [1, 4096, INLINE_MAX])
def test_small_body_is_served_from_the_metadata_not_a_file(node, s3, bucket, size):
    body = os.urandom(size)
    etag = s3.put_object(Bucket=bucket, Key="small", Body=body)["ETag"]
    assert etag == f'"{hashlib.md5(body).hexdigest()}"'
    assert not stored_as_file(node, body)
    for proc in members(node):  # every member has it: the log carried it
        got = proc.client().get_object(Bucket=bucket, Key="small")
        assert got["Body"].read() == body and got["ETag"] == etag
    ranged = s3.get_object(Bucket=bucket, Key="small", Range=f"bytes={size // 2}-")
    assert ranged["Body"].read() == body[size // 2:]


def test_body_over_the_limit_and_multipart_parts_are_files(node, s3, bucket):
    big = os.urandom(INLINE_MAX + 1)
    s3.put_object(Bucket=bucket, Key="big", Body=big)
    assert stored_as_file(node, big)
    first, last = os.urandom(5 * 1024 * 1024), os.urandom(100)
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    parts = [{"PartNumber": n, "ETag": s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload,
                                                       PartNumber=n, Body=data)["ETag"]}
             for n, data in ((1, first), (2, last))]
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload,
                                 MultipartUpload={"Parts": parts})
    assert stored_as_file(node, last)
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == first + last


def test_copies_and_duplicates_of_a_small_body_share_it(node, s3, bucket):
    body = os.urandom(3000)
    s3.put_object(Bucket=bucket, Key="a", Body=body)
    s3.put_object(Bucket=bucket, Key="b", Body=body)
    s3.copy_object(Bucket=bucket, Key="c", CopySource={"Bucket": bucket, "Key": "a"},
                   MetadataDirective="REPLACE", Metadata={"x": "y"})
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "a"}, {"Key": "b"}]})
    got = s3.get_object(Bucket=bucket, Key="c")
    assert got["Body"].read() == body and got["Metadata"] == {"x": "y"}
    assert not stored_as_file(node, body)


def test_encrypted_small_body_is_not_kept_in_the_clear(node, s3, bucket):
    body = b"secret " * 100
    s3.put_object(Bucket=bucket, Key="enc", Body=body, ServerSideEncryption="AES256")
    assert s3.get_object(Bucket=bucket, Key="enc")["Body"].read() == body
    for proc in members(node):
        assert not any(body in p.read_bytes() for p in proc.chunk_files())


def test_deleted_small_body_leaves_the_metadata_after_the_grace_period(tmp_path):
    proc = NodeProcess(tmp_path / "data",
                       storage_options='gc_grace = "0.5s"\ngc_interval = "0.2s"').start()
    body = os.urandom(1000)
    digest = hashlib.sha256(body).digest()
    try:
        s3 = proc.client()
        s3.create_bucket(Bucket="gc-bucket")
        s3.put_object(Bucket="gc-bucket", Key="k", Body=body)
        s3.delete_object(Bucket="gc-bucket", Key="k")
        time.sleep(2.0)  # grace period plus a few collector rounds
    finally:
        proc.stop()
    meta = MetaStore(open_db(tmp_path / "data" / "meta"))
    try:
        assert meta.inline_chunk(digest) is None and meta.chunk_refs(digest) == 0
        assert list(meta.garbage()) == []
    finally:
        meta.close()


# ---- writes checked at apply skip the read barrier; refusals never do -----------------------


def test_put_right_after_the_bucket_was_created_through_another_member(node):
    procs = members(node)
    creator, writer = procs[0].client(), procs[-1].client()
    for i in range(15):
        name = f"fresh-{os.getpid()}-{i}-{time.monotonic_ns() % 10**6}"
        creator.create_bucket(Bucket=name)
        writer.put_object(Bucket=name, Key="k", Body=b"x")  # never NoSuchBucket
        assert procs[i % len(procs)].client().get_object(Bucket=name, Key="k")["Body"].read() \
            == b"x"


def test_put_with_keys_created_a_moment_ago_through_another_member(node):
    procs = members(node)
    procs[0].client().create_bucket(Bucket=f"keys-{os.getpid()}")
    for i in range(5):
        status, user = procs[0].admin("/users", method="POST",
                                      body={"name": f"fast-{os.getpid()}-{i}"})
        assert status in (200, 201), user
        s3 = procs[-1].client(user["access_key"], user["secret_key"])
        name = f"own-{os.getpid()}-{i}"
        s3.create_bucket(Bucket=name)
        s3.put_object(Bucket=name, Key="k", Body=b"mine")
        with pytest.raises(ClientError) as exc:  # still refused what it was never granted
            s3.put_object(Bucket=f"keys-{os.getpid()}", Key="k", Body=b"not mine")
        assert error_code(exc) == ("AccessDenied", 403)


def test_put_to_a_missing_bucket_is_still_refused(node, s3):
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=f"never-{os.getpid()}", Key="k", Body=b"x")
    assert error_code(exc) == ("NoSuchBucket", 404)
