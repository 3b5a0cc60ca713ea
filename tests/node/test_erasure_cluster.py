"""Erasure coding end to end: four real node processes with `cluster.erasure_coding = "3+1"`.

Every way bytes get in (PutObject, multipart parts, CopyObject across encryption domains,
UploadPartCopy) x every size class (inline, replicated below `erasure_min_size`, coded, several
chunks) x encryption (none, SSE-S3, SSE-KMS, SSE-C) must read back byte-exact, in full, by range
and by part, with any one member stopped. Coded chunks are looked for on the disks: k + m
fragment files on k + m distinct members, no full copy anywhere. A damaged fragment is read
around and rebuilt; with m + 1 fragments unreachable the answer is 503, never other bytes.
One cluster for the module: four processes on two cores are costly.
"""

from __future__ import annotations

import hashlib
import random
import shutil
import time
from pathlib import Path

import pytest
from anode_procs import ClusterProcesses
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from s3util import error_code

# four processes on a loaded 2-core machine: the cluster's start counts toward the first test
pytestmark = pytest.mark.timeout(600)

KiB = 1024
CHUNK = 128 * KiB  # storage.chunk_size
INLINE = 32 * KiB  # storage.inline_max (default)
THRESHOLD = 64 * KiB  # cluster.erasure_min_size
MIN_PART = 5 * 1024 * KiB
SIZES = [
    1,
    INLINE + 1,
    THRESHOLD - 49,
    THRESHOLD - 1,
    THRESHOLD,
    THRESHOLD + 1,
    CHUNK,
    3 * CHUNK + 7,
]
MODES = ["none", "sse-s3", "sse-kms", "sse-c"]
SSE_C_KEY = bytes(range(32))
KMS_KEY = "ec-key"


def put_args(mode: str) -> dict:
    return {
        "none": {},
        "sse-s3": {"ServerSideEncryption": "AES256"},
        "sse-kms": {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": KMS_KEY},
        "sse-c": {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": SSE_C_KEY},
    }[mode]


def read_args(mode: str) -> dict:
    return put_args("sse-c") if mode == "sse-c" else {}


def source_args(mode: str) -> dict:
    if mode != "sse-c":
        return {}
    return {"CopySourceSSECustomerAlgorithm": "AES256", "CopySourceSSECustomerKey": SSE_C_KEY}


def body(size: int, seed: int) -> bytes:
    return random.Random(size * 7919 + seed).randbytes(size)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    cluster = ClusterProcesses(
        tmp_path_factory.mktemp("ec"),
        4,
        replication_factor=3,
        storage_options=f'chunk_size = "{CHUNK // KiB}KiB"\ngc_grace = "10s"\ngc_interval = "0.5s"',
        extra_cluster=f'erasure_coding = "3+1"\nerasure_min_size = "{THRESHOLD // KiB}KiB"\n'
        'erasure_classes = ["STANDARD", "STANDARD_IA"]\nrepair_interval = "1s"\n',
    ).start(timeout=180)  # four processes electing a leader on a loaded 2-core machine
    status, _ = cluster.nodes[0].admin("/kms/keys", method="POST", body={"name": KMS_KEY})
    assert status in (200, 201), status
    yield cluster
    cluster.kill()


@pytest.fixture(scope="module")
def s3(cluster):
    return cluster.client()


@pytest.fixture(scope="module")
def bucket(s3) -> str:
    s3.create_bucket(Bucket="erasure")
    return "erasure"


def files(cluster: ClusterProcesses) -> dict[str, dict[str, Path]]:
    """Every chunk file on every member: node id -> {hex name: path}."""
    return {n.node_id: {p.name: p for p in n.chunk_files()} for n in cluster.nodes}


def get(s3, bucket: str, key: str, mode: str, **kwargs) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key, **read_args(mode), **kwargs)["Body"].read()


def check_reads(s3, bucket: str, key: str, data: bytes, mode: str, rng: random.Random) -> None:
    assert get(s3, bucket, key, mode) == data
    if data:
        start = rng.randrange(len(data))
        end = rng.randrange(start, len(data))
        got = get(s3, bucket, key, mode, Range=f"bytes={start}-{end}")
        assert got == data[start : end + 1], (len(data), start, end)
        tail = rng.randrange(1, len(data) + 1)
        assert get(s3, bucket, key, mode, Range=f"bytes=-{tail}") == data[-tail:]
    head = s3.head_object(Bucket=bucket, Key=key, **read_args(mode))
    assert head["ContentLength"] == len(data)


def put(s3, bucket: str, key: str, data: bytes, mode: str, how: str, rng: random.Random) -> None:
    if how == "put":
        s3.put_object(Bucket=bucket, Key=key, Body=data, **put_args(mode))
    elif how == "copy":
        source_mode = rng.choice(MODES)
        s3.put_object(Bucket=bucket, Key=key + ".src", Body=data, **put_args(source_mode))
        s3.copy_object(
            Bucket=bucket,
            Key=key,
            CopySource={"Bucket": bucket, "Key": key + ".src"},
            **put_args(mode),
            **source_args(source_mode),
        )
    else:  # multipart: a full-size first part (coded chunks) and the body as the last part
        upload = s3.create_multipart_upload(Bucket=bucket, Key=key, **put_args(mode))["UploadId"]
        first = body(MIN_PART, 1)
        parts = []
        for number, part in ((1, first), (2, data)):
            if how == "part-copy" and number == 2:
                s3.put_object(Bucket=bucket, Key=key + ".src", Body=data)
                etag = s3.upload_part_copy(
                    Bucket=bucket,
                    Key=key,
                    UploadId=upload,
                    PartNumber=2,
                    CopySource={"Bucket": bucket, "Key": key + ".src"},
                    **read_args(mode),
                )["CopyPartResult"]["ETag"]
            else:
                etag = s3.upload_part(
                    Bucket=bucket,
                    Key=key,
                    UploadId=upload,
                    PartNumber=number,
                    Body=part,
                    **read_args(mode),
                )["ETag"]
            parts.append({"PartNumber": number, "ETag": etag})
        s3.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts}
        )


_cases = iter(range(10**6))


@settings(
    max_examples=16,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    size=st.sampled_from(SIZES),
    mode=st.sampled_from(MODES),
    how=st.sampled_from(["put", "put", "copy", "multipart", "part-copy"]),
    seed=st.integers(0, 3),
)
def test_round_trips_at_every_size_mode_and_write_path(cluster, s3, bucket, size, mode, how, seed):
    rng = random.Random(size + seed)
    key = f"rt-{next(_cases)}-{how}-{mode}-{size}"
    data = body(size, seed)
    put(s3, bucket, key, data, mode, how, rng)
    expected = body(MIN_PART, 1) + data if how in ("multipart", "part-copy") else data
    check_reads(s3, bucket, key, expected, mode, rng)
    if how in ("multipart", "part-copy"):
        part = s3.get_object(Bucket=bucket, Key=key, PartNumber=2, **read_args(mode))
        assert part["Body"].read() == data


def _fragment_layout(cluster) -> tuple[set[str], set[str]]:
    names: dict[str, set[str]] = {}
    for node_id, found in files(cluster).items():
        for name in found:
            names.setdefault(name, set()).add(node_id)
    return set(names), {n for n, holders in names.items() if len(holders) > 1}


def test_a_coded_chunk_is_k_plus_m_fragments_on_distinct_members_and_no_full_copy(
    cluster, s3, bucket
):
    data = body(CHUNK, 99)  # one coded chunk
    chunk_id = hashlib.sha256(data).hexdigest()
    before, _ = _fragment_layout(cluster)
    s3.put_object(Bucket=bucket, Key="layout", Body=data)
    after, shared = _fragment_layout(cluster)
    assert chunk_id not in after  # the full copy was dropped once the fragments were durable
    new = after - before
    assert len(new) == 4, new  # 3 data + 1 parity fragment
    assert not (new & shared)  # each on its own member
    assert get(s3, bucket, "layout", "none") == data


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:  # a surplus copy the repairer dropped meanwhile
        return 0


def _head(path: Path) -> bytes:
    """A chunk file's first 48 bytes (a fragment's header); b"" if it went meanwhile."""
    try:
        with open(path, "rb") as f:
            return f.read(48)
    except FileNotFoundError:
        return b""


def _raw(cluster) -> int:
    return sum(sum(_size(p) for p in n.chunk_files()) for n in cluster.nodes)


def test_raw_bytes_coded_vs_replicated_and_status(cluster, s3, bucket):
    """The same logical bytes take 4/3 (plus headers) coded and 3x replicated; status says so."""
    size = 8 * CHUNK
    start = _raw(cluster)
    s3.put_object(Bucket=bucket, Key="raw-coded", Body=body(size, 7), StorageClass="STANDARD_IA")
    coded = _raw(cluster) - start
    s3.put_object(
        Bucket=bucket, Key="raw-replicated", Body=body(size, 8), StorageClass="REDUCED_REDUNDANCY"
    )  # not in erasure_classes: replicated
    deadline = time.monotonic() + 30
    while (replicated := _raw(cluster) - start - coded) > 3 * size:  # the writer's extra copy
        assert time.monotonic() < deadline, "the repairer kept a fourth copy"
        time.sleep(0.5)
    print(
        f"logical {size} B: coded 3+1 {coded} B ({coded / size:.3f}x), "
        f"replicated x3 {replicated} B ({replicated / size:.3f}x)"
    )
    assert size * 4 / 3 <= coded <= size * 4 / 3 * 1.02
    assert replicated == 3 * size
    head = s3.head_object(Bucket=bucket, Key="raw-coded")
    assert head["StorageClass"] == "STANDARD_IA"  # echoed back, as AWS does for non-STANDARD
    listed = {
        o["Key"]: o["StorageClass"]
        for o in s3.list_objects_v2(Bucket=bucket, Prefix="raw-")["Contents"]
    }
    assert listed == {"raw-coded": "STANDARD_IA", "raw-replicated": "REDUCED_REDUNDANCY"}
    status, doc = cluster.nodes[1].admin("/status")
    assert status == 200
    assert doc["erasure_coding"] == "3+1"
    storage = doc["storage"]
    assert storage["coded_chunks"] >= 8 and storage["fragment_bytes"] >= coded
    assert storage["raw_bytes"] == _raw(cluster)
    assert storage["raw_bytes_complete"] is True


def _fragments_of(cluster, s3, bucket: str, key: str, data: bytes) -> dict[str, list[Path]]:
    """node id -> the fragment files of the object's one coded chunk there (by header)."""
    chunk_id = hashlib.sha256(data).digest()
    found: dict[str, list[Path]] = {}
    for n in cluster.nodes:
        for p in n.chunk_files():
            head = _head(p)
            if head[:4] == b"AnEC" and head[16:48] == chunk_id:
                found.setdefault(n.node_id, []).append(p)
    return found


def test_damaged_fragment_is_read_around_and_rebuilt(cluster, s3, bucket):
    data = body(CHUNK, 11)
    s3.put_object(Bucket=bucket, Key="damaged", Body=data)
    held = _fragments_of(cluster, s3, bucket, "damaged", data)
    assert sum(len(v) for v in held.values()) == 4
    victim = sorted(p for paths in held.values() for p in paths)[0]
    good = victim.read_bytes()
    victim.write_bytes(good[:100] + bytes([good[100] ^ 1]) + good[101:])
    for _ in range(3):  # each node reads it: the damaged one is skipped, the bytes exact
        assert get(s3, bucket, "damaged", "none") == data
    deadline = time.monotonic() + 30
    while victim.read_bytes() != good:
        assert time.monotonic() < deadline, "the damaged fragment was not rebuilt"
        for n in cluster.nodes:  # a scrub round on its member finds it too
            n.admin("/scrub", method="POST")
        time.sleep(0.5)


def test_m_plus_1_lost_fragments_answer_503_never_other_bytes(cluster, s3, bucket):
    data = body(CHUNK, 12)
    s3.put_object(Bucket=bucket, Key="lost", Body=data)
    held = _fragments_of(cluster, s3, bucket, "lost", data)
    aside = []
    for paths in list(held.values())[:2]:  # m + 1 = 2 fragments gone
        for p in paths:
            p.rename(p.with_name(p.name + ".aside"))
            aside.append(p)
    try:
        with pytest.raises(ClientError) as e:
            get(s3, bucket, "lost", "none")
        assert error_code(e)[1] == 503
        with pytest.raises(ClientError) as e:
            get(s3, bucket, "lost", "none", Range="bytes=0-99")
        assert error_code(e)[1] == 503
    finally:
        for p in aside:
            p.with_name(p.name + ".aside").rename(p)
    assert get(s3, bucket, "lost", "none") == data
    metrics = [
        line
        for n in cluster.nodes
        for line in _metrics(n).splitlines()
        if line.startswith("anode_erasure_unrecoverable_reads_total")
    ]
    assert sum(float(line.split()[-1]) for line in metrics) >= 1


def _admin(node, path: str, *, method: str) -> tuple[int, dict]:
    """An admin call allowed two minutes: a drain checks every fragment with its member."""
    import json
    import urllib.error
    import urllib.request

    request = urllib.request.Request(node.admin_url + path, method=method)
    request.add_header("Authorization", f"Bearer {node.secret_key}")
    try:
        with urllib.request.urlopen(request, timeout=120) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def _metrics(node) -> str:
    import urllib.request

    with urllib.request.urlopen(node.admin_url + "/metrics", timeout=10) as r:
        return r.read().decode()


def test_one_member_stopped_reads_every_object_and_repair_restores_fragments(cluster, s3, bucket):
    keys = {}
    for size in SIZES:
        key = f"degraded-{size}"
        keys[key] = body(size, 21)
        s3.put_object(Bucket=bucket, Key=key, Body=keys[key])
    victim = cluster.nodes[3]
    lost = {p.name for p in victim.chunk_files() if _head(p)[:4] == b"AnEC"}  # fragments
    assert lost
    victim.stop()
    shutil.rmtree(victim.data_dir / "chunks")  # its disk is gone too
    try:
        front = cluster.nodes[0].client()
        for key, data in keys.items():
            assert get(front, bucket, key, "none") == data
            assert get(front, bucket, key, "none", Range="bytes=0-70000") == data[:70001]
        with pytest.raises(ClientError) as e:  # 3 live members cannot take 4 fragments
            front.put_object(Bucket=bucket, Key="while-down", Body=body(CHUNK, 22))
        assert error_code(e)[1] == 503
        front.put_object(Bucket=bucket, Key="small-while-down", Body=b"x" * 100)  # inline
    finally:
        victim.start(timeout=180)
    deadline = time.monotonic() + 180  # generous: a loaded machine restores slowly
    while missing := lost - {p.name for p in victim.chunk_files()}:
        assert time.monotonic() < deadline, f"fragments not restored: {sorted(missing)}"
        time.sleep(0.5)
    for key, data in keys.items():
        assert get(s3, bucket, key, "none") == data


def test_deleted_objects_fragments_are_collected(cluster, s3, bucket):
    data = body(2 * CHUNK, 31)
    s3.put_object(Bucket=bucket, Key="gc", Body=data)
    before, _ = _fragment_layout(cluster)
    held = _fragments_of(cluster, s3, bucket, "gc", data[:CHUNK])
    names = {p.name for paths in held.values() for p in paths}
    assert len(names) == 4 and names <= before
    s3.delete_object(Bucket=bucket, Key="gc")
    deadline = time.monotonic() + 60
    while names & _fragment_layout(cluster)[0]:
        assert time.monotonic() < deadline, "fragments of a deleted object stayed"
        time.sleep(0.5)


def test_select_reads_coded_objects_encrypted_too(cluster, s3, bucket):
    rows = "".join(f"{i},name-{i}\n" for i in range(20000)).encode()  # ~250 KiB: coded chunks
    for mode in ("none", "sse-c"):
        s3.put_object(Bucket=bucket, Key=f"select-{mode}.csv", Body=rows, **put_args(mode))
        answer = s3.select_object_content(
            Bucket=bucket,
            Key=f"select-{mode}.csv",
            Expression="SELECT count(*) FROM S3Object s WHERE s._1 LIKE '%7'",
            ExpressionType="SQL",
            InputSerialization={"CSV": {}},
            OutputSerialization={"CSV": {}},
            **read_args(mode),
        )
        out = b"".join(e["Records"]["Payload"] for e in answer["Payload"] if "Records" in e)
        assert out.strip() == b"2000", out


def test_draining_below_k_plus_m_never_finishes_and_removal_is_refused(cluster, s3, bucket):
    """With exactly k + m members, a drained member's fragments have nowhere to go: the drain
    reports them remaining and the member cannot be removed (last: it leaves n4 draining)."""
    s3.put_object(Bucket=bucket, Key="drain", Body=body(CHUNK, 41))
    status, doc = _admin(cluster.nodes[0], "/cluster/members/n4/drain", method="POST")
    assert status == 200 and doc["remaining"] > 0, doc
    status, doc = _admin(cluster.nodes[0], "/cluster/members/n4", method="DELETE")
    assert status == 409, doc
    assert get(s3, bucket, "drain", "none") == body(CHUNK, 41)
