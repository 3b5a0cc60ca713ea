"""A node that cannot judge a request yet answers 503 ServiceUnavailable with Retry-After, never
a refusal: before it has a quorum, and while it installs a metadata snapshot from the leader.
And a client that goes away mid-download is logged as that, not as an internal error."""

from __future__ import annotations

import http.client
import logging
import signal
import socket
import struct
import threading
import time
from collections import Counter

import pytest
from anode_procs import ClusterProcesses, s3_client
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from rocksdict import Checkpoint

from anode.cluster.snapshot import CheckpointSnapshots
from anode.meta import layout as L
from anode.meta.store import MetaStore, open_db


def _status(call, **params) -> int:
    try:
        call(**params)
        return 200
    except ClientError as e:
        assert e.response["Error"]["Code"] != "InvalidAccessKeyId", e.response
        if e.response["ResponseMetadata"]["HTTPStatusCode"] == 503:
            assert e.response["ResponseMetadata"]["HTTPHeaders"].get("retry-after") == "1"
        return e.response["ResponseMetadata"]["HTTPStatusCode"]
    except (EndpointConnectionError, ReadTimeoutError):
        return 0  # not listening yet / stopped


def _accepts(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_member_without_quorum_answers_503_from_its_first_connection(tmp_path):
    """One member of a 3-node cluster alone: from the moment it accepts connections, a valid key
    gets 503 + Retry-After (no quorum to judge it by); once its peers are up, 200."""
    cluster = ClusterProcesses(tmp_path, 3)
    first, *others = cluster.nodes
    try:
        first.start(wait=False)
        deadline = time.monotonic() + 60
        while not _accepts(first.s3_port):
            assert time.monotonic() < deadline and first.proc.poll() is None
            time.sleep(0.01)
        s3 = first.client(connect_timeout=2, read_timeout=15)
        seen = Counter(_status(s3.list_buckets) for _ in range(20))
        assert set(seen) == {503}, seen
        for proc in others:
            proc.start(wait=False)
        while seen[200] < 5:
            assert time.monotonic() < deadline, seen
            seen[_status(s3.list_buckets)] += 1
        assert set(seen) <= {200, 503}, seen
    finally:
        cluster.kill()


def test_member_installing_a_snapshot_never_refuses_a_valid_key(tmp_path):
    """A member stopped while users, buckets and objects are created, long enough for the leader
    to compact its log: when it wakes it installs a metadata snapshot, and requests with the new
    users' keys sent to it meanwhile are answered (or 503), never InvalidAccessKeyId/NoSuchKey."""
    cluster = ClusterProcesses(tmp_path, 3, extra_cluster="snapshot_entries = 20\n").start()
    try:
        leader = next(p for p in cluster.nodes if p.admin("/status")[1]["role"] == "leader")
        sleeper = next(p for p in cluster.nodes if p is not leader)
        sleeper.proc.send_signal(signal.SIGSTOP)
        users = []
        for i in range(4):
            status, user = leader.admin("/users", method="POST", body={"name": f"late-{i}"})
            assert status in (200, 201), user
            own = leader.client(user["access_key"], user["secret_key"])
            own.create_bucket(Bucket=f"late-{i}")
            for n in range(30):  # one log entry each: far past snapshot_entries
                own.put_object(Bucket=f"late-{i}", Key=f"k{n}", Body=b"v%d" % n)
            users.append(user)
        deadline = time.monotonic() + 60
        while leader.admin("/status")[1]["snapshots"]["taken"] == 0:
            assert time.monotonic() < deadline, "the leader never compacted its log"
            time.sleep(0.2)
        seen: Counter[int] = Counter()
        stop = threading.Event()

        def hammer(user: dict, bucket: str) -> None:
            s3 = sleeper.client(
                user["access_key"], user["secret_key"], connect_timeout=5, read_timeout=30
            )
            n = 0
            while not stop.is_set():
                seen[_status(s3.get_object, Bucket=bucket, Key=f"k{n % 30}")] += 1
                seen[_status(s3.put_object, Bucket=bucket, Key="new", Body=b"x")] += 1
                n += 1

        threads = [
            threading.Thread(target=hammer, args=(u, f"late-{i}")) for i, u in enumerate(users)
        ]
        for t in threads:
            t.start()
        time.sleep(0.5)  # requests queued against the stopped member
        sleeper.proc.send_signal(signal.SIGCONT)
        while sleeper.admin("/status")[1]["snapshots"]["restored"] == 0:
            assert time.monotonic() < deadline, "the member never installed a snapshot"
            time.sleep(0.1)
        time.sleep(2)
        stop.set()
        for t in threads:
            t.join(60)
        assert seen[200] > 0 and set(seen) <= {200, 503}, seen
    finally:
        for proc in cluster.nodes:
            if proc.proc and proc.proc.poll() is None:
                proc.proc.send_signal(signal.SIGCONT)
        cluster.kill()


def test_snapshot_restore_marks_the_window_in_which_reads_are_partial(tmp_path):
    """The restore rewrites the live database in batches, so a reader in between can miss a
    user that exists before and after; `consistent_since` must tell it so (the S3 app then
    answers 503). Without the epoch, the misses below would pass for verdicts."""
    source = MetaStore(open_db(tmp_path / "source"))
    for i in range(30000):
        source.db.put(L.access_key_key(f"AK{i}"), L.pack(f"user{i}"))
        source.db.put(
            L.user_key(f"user{i}"),
            L.pack({"name": f"user{i}", "access_key": f"AK{i}", "secret_key": "s"}),
        )
    source.db.put(b"S/raft", b"100:1")
    live = MetaStore(open_db(tmp_path / "live"))
    Checkpoint(source.db).create_checkpoint(str(tmp_path / "checkpoint"))
    source.close()
    for key, raw in _items(tmp_path / "checkpoint"):
        live.db.put(key, raw)  # the live database already holds every user
    misses = unflagged = 0
    restore = threading.Thread(
        target=CheckpointSnapshots(state_machine=live.state_machine, work_dir=tmp_path)._restore,
        args=(tmp_path / "checkpoint",),
    )
    restore.start()
    while restore.is_alive():
        epoch = live.state_machine.restore_epoch
        if live.user_by_access_key("AK29999") is None:
            misses += 1
            unflagged += live.state_machine.consistent_since(epoch)
    restore.join()
    assert live.user_by_access_key("AK29999") is not None
    assert unflagged == 0, f"{unflagged} of {misses} misses looked like verdicts"
    live.close()


def _items(path):
    db = open_db(path)
    try:
        it = db.iter()
        it.seek_to_first()
        while it.valid():
            yield it.key(), it.value()
            it.next()
    finally:
        db.close()


@pytest.fixture
def node_log(fresh_node):
    fresh_node.start()
    return fresh_node.data_dir.parent / f"{fresh_node.data_dir.name}.log"


def test_client_gone_mid_download_is_logged_as_such(fresh_node, node_log):
    s3 = fresh_node.client()
    s3.create_bucket(Bucket="bkt")
    s3.put_object(Bucket="bkt", Key="big", Body=b"x" * (64 * 1024 * 1024))
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "bkt", "Key": "big"})
    path = url.split(str(fresh_node.s3_port), 1)[1]
    for _ in range(3):
        conn = http.client.HTTPConnection("127.0.0.1", fresh_node.s3_port, timeout=10)
        conn.request("GET", path)
        response = conn.getresponse()
        assert response.status == 200
        response.read(1024 * 1024)
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.sock.close()  # RST: the client is gone with 63 MiB unread
    s3_client(fresh_node.s3_url).head_object(Bucket="bkt", Key="big")  # still serving
    deadline = time.monotonic() + 10
    while node_log.read_text().count("client closed the connection") < 1:
        assert time.monotonic() < deadline, node_log.read_text()[-3000:]
        time.sleep(0.1)
    time.sleep(2)  # the other downloads' ends, if they are logged otherwise
    text = node_log.read_text()
    assert "internal error" not in text and "Traceback" not in text, text[-3000:]
    assert logging.getLevelName(logging.INFO) in text
