"""A full data volume must not wedge the node: writes are refused with 507 before the reserve
is touched, deletes and collection free space, the node restarts, nothing acknowledged is lost.
On a small tmpfs of the test's own (root only)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from anode_procs import ClusterProcesses, NodeProcess
from botocore.exceptions import ClientError

from anode.space import reserve_action

MiB = 1024 * 1024
RESERVE = 8 * MiB


@contextlib.contextmanager
def small_tmpfs(mount: Path) -> Iterator[Path]:
    """A 64 MiB tmpfs at `mount`, unmounted afterwards; skips the test where it cannot be."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def volume(tmp_path: Path):
    with small_tmpfs(tmp_path / "vol") as mount:
        yield mount


@pytest.fixture
def full_node(volume: Path):
    # the data directory is the mount itself: config and log stay outside, on the test's tmp
    proc = NodeProcess(
        volume,
        storage_options=f'reserve = "{RESERVE}"\ngc_grace = "1s"\n'
        'gc_interval = "0.2s"\nchunk_size = "1MiB"\n'
        'lifecycle_interval = "0.3s"\nlifecycle_day_seconds = 1',
    )
    yield proc.start()
    proc.kill()


def _code(call, **params) -> str:
    try:
        call(**params)
        return "OK"
    except ClientError as e:
        return e.response["Error"]["Code"]


def _fill(s3, bucket: str, size: int, prefix: str, acked: dict[str, bytes], limit: int) -> int:
    """PUT unique bodies of `size` until one is refused; that 507 comes before `limit` PUTs."""
    for n in range(limit):
        key, body = f"{prefix}{n}", os.urandom(size)
        code = _code(s3.put_object, Bucket=bucket, Key=key, Body=body)
        if code != "OK":
            assert code == "InsufficientStorage", code
            return n
        acked[key] = body
    raise AssertionError(f"{limit} PUTs of {size} bytes and no 507 on a 64 MiB volume")


def _all_readable(s3, bucket: str, acked: dict[str, bytes]) -> None:
    for key, body in acked.items():
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body, key


def _volume(node: NodeProcess) -> dict:
    status, doc = node.admin("/status")
    assert status == 200, doc
    return doc["volume"]


def _wait(predicate, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_full_volume_refuses_writes_frees_space_on_delete_and_restarts(full_node):
    s3 = full_node.client()
    s3.create_bucket(Bucket="bkt")
    acked: dict[str, bytes] = {}
    big = _fill(s3, "bkt", 1 * MiB, "big", acked, 80)  # chunk files
    small = _fill(s3, "bkt", 30 * 1024, "small", acked, 3000)  # inline rows in RocksDB
    assert big > 20
    vol = _volume(full_node)
    assert RESERVE <= vol["free_bytes"] < RESERVE + MiB, vol  # the headroom is intact...
    assert vol["reserve_file_bytes"] == RESERVE and vol["writes_refused"] >= 2, vol
    _, metrics = full_node.admin("/metrics")
    values = dict(line.split(" ", 1) for line in metrics.splitlines() if line[:1] != "#")
    assert float(values["anode_volume_reserve_bytes"]) == RESERVE
    assert "anode_volume_free_bytes" in metrics and "anode_volume_writes_refused_total" in metrics

    # ...so the node restarts after kill -9 on the full volume, with everything acknowledged
    full_node.kill()
    full_node.start()
    _all_readable(s3, "bkt", acked)

    # deletes work while full, the collector frees the chunks, and writes are admitted again
    for n in range(big // 2):
        s3.delete_object(Bucket="bkt", Key=f"big{n}")
        del acked[f"big{n}"]
    for n in range(0, small, 2):
        s3.delete_object(Bucket="bkt", Key=f"small{n}")
        del acked[f"small{n}"]
    _wait(
        lambda: _volume(full_node)["free_bytes"] > RESERVE + 4 * MiB,
        "deleted chunks were never collected",
    )
    s3.put_object(Bucket="bkt", Key="after", Body=b"a" * MiB)
    acked["after"] = b"a" * MiB
    _all_readable(s3, "bkt", acked)


def test_lifecycle_rule_set_on_a_full_volume_expires_and_frees_it(full_node):
    """A lifecycle rule is admitted while writes are refused, and its expiry (with the
    collector) frees the volume; objects outside the rule stay."""
    s3 = full_node.client()
    s3.create_bucket(Bucket="bkt")
    keep: dict[str, bytes] = {}
    for n in range(10):
        keep[f"keep/{n}"] = os.urandom(MiB)
        s3.put_object(Bucket="bkt", Key=f"keep/{n}", Body=keep[f"keep/{n}"])
    expiring: dict[str, bytes] = {}
    _fill(s3, "bkt", 1 * MiB, "tmp/", expiring, 80)
    _fill(s3, "bkt", 30 * 1024, "tmp/small", expiring, 3000)
    _fill(s3, "bkt", 100, "tmp/tiny", expiring, 5000)  # not even a tiny write fits now
    assert len(expiring) > 20
    rule = {
        "ID": "tmp",
        "Status": "Enabled",
        "Filter": {"Prefix": "tmp/"},
        "Expiration": {"Days": 1},
    }
    s3.put_bucket_lifecycle_configuration(Bucket="bkt", LifecycleConfiguration={"Rules": [rule]})
    _wait(
        lambda: s3.list_objects_v2(Bucket="bkt", Prefix="tmp/")["KeyCount"] == 0,
        "the rule never expired the objects",
        timeout=60,
    )
    _wait(
        lambda: _volume(full_node)["free_bytes"] > RESERVE + 16 * MiB,
        "expired objects were never collected",
    )
    _all_readable(s3, "bkt", keep)
    s3.put_object(Bucket="bkt", Key="after", Body=b"a" * MiB)


def test_volume_filled_by_someone_else_releases_the_reserve(full_node, volume):
    """Another process takes every free byte: the node releases its reserve file, so deletes
    and a restart still work; once space is back the reserve is allocated again."""
    s3 = full_node.client()
    s3.create_bucket(Bucket="bkt")
    acked: dict[str, bytes] = {}
    for n in range(10):
        s3.put_object(Bucket="bkt", Key=f"k{n}", Body=os.urandom(MiB))
        acked[f"k{n}"] = s3.get_object(Bucket="bkt", Key=f"k{n}")["Body"].read()
    filler = volume / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * MiB)
                f.flush()
        except OSError:
            pass
    _wait(lambda: _volume(full_node)["reserve_file_bytes"] == 0, "the reserve was not released")
    assert _code(s3.put_object, Bucket="bkt", Key="no", Body=b"x" * MiB) == "InsufficientStorage"
    s3.delete_object(Bucket="bkt", Key="k0")  # a delete still finds room
    del acked["k0"]
    full_node.proc.send_signal(signal.SIGKILL)
    full_node.proc.wait()
    full_node.start()  # and so does RocksDB's recovery
    _all_readable(s3, "bkt", acked)
    filler.unlink()
    _wait(
        lambda: _volume(full_node)["reserve_file_bytes"] == RESERVE,
        "the reserve was not allocated again",
    )
    s3.put_object(Bucket="bkt", Key="yes", Body=b"y" * MiB)


def test_cluster_member_with_a_full_volume_keeps_its_reserve(tmp_path):
    """One member's volume fills with chunk copies from its peers: it refuses further copies
    before its reserve (the metadata log still needs room there), keeps serving everything
    acknowledged, and restarts after kill -9."""
    with small_tmpfs(tmp_path / "n3"):
        cluster = ClusterProcesses(
            tmp_path,
            3,
            storage_options=f'reserve = "{RESERVE}"\nchunk_size = "1MiB"',
        )
        try:
            cluster.start()
            small = cluster.nodes[2]
            s3 = cluster.nodes[0].client(connect_timeout=5, read_timeout=60)
            s3.create_bucket(Bucket="bkt")
            acked: dict[str, bytes] = {}
            for n in range(80):  # 80 MiB of copies for a 64 MiB volume
                key, body = f"k{n}", os.urandom(MiB)
                code = _code(s3.put_object, Bucket="bkt", Key=key, Body=body)
                assert code in ("OK", "ServiceUnavailable"), code
                if code == "OK":
                    acked[key] = body
            vol = _volume(small)
            assert vol["reserve_file_bytes"] == RESERVE and vol["free_bytes"] >= RESERVE // 2, vol
            assert len(acked) > 40
            _all_readable(small.client(connect_timeout=5, read_timeout=60), "bkt", acked)
            small.kill()
            small.start(timeout=60)
            _all_readable(small.client(connect_timeout=5, read_timeout=60), "bkt", acked)
        finally:
            cluster.kill()


def test_reserve_file_rules():
    r = RESERVE
    assert reserve_action(free=r // 2 - 1, reserve=r, held=True) == "release"
    assert reserve_action(free=r, reserve=r, held=True) is None
    assert reserve_action(free=2 * r, reserve=r, held=False) is None  # no flapping
    assert reserve_action(free=3 * r, reserve=r, held=False) == "allocate"
    assert reserve_action(free=0, reserve=0, held=False) is None
