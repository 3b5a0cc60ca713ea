"""No 2xx with bytes that were not verified: a damaged or truncated chunk file on one member,
read through every path that reads chunks (GET, ranged GET, another key sharing the chunk,
CopyObject, UploadPartCopy, S3 Select).

On one node there is no other copy: the answer is an error (500 before the headers, a cut
connection after them), and `anode admin damaged` lists the chunk and the objects it breaks.
On a 3-node cluster (RF 3) the damaged member serves the exact bytes from another holder and
replaces its own copy at once (repair rounds and the scrubber are set far off, so only the read
can have triggered it).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from anode_procs import ClusterProcesses, NodeProcess
from botocore.exceptions import BotoCoreError, ClientError, EventStreamError, ReadTimeoutError
from s3util import error_code

MiB = 1024 * 1024
CHUNK = 4 * MiB  # the default chunk_size
SLOW = 'repair_interval = "1h"\nscrub_interval = "1h"\n'
_names = itertools.count()


class Target:
    """Where the damage is done (`victim`) and read from (`s3`), and what a read must give."""

    def __init__(self, victim: NodeProcess, members: list[NodeProcess], good_copies: bool):
        self.victim = victim
        self.members = members
        self.good_copies = good_copies  # another member holds an intact copy
        self.s3 = victim.client(connect_timeout=2, read_timeout=30)

    def bucket(self) -> str:
        name = f"verify-{next(_names)}"
        self.s3.create_bucket(Bucket=name)
        return name


@pytest.fixture(scope="module", params=["single", "cluster"])
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp(f"verify-{request.param}")
    if request.param == "single":
        node = NodeProcess(root / "data", cluster=f"[cluster]\n{SLOW}").start()
        yield Target(node, [node], good_copies=False)
        node.stop()
    else:
        cluster = ClusterProcesses(root, 3, replication_factor=3, extra_cluster=SLOW).start()
        yield Target(cluster.nodes[0], cluster.nodes, good_copies=True)
        cluster.stop()
    shutil.rmtree(root, ignore_errors=True)


def chunk_path(proc: NodeProcess, chunk: bytes) -> Path:
    digest = hashlib.sha256(chunk).hexdigest()
    path = proc.data_dir / "chunks" / digest[:2] / digest
    deadline = time.monotonic() + 10
    while not path.exists() and time.monotonic() < deadline:  # a copy still on its way
        time.sleep(0.1)
    return path


def flip(path: Path, offset: int, count: int = 16) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        old = f.read(count)
        f.seek(offset)
        f.write(bytes(b ^ 0xFF for b in old))


def truncate(path: Path, size: int) -> None:
    with open(path, "r+b") as f:
        f.truncate(size)


def intact(path: Path) -> bool:
    return path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() == path.name


def expect(t: Target, read, data: bytes, damaged: list[Path]) -> None:
    """A cluster answers `data` and repairs the damaged copies at once; a single node fails."""
    if t.good_copies:
        assert read() == data
        deadline = time.monotonic() + 20
        while not all(intact(p) for p in damaged):
            assert time.monotonic() < deadline, "the damaged copy was not replaced"
            time.sleep(0.1)
    else:
        refused(read)


def refused(read) -> None:
    """An error answer (500 InternalError) or a cut connection; never bytes."""
    try:
        got = read()
    except EventStreamError as exc:  # S3 Select, after records were streamed: an error event
        assert exc.response["Error"]["Code"] == "InternalError"
    except ClientError as exc:
        response = exc.response
        assert response["Error"]["Code"] == "InternalError", response
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 500
    except (BotoCoreError, ConnectionError):
        pass  # headers were out already: the connection was cut
    else:
        raise AssertionError(f"answered {len(got)} bytes from a damaged chunk")


def put(t: Target, bucket: str, key: str, data: bytes, **extra) -> None:
    t.s3.put_object(Bucket=bucket, Key=key, Body=data, **extra)


def get(t: Target, bucket: str, key: str, **extra):
    return lambda: t.s3.get_object(Bucket=bucket, Key=key, **extra)["Body"].read()


def test_get_and_ranged_get_inside_a_flipped_chunk(target):
    t, bucket = target, target.bucket()
    data = os.urandom(2 * CHUNK + 12345)
    put(t, bucket, "k", data)
    path = chunk_path(t.victim, data[:CHUNK])
    flip(path, 1_000_000)
    # The first partial read of a chunk verifies it whole (no segment table yet).
    expect(t, get(t, bucket, "k", Range="bytes=1000000-1004095"), data[1000000:1004096], [path])
    expect(t, get(t, bucket, "k"), data, [path])
    assert (
        get(t, bucket, "k", Range=f"bytes={CHUNK + 5}-{CHUNK + 4100}")()
        == (data[CHUNK + 5 : CHUNK + 4101])
    )  # another chunk: unaffected


def test_damage_after_the_segment_table_exists(target):
    """Later partial reads verify only the segments they cover: a damaged one fails, the
    others of the same chunk are still served (verified)."""
    t, bucket = target, target.bucket()
    data = os.urandom(CHUNK + 100)
    put(t, bucket, "k", data)
    assert get(t, bucket, "k", Range="bytes=10-20")() == data[10:21]  # makes the table
    path = chunk_path(t.victim, data[:CHUNK])
    flip(path, 3 * MiB)
    ranged = get(t, bucket, "k", Range=f"bytes={3 * MiB - 10}-{3 * MiB + 4085}")
    if t.good_copies:
        expect(t, ranged, data[3 * MiB - 10 : 3 * MiB + 4086], [path])
    else:
        refused(ranged)
        assert get(t, bucket, "k", Range="bytes=0-4095")() == data[:4096]


def test_another_key_sharing_the_chunk(target):
    t, bucket = target, target.bucket()
    data = os.urandom(CHUNK + 7)
    put(t, bucket, "first", data)
    put(t, bucket, "second", data)  # deduplicated: the same chunk files
    path = chunk_path(t.victim, data[:CHUNK])
    flip(path, 2 * MiB)
    expect(
        t,
        get(t, bucket, "second", Range=f"bytes={2 * MiB}-{2 * MiB + 4095}"),
        data[2 * MiB : 2 * MiB + 4096],
        [path],
    )
    expect(t, get(t, bucket, "first"), data, [path])


def test_copy_object_never_copies_damage(target):
    t, bucket = target, target.bucket()
    data = os.urandom(CHUNK + 3)
    put(t, bucket, "src", data)
    path = chunk_path(t.victim, data[:CHUNK])
    flip(path, 12345)

    def copy_and_read() -> bytes:  # to SSE-S3: every byte is read, decrypted... re-sealed
        t.s3.copy_object(
            Bucket=bucket,
            Key="dst",
            CopySource={"Bucket": bucket, "Key": "src"},
            ServerSideEncryption="AES256",
        )
        return get(t, bucket, "dst")()

    expect(t, copy_and_read, data, [path])
    if not t.good_copies:
        with pytest.raises(ClientError) as exc:
            t.s3.head_object(Bucket=bucket, Key="dst")
        assert error_code(exc) == ("404", 404)  # nothing was created


def test_upload_part_copy_never_copies_damage(target):
    t, bucket = target, target.bucket()
    data = os.urandom(CHUNK + 3)
    put(t, bucket, "src", data)
    path = chunk_path(t.victim, data[:CHUNK])
    flip(path, 2 * MiB + 17)
    uid = t.s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]

    def part_copy_and_read() -> bytes:
        etag = t.s3.upload_part_copy(
            Bucket=bucket,
            Key="mp",
            UploadId=uid,
            PartNumber=1,
            CopySource={"Bucket": bucket, "Key": "src"},
            CopySourceRange=f"bytes={2 * MiB}-{2 * MiB + 99_999}",
        )["CopyPartResult"]["ETag"]
        t.s3.complete_multipart_upload(
            Bucket=bucket,
            Key="mp",
            UploadId=uid,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]},
        )
        return get(t, bucket, "mp")()

    expect(t, part_copy_and_read, data[2 * MiB : 2 * MiB + 100_000], [path])
    if not t.good_copies:
        assert t.s3.list_parts(Bucket=bucket, Key="mp", UploadId=uid).get("Parts", []) == []


@pytest.mark.parametrize("damaged_chunk", [0, 1])
def test_select_never_answers_over_damaged_bytes(target, damaged_chunk):
    """Damage in the first chunk fails before any record (500); in the second, records already
    streamed are followed by an error event, never by the End of a complete-looking answer."""
    t, bucket = target, target.bucket()
    rows = [f"{i},{os.urandom(8).hex()}\n" for i in range(260_000)]
    data = "".join(rows).encode()
    assert len(data) > CHUNK
    put(t, bucket, "data.csv", data)
    chunk = data[damaged_chunk * CHUNK : (damaged_chunk + 1) * CHUNK]
    path = chunk_path(t.victim, chunk)
    flip(path, len(chunk) // 2)

    def select() -> bytes:
        response = t.s3.select_object_content(
            Bucket=bucket,
            Key="data.csv",
            Expression="SELECT s._1 FROM s3object s",
            ExpressionType="SQL",
            InputSerialization={"CSV": {}},
            OutputSerialization={"CSV": {}},
        )
        out = b""
        for event in response["Payload"]:
            out += event.get("Records", {}).get("Payload", b"")
        return out

    expect(t, select, b"".join(row.split(",")[0].encode() + b"\n" for row in rows), [path])


def test_truncated_chunk_file(target):
    t, bucket = target, target.bucket()
    data = os.urandom(CHUNK + 50)
    put(t, bucket, "k", data)
    path = chunk_path(t.victim, data[:CHUNK])
    truncate(path, CHUNK // 2)  # no segment table yet: the whole chunk is checked
    expect(
        t,
        get(t, bucket, "k", Range=f"bytes={CHUNK - 4096}-{CHUNK - 1}"),
        data[CHUNK - 4096 : CHUNK],
        [path],
    )
    if t.good_copies:
        assert get(t, bucket, "k", Range="bytes=0-9")() == data[:10]  # now with a table
    truncate(path, CHUNK - 1000)  # the table says how long the chunk is
    expect(
        t,
        get(t, bucket, "k", Range=f"bytes={CHUNK - 100}-{CHUNK + 10}"),
        data[CHUNK - 100 : CHUNK + 11],
        [path],
    )
    truncate(path, 0)
    expect(t, get(t, bucket, "k"), data, [path])


def test_damage_in_a_later_chunk_cuts_the_stream(target):
    """The first chunk is fine, so the status line and Content-Length are sent before the damage
    is met: the connection is cut rather than the body completed."""
    t, bucket = target, target.bucket()
    data = os.urandom(3 * CHUNK)
    put(t, bucket, "k", data)
    path = chunk_path(t.victim, data[2 * CHUNK :])
    flip(path, 100)
    if t.good_copies:
        expect(t, get(t, bucket, "k"), data, [path])
        return
    response = t.victim.client(read_timeout=10).get_object(Bucket=bucket, Key="k")
    assert response["ContentLength"] == len(data)
    with pytest.raises(BotoCoreError) as exc:
        response["Body"].read()
    # Cut at once: not a client left waiting for the rest until its read timeout.
    assert not isinstance(exc.value, ReadTimeoutError), exc.value
    assert get(t, bucket, "k", Range="bytes=0-9")() == data[:10]  # the node serves on


def test_damaged_chunks_are_listed_with_their_objects(target):
    t, bucket = target, target.bucket()
    data, unread = os.urandom(CHUNK), os.urandom(CHUNK)
    put(t, bucket, "a", data)
    put(t, bucket, "b", data)
    put(t, bucket, "unread", unread)
    read_path, scrub_path = chunk_path(t.victim, data), chunk_path(t.victim, unread)
    flip(read_path, 99)
    flip(scrub_path, 99)
    expect(t, get(t, bucket, "a"), data, [read_path])
    status, report = t.victim.admin("/scrub", method="POST")  # finds the one nobody read
    assert status == 200 and report["bad"] >= 1
    status, report = t.victim.admin("/damaged")
    assert status == 200
    listed = {c["chunk"]: c for c in report["chunks"]}
    if t.good_copies:
        assert read_path.name not in listed and scrub_path.name not in listed
        assert intact(read_path) and intact(scrub_path)
        return
    assert set(listed) >= {read_path.name, scrub_path.name}
    objects = {(o["bucket"], o["key"]) for o in listed[read_path.name]["objects"]}
    assert objects == {(bucket, "a"), (bucket, "b")}
    assert [o["key"] for o in listed[scrub_path.name]["objects"]] == ["unread"]
    for action in ("damaged", "scrub"):  # the CLI: a GET and a POST
        cli = subprocess.run(
            [sys.executable, "-m", "anode.cli", "admin", "--url", t.victim.admin_url, action],
            env=dict(os.environ, ANODE_ROOT_SECRET_KEY=t.victim.secret_key),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert read_path.name in cli and '"key": "unread"' in cli
    assert "anode_damaged_chunks" in t.victim.admin("/metrics")[1]


def test_no_intact_copy_anywhere_is_an_error_on_every_member(target):
    t, bucket = target, target.bucket()
    data = os.urandom(CHUNK + 1)
    put(t, bucket, "k", data)
    for member in t.members:
        flip(chunk_path(member, data[:CHUNK]), 4096)
    for member in t.members:
        s3 = member.client(connect_timeout=2, read_timeout=30)
        refused(
            lambda s3=s3: s3.get_object(Bucket=bucket, Key="k", Range="bytes=4000-8000")[
                "Body"
            ].read()
        )
        refused(lambda s3=s3: s3.get_object(Bucket=bucket, Key="k")["Body"].read())
