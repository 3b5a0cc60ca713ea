"""A 3-node cluster under failure: leader loss, restarts, minority isolation, lost and corrupt
chunks, decommissioning and joining, with a linearizability check of what clients saw."""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from anode_procs import ClusterProcesses, NodeProcess
from botocore.exceptions import ClientError
from history_check import Op, check

MiB = 1024 * 1024
FAST_REPAIR = 'repair_interval = "1s"\nscrub_interval = "2s"\n'


@pytest.fixture
def cluster(tmp_path):
    c = ClusterProcesses(tmp_path, 3, storage_options='gc_grace = "2s"\ngc_interval = "0.5s"',
                         extra_cluster=FAST_REPAIR).start()
    yield c
    for proc in c.nodes:
        if proc.proc and proc.proc.poll() is None:
            proc.proc.send_signal(signal.SIGCONT)
    c.kill()


def quick_client(proc: NodeProcess):
    return proc.client(connect_timeout=2, read_timeout=15)


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception:
            pass
        time.sleep(interval)
    raise AssertionError("condition not reached in time")


def current_leader(c: ClusterProcesses, timeout: float = 20.0) -> NodeProcess:
    """The leader, waiting through an election (a loaded machine can trigger one any time)."""
    found: list[NodeProcess] = []
    wait_until(lambda: found.append(c.leader()) or True, timeout=timeout)
    return found[-1]


def alive(c: ClusterProcesses) -> list[NodeProcess]:
    return [p for p in c.nodes if p.proc and p.proc.poll() is None]


class Workload:
    """Concurrent clients doing PUT/GET/DELETE on a few keys (and unique-key PUTs) against
    random live nodes, recording a history with invocation and completion times."""

    def __init__(self, c: ClusterProcesses, bucket: str) -> None:
        self.c, self.bucket = c, bucket
        self.history: list[Op] = []
        self.acked: dict[str, bytes] = {}  # unique key -> sha256 of the acknowledged body
        self.attempted: set[str] = set()
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def run(self, worker: int) -> None:
        clients = {p.node_id: quick_client(p) for p in self.c.nodes}
        rng = random.Random(worker)
        i = 0
        while not self.stop.is_set():
            i += 1
            targets = alive(self.c)
            if not targets:
                return
            s3 = clients[rng.choice(targets).node_id]
            if i % 3 == 0:
                self._unique_put(s3, f"u/{worker}/{i}", rng)
                continue
            key = f"reg/{rng.randrange(3)}"
            kind = rng.choice(["put", "put", "get", "get", "delete"])
            value = f"{worker}-{i}"
            t0 = time.monotonic()
            try:
                if kind == "put":
                    s3.put_object(Bucket=self.bucket, Key=key, Body=value.encode())
                    result = None
                elif kind == "delete":
                    s3.delete_object(Bucket=self.bucket, Key=key)
                    result = None
                else:
                    try:
                        result = s3.get_object(Bucket=self.bucket, Key=key)["Body"].read().decode()
                    except ClientError as e:
                        if e.response["Error"]["Code"] != "NoSuchKey":
                            raise
                        result = None
                t1 = time.monotonic()
            except Exception:
                if kind == "get":
                    continue  # a failed read constrains nothing
                t1 = math.inf  # a write's outcome is unknown: it may still commit
                result = None
            with self.lock:
                self.history.append(Op(worker, kind, key, value if kind == "put" else None,
                                       t0, t1, result))

    def _unique_put(self, s3, key: str, rng: random.Random) -> None:
        body = rng.randbytes(rng.choice([100, 70_000, 5 * MiB + 1]))
        with self.lock:
            self.attempted.add(key)
        try:
            s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        except Exception:
            return
        with self.lock:
            self.acked[key] = hashlib.sha256(body).digest()


def run_workload(c: ClusterProcesses, bucket: str, *, seconds: float, fault) -> Workload:
    w = Workload(c, bucket)
    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(w.run, n) for n in range(6)]
        time.sleep(seconds / 3)
        fault()
        time.sleep(2 * seconds / 3)
        w.stop.set()
        for f in futures:
            f.result()
    return w


def assert_everything_acknowledged_is_everywhere(c: ClusterProcesses, w: Workload) -> None:
    assert w.acked, "nothing was acknowledged"
    for proc in alive(c):
        s3 = quick_client(proc)
        for key, digest in w.acked.items():
            body = s3.get_object(Bucket=w.bucket, Key=key)["Body"].read()
            assert hashlib.sha256(body).digest() == digest, (proc.node_id, key)
        listed = set()
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=w.bucket, Prefix="u/"):
            listed |= {o["Key"] for o in page.get("Contents", [])}
        assert set(w.acked) <= listed <= w.attempted


def test_leader_killed_during_writes_loses_no_acknowledged_object(cluster):
    s3 = cluster.client()
    s3.create_bucket(Bucket="fail")
    old = current_leader(cluster)
    killed_at: list[float] = []

    def kill_leader():
        killed_at.append(time.monotonic())
        old.kill()

    w = run_workload(cluster, "fail", seconds=9, fault=kill_leader)
    wait_until(lambda: cluster.leader() is not old, timeout=10)
    new = current_leader(cluster)
    assert new is not old
    assert_everything_acknowledged_is_everywhere(cluster, w)
    assert check(w.history) == []
    writes_after = [op for op in w.history if op.kind == "put" and not op.unknown
                    and op.invoked > killed_at[0]]
    assert writes_after, "no write succeeded after the failover"
    assert min(op.completed for op in writes_after) - killed_at[0] < 8.0


def test_follower_restarted_during_writes_catches_up(cluster):
    s3 = cluster.client()
    s3.create_bucket(Bucket="restart")
    follower = next(p for p in cluster.nodes if p is not current_leader(cluster))

    def bounce():
        follower.kill()
        time.sleep(1.0)
        follower.start(wait=False)

    w = run_workload(cluster, "restart", seconds=6, fault=bounce)
    follower.wait_ready(30)
    assert_everything_acknowledged_is_everywhere(cluster, w)
    assert check(w.history) == []
    # with RF=3 on 3 nodes every node holds every chunk: the restarted one too, once repaired
    wait_until(lambda: len({len(p.chunk_files()) for p in cluster.nodes}) == 1, timeout=30)


def test_whole_cluster_killed_and_restarted_loses_nothing(cluster):
    s3 = cluster.client()
    s3.create_bucket(Bucket="allkill")
    w = run_workload(cluster, "allkill", seconds=4, fault=lambda: None)
    cluster.kill()
    cluster.start()
    assert_everything_acknowledged_is_everywhere(cluster, w)
    assert check(w.history) == []


def test_isolated_node_refuses_and_majority_serves(cluster):
    s3 = cluster.client()
    s3.create_bucket(Bucket="iso")
    s3.put_object(Bucket="iso", Key="k", Body=b"before")
    lonely, *others = cluster.nodes
    for proc in others:  # the lonely node can reach no one: its side of a partition
        proc.proc.send_signal(signal.SIGSTOP)
    try:
        client = lonely.client(connect_timeout=2, read_timeout=30)
        for name, call in (("PUT", lambda: client.put_object(Bucket="iso", Key="k", Body=b"lost")),
                           ("GET", lambda: client.get_object(Bucket="iso", Key="k"))):
            started = time.monotonic()
            try:
                answer = call()
            except ClientError as exc:
                assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 503, name
            else:  # say which, and keep what the node answered: that would be a real bug
                pytest.fail(f"{name} on the isolated {lonely.node_id} answered without a quorum "
                            f"after {time.monotonic() - started:.1f}s: {answer['ResponseMetadata']}"
                            f"; logs under {lonely.data_dir.parent}")
            assert time.monotonic() - started < 15
    finally:
        for proc in others:
            proc.proc.send_signal(signal.SIGCONT)
    # the other side of the partition: the majority without the old leader keeps serving
    leader = current_leader(cluster)
    leader.proc.send_signal(signal.SIGSTOP)
    try:
        majority = [p for p in cluster.nodes if p is not leader]
        wait_until(lambda: quick_client(majority[0]).put_object(
            Bucket="iso", Key="k", Body=b"after") is not None, timeout=20)
        got = quick_client(majority[1]).get_object(Bucket="iso", Key="k")["Body"].read()
        assert got == b"after"
    finally:
        leader.proc.send_signal(signal.SIGCONT)
    # the healed old leader never serves the stale value
    body = leader.client(connect_timeout=2, read_timeout=30).get_object(
        Bucket="iso", Key="k")["Body"].read()
    assert body == b"after"


def test_lost_and_corrupt_chunks_are_read_around_and_repaired(cluster):
    s3 = cluster.client()
    s3.create_bucket(Bucket="rot")
    data = os.urandom(9 * MiB)
    s3.put_object(Bucket="rot", Key="obj", Body=data)
    n1, n2, _ = cluster.nodes
    lost = n1.chunk_files()
    assert len(lost) == 3
    for path in lost:
        path.unlink()
    for path in n2.chunk_files():
        path.write_bytes(b"X" + path.read_bytes()[1:])
    assert quick_client(n1).get_object(Bucket="rot", Key="obj")["Body"].read() == data
    assert quick_client(n2).get_object(Bucket="rot", Key="obj")["Body"].read() == data

    def healed(proc: NodeProcess) -> bool:
        files = proc.chunk_files()
        return len(files) == 3 and all(
            hashlib.sha256(p.read_bytes()).hexdigest() == p.name for p in files)

    wait_until(lambda: healed(n1) and healed(n2), timeout=20)


def anode_admin(proc: NodeProcess, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "anode.cli", "admin", "--url", proc.admin_url, "--token",
         proc.secret_key, *args], capture_output=True, text=True, timeout=120)


def anode_admin_on_a_terminal(proc: NodeProcess, *args: str) -> str:
    """What `anode admin` shows on a terminal (a pseudo-terminal): the progress bar."""
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    try:
        done = subprocess.run(
            [sys.executable, "-m", "anode.cli", "admin", "--url", proc.admin_url, "--token",
             proc.secret_key, *args], stdout=follower, stderr=follower, timeout=120)
        os.close(follower)
        follower = -1
        screen = b""
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: the terminal is closed and drained
                break
            if not data:
                break
            screen += data
    finally:
        os.close(leader)
        if follower != -1:
            os.close(follower)
    assert done.returncode == 0, screen
    return screen.decode("utf-8", "replace")


def test_decommissioned_node_leaves_everything_fully_replicated(tmp_path):
    c = ClusterProcesses(tmp_path, 3, replication_factor=2, extra_cluster=FAST_REPAIR).start()
    try:
        s3 = c.client()
        s3.create_bucket(Bucket="dec")
        bodies = {f"o{i}": os.urandom(300_000 + i) for i in range(20)}
        for key, body in bodies.items():
            s3.put_object(Bucket="dec", Key=key, Body=body)
        leaving = next(p for p in c.nodes if p is not current_leader(c))
        stay = [p for p in c.nodes if p is not leaving]
        status, body = stay[0].admin(f"/cluster/members/{leaving.node_id}", method="DELETE")
        assert status == 409  # not drained yet
        # the CLI drains and waits until no copy is missing (JSON lines for a script)
        drained = anode_admin(stay[0], "members", "drain", leaving.node_id, "--json",
                              "--interval", "0.2", "--timeout", "60")
        assert drained.returncode == 0, drained.stderr
        progress = [json.loads(line) for line in drained.stdout.splitlines()]
        assert progress[-1]["event"] == "done" and progress[-1]["remaining"] == 0
        assert [p["done"] for p in progress] == sorted(p["done"] for p in progress)
        assert progress[0]["remaining"] > 0  # its copies were missing elsewhere at first
        assert progress[-1]["done"] == progress[-1]["total"] >= progress[0]["remaining"]
        plain = anode_admin(stay[0], "members", "drain", leaving.node_id)
        assert plain.returncode == 0 and f"drain {leaving.node_id}: done" in plain.stdout
        assert "\r" not in plain.stdout  # no bar drawn into a pipe
        assert f"drain {leaving.node_id}: done" in anode_admin_on_a_terminal(
            stay[0], "members", "drain", leaving.node_id)
        status, body = stay[0].admin(f"/cluster/members/{leaving.node_id}", method="DELETE")
        assert status == 204, body
        leaving.kill()
        # with RF=2 and two nodes left, both hold every chunk
        digests = {hashlib.sha256(b).hexdigest() for b in bodies.values()}
        for proc in stay:
            assert digests <= {p.name for p in proc.chunk_files()}
            client = quick_client(proc)
            for key, body in bodies.items():
                assert client.get_object(Bucket="dec", Key=key)["Body"].read() == body
        members = stay[0].admin("/cluster/members")[1]["members"]
        assert sorted(m["id"] for m in members) == sorted(p.node_id for p in stay)
    finally:
        c.kill()


def test_new_node_joins_as_learner_and_becomes_voter(cluster):
    s3 = cluster.client()
    s3.create_bucket(Bucket="grow")
    s3.put_object(Bucket="grow", Key="k", Body=b"old data")
    peers = ", ".join(f'"{p.node_id}=127.0.0.1:{p.cluster_port}"' for p in cluster.nodes)
    new = NodeProcess(cluster.nodes[0].data_dir.parent / "n4", node_id="n4")
    new.cluster = (f'[cluster]\npeers = [{peers}]\nsecret = "{ClusterProcesses.SECRET}"\n'
                   f"learner = true\n{FAST_REPAIR}")
    new.start(wait=False)
    try:
        status, body = cluster.nodes[0].admin(
            "/cluster/members", method="POST",
            body={"id": "n4", "address": f"127.0.0.1:{new.cluster_port}"},
            timeout=150)  # the call returns once the learner caught up and was promoted
        assert status == 200, body
        new.wait_ready(30)
        members = {m["id"]: m for m in new.admin("/cluster/members")[1]["members"]}
        assert members["n4"]["voter"] and len(members) == 4
        cli = subprocess.run(
            [str(Path(sys.executable).parent / "anode"), "admin", "--url", new.admin_url,
             "--token", new.secret_key, "members", "leader", "--to", "n4"],
            capture_output=True, text=True, timeout=60)
        assert cli.returncode == 0, cli.stdout + cli.stderr
        assert json.loads(cli.stdout)["leader"] == "n4"
        assert quick_client(new).get_object(Bucket="grow", Key="k")["Body"].read() == b"old data"
    finally:
        new.kill()


def test_lagging_member_never_refuses_a_put_into_a_bucket_created_elsewhere(cluster):
    """PutObject skips the read barrier, so a member that has not yet applied the CreateBucket
    sees no bucket: it must take a barrier and look again rather than answer NoSuchBucket."""
    leader = current_leader(cluster)
    lagging = next(p for p in cluster.nodes if p is not leader)
    creator, writer = quick_client(leader), lagging.client(connect_timeout=5, read_timeout=30)
    for i in range(8):
        name = f"lag-{i}"
        lagging.proc.send_signal(signal.SIGSTOP)  # it misses the CreateBucket entirely...
        try:
            creator.create_bucket(Bucket=name)  # committed by the other two
            with ThreadPoolExecutor(1) as pool:  # ...and finds the PUT waiting when it wakes
                put = pool.submit(writer.put_object, Bucket=name, Key="k", Body=b"x")
                time.sleep(0.2)
                lagging.proc.send_signal(signal.SIGCONT)
                put.result(timeout=30)
        finally:
            lagging.proc.send_signal(signal.SIGCONT)
        assert creator.get_object(Bucket=name, Key="k")["Body"].read() == b"x"
    # the same for credentials: a user created while the member slept can write through it
    lagging.proc.send_signal(signal.SIGSTOP)
    try:
        status, user = leader.admin("/users", method="POST", body={"name": "late"})
        assert status in (200, 201), user
        own = lagging.client(user["access_key"], user["secret_key"], connect_timeout=5,
                             read_timeout=30)
        with ThreadPoolExecutor(1) as pool:
            put = pool.submit(own.put_object, Bucket="lag-0", Key="late", Body=b"y")
            time.sleep(0.2)
            lagging.proc.send_signal(signal.SIGCONT)
            with pytest.raises(ClientError) as exc:  # authenticated, then refused: not its bucket
                put.result(timeout=30)
    finally:
        lagging.proc.send_signal(signal.SIGCONT)
    assert exc.value.response["Error"]["Code"] == "AccessDenied"


def test_node_on_a_lost_volume_rejoins_as_a_learner_then_a_voter_with_its_chunks(cluster):
    """A deleted PVC: the same node id on an empty volume. With `initial_state = "existing"` it
    starts as a learner (no vote), and the admin API's rejoin steps make it a voter again; its
    chunks come back by repair and it stays a registered, active member."""
    s3 = cluster.client()
    s3.create_bucket(Bucket="lost")
    bodies = {f"o{i}": os.urandom(200_000 + i) for i in range(6)}
    for key, body in bodies.items():
        s3.put_object(Bucket="lost", Key=key, Body=body)
    leader = current_leader(cluster)
    victim = next(p for p in cluster.nodes if p is not leader)
    victim.kill()
    shutil.rmtree(victim.data_dir)
    victim.cluster += 'initial_state = "existing"\n'
    victim.start(wait=False)

    def rejoin() -> dict:
        return victim.admin("/status")[1]["rejoin"]

    wait_until(lambda: rejoin()["since"], timeout=60)
    assert victim.admin("/status")[1]["role"] == "learner"
    path = f"/cluster/members/{victim.node_id}"
    status, body = leader.admin(path + "?rejoin=true", method="DELETE")
    assert status == 204, body
    wait_until(lambda: rejoin()["removed"], timeout=60)
    address = f"127.0.0.1:{victim.cluster_port}"
    status, body = leader.admin(
        "/cluster/members", method="POST", body={"id": victim.node_id, "address": address}
    )
    assert status == 200, body
    wait_until(lambda: rejoin() is None and victim.admin("/status")[1]["role"] != "learner")
    victim.wait_ready(60)
    members = {m["id"]: m for m in leader.admin("/cluster/members")[1]["members"]}
    assert all(m["voter"] and m["state"] == "active" for m in members.values()), members
    digests = {hashlib.sha256(b).hexdigest() for b in bodies.values()}
    wait_until(lambda: digests <= {p.name for p in victim.chunk_files()}, timeout=60)
    client = quick_client(victim)
    for key, body in bodies.items():
        assert client.get_object(Bucket="lost", Key=key)["Body"].read() == body
