"""Every combination that decides where an object's bytes live gives back exactly those bytes.

Encryption mode (none, SSE-S3, bucket default, SSE-KMS, SSE-C under two keys) x body size at
every size boundary of the design (inline rows, the small-chunk cache, chunk_size) x dedup (the
same body under other keys, buckets, versions and users) x copies (CopyObject with both
directives and every encryption transition, UploadPartCopy, multipart). Each object is read more
than once: issue 11's lost objects were readable once, then never again (a second read came from
the small-chunk cache). One node for the whole module, with a small `chunk_size` so multi-chunk
bodies stay cheap."""

from __future__ import annotations

import random
import shutil

import pytest
from anode_procs import ClusterProcesses, NodeProcess
from botocore.exceptions import ClientError
from s3util import error_code

KiB = 1024
MiB = 1024 * KiB
CHUNK = 128 * KiB  # this node's storage.chunk_size
INLINE = 32 * KiB  # storage.inline_max (the default)
CACHED = 64 * KiB  # chunk files up to this size are kept in the small-chunk cache
SEALED_CACHED = CACHED - 32 - 16  # largest plaintext whose sealed chunk (siv, one tag) is cached
SIZES = [
    0,
    1,
    9,
    INLINE - 1,
    INLINE,
    INLINE + 1,
    SEALED_CACHED,
    SEALED_CACHED + 1,
    CACHED - 1,
    CACHED,
    CACHED + 1,
    CHUNK - 1,
    CHUNK,
    CHUNK + 1,
    3 * CHUNK + 7,
]
KEYS = {"sse-c-a": bytes(range(32)), "sse-c-b": bytes(range(100, 132))}
MODES = ["none", "sse-s3", "default", "sse-kms", "sse-c-a", "sse-c-b"]
WRONG_KEY = bytes(32)
KMS_KEY = "matrix-key"  # a named key of the node's KMS (created by the fixture)


def body(size: int, salt: int = 0) -> bytes:
    """The same bytes for the same size everywhere in the module: dedup across modes, too."""
    return random.Random(size * 7919 + salt).randbytes(size)


def sse_c(key: bytes) -> dict:
    return {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": key}


def put_args(mode: str) -> dict:
    """PutObject / CreateMultipartUpload / CopyObject (target) arguments of a mode."""
    if mode == "sse-s3":
        return {"ServerSideEncryption": "AES256"}
    if mode == "sse-kms":
        return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": KMS_KEY}
    if mode in KEYS:
        return sse_c(KEYS[mode])
    return {}


def read_args(mode: str) -> dict:
    return sse_c(KEYS[mode]) if mode in KEYS else {}


def source_args(mode: str) -> dict:
    if mode not in KEYS:
        return {}
    return {"CopySourceSSECustomerAlgorithm": "AES256", "CopySourceSSECustomerKey": KEYS[mode]}


class Store:
    """The module's node, a second user, and one bucket per purpose."""

    def __init__(self, node: NodeProcess) -> None:
        self.node = node
        self.s3 = node.client()
        status, user = node.admin("/users", method="POST", body={"name": "matrix-user"})
        assert status == 201, user
        self.other = node.client(user["access_key"], user["secret_key"])
        status, key = node.admin("/kms/keys", method="POST", body={"name": KMS_KEY})
        assert status == 201, key
        for name in ("plain", "plain2", "versioned", "enc-default", "enc-default2"):
            self.s3.create_bucket(Bucket=name)
        self.other.create_bucket(Bucket="others")
        self.s3.put_bucket_versioning(
            Bucket="versioned", VersioningConfiguration={"Status": "Enabled"}
        )
        for name in ("enc-default", "enc-default2"):
            self.s3.put_bucket_encryption(
                Bucket=name,
                ServerSideEncryptionConfiguration={
                    "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
                },
            )

    def bucket(self, mode: str, second: bool = False) -> str:
        if mode == "default":
            return "enc-default2" if second else "enc-default"
        return "plain2" if second else "plain"

    def read(self, bucket: str, key: str, mode: str, client=None, **extra) -> bytes:
        return (
            (client or self.s3)
            .get_object(Bucket=bucket, Key=key, **read_args(mode), **extra)["Body"]
            .read()
        )


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("sse-matrix")
    node = NodeProcess(root / "data", storage_options=f"chunk_size = {CHUNK}").start()
    yield Store(node)
    node.stop()
    shutil.rmtree(root, ignore_errors=True)


def assert_reads(
    store: Store, bucket: str, key: str, mode: str, data: bytes, client=None, **extra
) -> None:
    """Full reads (twice: the second one may come from a cache), a HEAD and a few ranges."""
    for _ in range(2):
        assert store.read(bucket, key, mode, client, **extra) == data, (bucket, key)
    head = (client or store.s3).head_object(Bucket=bucket, Key=key, **read_args(mode), **extra)
    assert head["ContentLength"] == len(data)
    for start, end in ((0, 0), (len(data) - 1, len(data) - 1), (len(data) // 3, len(data) // 2)):
        if len(data):
            got = store.read(bucket, key, mode, client, Range=f"bytes={start}-{end}", **extra)
            assert got == data[start : end + 1], (bucket, key, start, end)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("mode", MODES)
def test_equal_bodies_under_every_mode_read_back(store, mode, size):
    """Two PUTs of one body (then more: another bucket, versions, another user), every one read
    back repeatedly; issue 11's reproduction is the `sse-s3`/9 case."""
    data = body(size)
    key = f"eq-{mode}-{size}"
    s3 = store.s3
    for bucket, name in (
        (store.bucket(mode), key),
        (store.bucket(mode), key + "-2"),
        (store.bucket(mode, second=True), key),
    ):
        s3.put_object(Bucket=bucket, Key=name, Body=data, **put_args(mode))
    first = s3.put_object(Bucket="versioned", Key=key, Body=data, **put_args(mode))["VersionId"]
    s3.put_object(Bucket="versioned", Key=key, Body=data, **put_args(mode))
    other_args = put_args("sse-s3" if mode == "default" else mode)
    store.other.put_object(Bucket="others", Key=key, Body=data, **other_args)
    for bucket, name in (
        (store.bucket(mode), key),
        (store.bucket(mode), key + "-2"),
        (store.bucket(mode, second=True), key),
        ("versioned", key),
    ):
        assert_reads(store, bucket, name, mode, data)
    assert_reads(store, "versioned", key, mode, data, VersionId=first)
    assert_reads(store, "others", key, mode, data, client=store.other)


@pytest.mark.parametrize("size", [1, INLINE + 1, SEALED_CACHED, CHUNK + 1])
def test_a_wrong_or_missing_customer_key_is_refused_never_used(store, size):
    data = body(size, salt=1)
    store.s3.put_object(Bucket="plain", Key=f"wrong-{size}", Body=data, **sse_c(KEYS["sse-c-a"]))
    for _ in range(2):  # before and after the chunk is cached
        assert store.read("plain", f"wrong-{size}", "sse-c-a") == data
        for extra, expected in (
            (sse_c(WRONG_KEY), ("AccessDenied", 403)),
            (sse_c(KEYS["sse-c-b"]), ("AccessDenied", 403)),
            ({}, ("InvalidRequest", 400)),
        ):
            with pytest.raises(ClientError) as exc:
                store.s3.get_object(Bucket="plain", Key=f"wrong-{size}", **extra)
            assert error_code(exc) == expected
            with pytest.raises(ClientError) as exc:
                store.s3.copy_object(
                    Bucket="plain",
                    Key=f"wrong-copy-{size}",
                    CopySource={"Bucket": "plain", "Key": f"wrong-{size}"},
                    **(
                        {
                            "CopySourceSSECustomerAlgorithm": "AES256",
                            "CopySourceSSECustomerKey": extra["SSECustomerKey"],
                        }
                        if extra
                        else {}
                    ),
                )
            assert error_code(exc) == expected


# The directive decides metadata, not where bytes go (the in-place copy below is REPLACE in
# every case): one per size keeps both covered at a third of the cases of the full product.
@pytest.mark.parametrize(("size", "directive"),
                         [(1, "COPY"), (SEALED_CACHED, "REPLACE"), (CHUNK + 1, "COPY")])
@pytest.mark.parametrize("target", MODES)
@pytest.mark.parametrize("source", MODES)
def test_copy_object_across_every_encryption_transition(store, source, target, size, directive):
    data = body(size)
    src, dst = f"cp-src-{source}-{size}", f"cp-{source}-{target}-{size}-{directive}"
    src_bucket, dst_bucket = store.bucket(source), store.bucket(target, second=True)
    store.s3.put_object(Bucket=src_bucket, Key=src, Body=data, **put_args(source))
    store.read(src_bucket, src, source)  # the source's chunk is now in the cache, if it fits
    extra = {"Metadata": {"copied": "yes"}} if directive == "REPLACE" else {}
    store.s3.copy_object(
        Bucket=dst_bucket,
        Key=dst,
        CopySource={"Bucket": src_bucket, "Key": src},
        MetadataDirective=directive,
        **source_args(source),
        **put_args(target),
        **extra,
    )
    assert_reads(store, dst_bucket, dst, target, data)
    assert store.read(src_bucket, src, source) == data
    # ... and in place (a re-encryption, or a metadata change), then back again.
    store.s3.copy_object(
        Bucket=dst_bucket,
        Key=dst,
        CopySource={"Bucket": dst_bucket, "Key": dst},
        MetadataDirective="REPLACE",
        Metadata={"again": "1"},
        **source_args(target),
        **put_args(source),
    )
    assert_reads(store, dst_bucket, dst, source, data)


@pytest.mark.parametrize("upload", MODES)
@pytest.mark.parametrize("source", MODES)
def test_upload_part_copy_across_modes(store, source, upload):
    """Part 1 copies 5 MiB of a multi-chunk source, part 2 a range of a small (cached) one,
    each stored in the upload's key domain, whatever the source's."""
    big, small = body(5 * MiB + 3, salt=2), body(SEALED_CACHED)
    src_bucket, bucket = store.bucket(source), store.bucket(upload)
    store.s3.put_object(Bucket=src_bucket, Key=f"mp-big-{source}", Body=big, **put_args(source))
    store.s3.put_object(Bucket=src_bucket, Key=f"mp-small-{source}", Body=small, **put_args(source))
    store.read(src_bucket, f"mp-small-{source}", source)
    key = f"mp-{source}-{upload}"
    uid = store.s3.create_multipart_upload(Bucket=bucket, Key=key, **put_args(upload))["UploadId"]
    etags = [
        store.s3.upload_part_copy(
            Bucket=bucket,
            Key=key,
            UploadId=uid,
            PartNumber=number,
            CopySource={"Bucket": src_bucket, "Key": name},
            CopySourceRange=copy_range,
            **source_args(source),
            **read_args(upload),
        )["CopyPartResult"]["ETag"]
        for number, name, copy_range in (
            (1, f"mp-big-{source}", f"bytes=2-{5 * MiB + 1}"),
            (2, f"mp-small-{source}", f"bytes=1-{len(small) - 1}"),
        )
    ]
    complete(store, bucket, key, uid, upload, etags)
    data = big[2 : 5 * MiB + 2] + small[1:]
    assert_reads(store, bucket, key, upload, data)
    assert store.read(bucket, key, upload, PartNumber=2) == small[1:]
    got = store.read(bucket, key, upload, Range=f"bytes={5 * MiB - 5}-{5 * MiB + 5}")
    assert got == data[5 * MiB - 5 : 5 * MiB + 6]


@pytest.mark.parametrize("mode", MODES)
def test_multipart_uploaded_parts(store, mode):
    """Uploaded parts: the first dedups with the part copies' chunks of the same key domain."""
    parts = [body(5 * MiB + 3, salt=2)[2 : 5 * MiB + 2], body(1, salt=3)]
    bucket, key = store.bucket(mode), f"mp-up-{mode}"
    uid = store.s3.create_multipart_upload(Bucket=bucket, Key=key, **put_args(mode))["UploadId"]
    etags = [
        store.s3.upload_part(
            Bucket=bucket, Key=key, UploadId=uid, PartNumber=number, Body=part, **read_args(mode)
        )["ETag"]
        for number, part in enumerate(parts, 1)
    ]
    complete(store, bucket, key, uid, mode, etags)
    assert_reads(store, bucket, key, mode, b"".join(parts))
    assert store.read(bucket, key, mode, PartNumber=2) == parts[1]


def complete(store: Store, bucket: str, key: str, uid: str, mode: str, etags: list[str]) -> None:
    store.s3.complete_multipart_upload(
        Bucket=bucket,
        Key=key,
        UploadId=uid,
        **read_args(mode),
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, 1)]},
    )


@pytest.fixture(scope="module")
def cluster_s3(tmp_path_factory: pytest.TempPathFactory):
    """A 3-node cluster (RF 3) whose client sends each request to a random member."""
    root = tmp_path_factory.mktemp("sse-matrix-cluster")
    cluster = ClusterProcesses(root, 3, storage_options=f"chunk_size = {CHUNK}").start()
    s3 = cluster.client()
    s3.create_bucket(Bucket="cluster")
    yield s3
    cluster.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("size", [1, INLINE + 1, SEALED_CACHED, CACHED + 1, CHUNK + 1])
@pytest.mark.parametrize("mode", ["none", "sse-s3", "sse-c-a", "sse-c-b"])
def test_equal_bodies_on_a_cluster(cluster_s3, mode, size):
    """The cluster's read path (any member, local copy or a peer's) under the same matrix."""
    data = body(size)
    for key in ("one", "two"):
        cluster_s3.put_object(
            Bucket="cluster", Key=f"{mode}-{size}-{key}", Body=data, **put_args(mode)
        )
    for _ in range(3):  # random members: cached, uncached, local or not
        for key in ("one", "two"):
            got = cluster_s3.get_object(
                Bucket="cluster", Key=f"{mode}-{size}-{key}", **read_args(mode)
            )
            assert got["Body"].read() == data
            ranged = cluster_s3.get_object(
                Bucket="cluster",
                Key=f"{mode}-{size}-{key}",
                Range=f"bytes={size // 2}-{size - 1}",
                **read_args(mode),
            )
            assert ranged["Body"].read() == data[size // 2 :]
    copy, target = f"{mode}-{size}-copy", "sse-c-b" if mode != "sse-c-b" else "none"
    cluster_s3.copy_object(
        Bucket="cluster",
        Key=copy,
        CopySource={"Bucket": "cluster", "Key": f"{mode}-{size}-one"},
        **source_args(mode),
        **put_args(target),
    )
    for _ in range(2):
        got = cluster_s3.get_object(Bucket="cluster", Key=copy, **read_args(target))
        assert got["Body"].read() == data
