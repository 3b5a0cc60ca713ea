"""The Raft consensus layer across real processes: replication, batching, failures, membership.

Every test runs 3 (or 4) `node_main.py` processes on 127.0.0.1; nothing of ours is mocked.
"""

from __future__ import annotations

import math
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from harness import Cluster, Writers, bucket_cmd, put_cmd
from linearizability import Op, linearizable


def keys_on(cluster: Cluster, m, bucket: str = "b") -> set[str]:
    return set(cluster.get(m, f"/keys?bucket={bucket}")["keys"])


def create_bucket(cluster: Cluster, bucket: str = "b") -> None:
    status, body = cluster.propose(cluster.wait_leader(), [bucket_cmd(bucket)])
    assert status == 200, body


def test_proposals_from_any_node_commit_and_apply_on_all(make_cluster):
    cluster = make_cluster()
    create_bucket(cluster)
    for i, m in enumerate(cluster.members):
        status, body = cluster.propose(m, [put_cmd("b", f"k{i}", f"v{i}"), put_cmd("b", "x", "y")])
        assert status == 200, body
        assert [r["etag"] for r in body["results"]] == [f"v{i}", "y"]
    # a rejected command comes back as its own result, not as a failure of the entry
    status, body = cluster.propose(cluster.members[1], [put_cmd("nope", "k", "v")])
    assert status == 200 and body["results"] == [{"rejected": "NoSuchBucket"}]
    # read barrier: a read right after a write on another node sees it
    status, _ = cluster.propose(cluster.members[0], [put_cmd("b", "fresh", "f1")])
    assert status == 200
    for m in cluster.members:
        got = cluster.get(m, "/read?bucket=b&key=fresh&barrier=1")["record"]
        assert got is not None and got["etag"] == "f1"
    info = cluster.wait_converged()
    assert info["keys"] >= 5
    for m in cluster.members:
        assert keys_on(cluster, m) == {"k0", "k1", "k2", "x", "fresh"}
    leader = cluster.wait_leader()
    status = cluster.status(leader)
    assert {m["id"] for m in status["members"]} == {"n1", "n2", "n3"}
    assert all(m["voter"] and m["healthy"] for m in status["members"])
    assert status["term"] >= 1 and status["commit_index"] >= status["applied_index"] > 0


def test_concurrent_proposers_share_log_entries(make_cluster):
    cluster = make_cluster()
    create_bucket(cluster)
    before = {m.node_id: cluster.status(m)["batching"] for m in cluster.members}
    per_writer = 20

    def writer(i: int) -> None:
        m = cluster.members[i % 3]
        for n in range(per_writer):
            status, body = cluster.propose(m, [put_cmd("b", f"c{i}-{n}", "v")])
            assert status == 200, body

    with ThreadPoolExecutor(64) as pool:
        list(pool.map(writer, range(64)))
    entries = commands = 0
    for m in cluster.members:
        e, c = cluster.status(m)["batching"]
        entries += e - before[m.node_id][0]
        commands += c - before[m.node_id][1]
    assert commands == 64 * per_writer
    assert entries < commands / 3, (entries, commands)  # grouped, not one entry per command
    cluster.wait_converged()
    for m in cluster.members:
        assert len(keys_on(cluster, m)) == 64 * per_writer


def test_leader_sigkill_during_writes_loses_nothing_acknowledged(make_cluster):
    cluster = make_cluster()
    create_bucket(cluster)
    with Writers(cluster, "b", threads=12) as writers:
        time.sleep(1.5)
        old = cluster.wait_leader()
        acked_before = writers.count()
        cluster.kill(old.node_id)
        killed = time.monotonic()
        new = cluster.wait_leader(timeout=10)
        failover = time.monotonic() - killed
        # writes resume through the new leader
        deadline = time.monotonic() + 10
        while writers.count() < acked_before + 50 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert writers.count() >= acked_before + 50
    print(f"failover: {failover:.2f}s to {new.node_id}; acked {len(writers.acked)}")
    assert failover < 6.0
    assert new.node_id != old.node_id
    cluster.start(old.node_id)
    cluster.wait_converged(timeout=30)
    for m in cluster.members:
        missing = writers.acked - keys_on(cluster, m)
        assert not missing, (m.node_id, sorted(missing)[:5])


def test_follower_restart_catches_up_from_log(make_cluster):
    cluster = make_cluster()
    create_bucket(cluster)
    leader = cluster.wait_leader()
    follower = next(m for m in cluster.members if m is not leader)
    with Writers(cluster, "b", threads=6) as writers:
        time.sleep(0.7)
        cluster.kill(follower.node_id)
        time.sleep(1.0)
        cluster.start(follower.node_id)
        time.sleep(0.7)
    cluster.wait_converged(timeout=30)
    assert writers.acked <= keys_on(cluster, follower)
    assert cluster.status(follower)["snapshots"]["restored"] == 0


def test_follower_catches_up_from_checkpoint_snapshot(make_cluster):
    cluster = make_cluster(compaction=20)
    create_bucket(cluster)
    leader = cluster.wait_leader()
    follower = next(m for m in cluster.members if m is not leader)
    cluster.kill(follower.node_id)
    acked = set()
    for n in range(150):  # far more entries than the compaction threshold
        status, _ = cluster.propose(leader, [put_cmd("b", f"s{n}", "v")])
        assert status == 200
        acked.add(f"s{n}")
    deadline = time.monotonic() + 10
    while cluster.status(leader)["snapshots"]["taken"] == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert cluster.status(leader)["snapshots"]["taken"] > 0
    cluster.start(follower.node_id)
    cluster.wait_converged(timeout=30)
    assert cluster.status(follower)["snapshots"]["restored"] >= 1
    assert acked <= keys_on(cluster, follower)
    # and it keeps applying the log after the snapshot
    status, _ = cluster.propose(follower, [put_cmd("b", "after", "v")])
    assert status == 200
    cluster.wait_converged()
    # a restart of a member whose database is newer than its dump must not go back in time
    cluster.kill(follower.node_id)
    cluster.start(follower.node_id)
    cluster.wait_converged(timeout=30)
    assert "after" in keys_on(cluster, follower)


def test_whole_cluster_kill_and_restart_loses_nothing(make_cluster):
    cluster = make_cluster(compaction=200)
    create_bucket(cluster)
    writers = Writers(cluster, "b", threads=8)
    with writers:
        time.sleep(2.0)
        for m in list(cluster.members):  # kill -9 everyone mid-write
            cluster.kill(m.node_id)
    assert len(writers.acked) > 50
    cluster.start()
    cluster.wait_leader(timeout=15)
    cluster.wait_converged(timeout=30)
    for m in cluster.members:
        missing = writers.acked - keys_on(cluster, m)
        assert not missing, (m.node_id, sorted(missing)[:5])


def test_minority_refuses_with_no_quorum_in_bounded_time(make_cluster):
    cluster = make_cluster(timeout=2.0)
    create_bucket(cluster)
    leader = cluster.wait_leader()
    # isolate the leader: kill both followers
    for m in cluster.members:
        if m is not leader:
            cluster.kill(m.node_id)
    for path, body in (("/propose", {"commands": [put_cmd("b", "lost", "v")]}), ("/barrier", {})):
        started = time.monotonic()
        status, reply = cluster.request(leader, "POST", path, body)
        elapsed = time.monotonic() - started
        assert status == 503 and reply["error"] in ("NoQuorum", "LeaderChanged"), reply
        assert elapsed < 4.0, elapsed
    started = time.monotonic()
    status, _ = cluster.request(leader, "GET", "/read?bucket=b&key=x&barrier=1")
    assert status == 503 and time.monotonic() - started < 4.0
    # after a few seconds it is no longer leader (it cannot hear from a majority)
    deadline = time.monotonic() + 6
    while cluster.status(leader)["role"] == "leader" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert cluster.status(leader)["role"] != "leader"
    # a follower isolated the same way fails the same way, and nothing it refused was applied
    status, _ = cluster.propose(leader, [put_cmd("b", "lost2", "v")])
    assert status == 503
    for m in cluster.members:
        if m is not leader:
            cluster.start(m.node_id)
    cluster.wait_leader()
    status, _ = cluster.propose(leader, [put_cmd("b", "back", "v")])
    assert status == 200
    cluster.wait_converged()


def test_silent_partition_majority_serves_minority_refuses(make_cluster):
    """SIGSTOP instead of kill: connections stay open and silent, as in a network partition."""
    cluster = make_cluster(timeout=2.0)
    create_bucket(cluster)
    leader = cluster.wait_leader()
    # 1. the leader is cut off from both followers: it must refuse, in bounded time
    followers = [m for m in cluster.members if m is not leader]
    for m in followers:
        cluster.pause(m.node_id)
    for path, body in (("/propose", {"commands": [put_cmd("b", "cut", "v")]}), ("/barrier", {})):
        started = time.monotonic()
        status, reply = cluster.request(leader, "POST", path, body)
        assert status == 503, reply
        assert time.monotonic() - started < 4.0
    for m in followers:
        cluster.resume(m.node_id)
    cluster.wait_converged(timeout=20)
    # 2. one follower cut off: the majority keeps committing; it catches up afterwards
    leader = cluster.wait_leader()
    cut = next(m for m in cluster.members if m is not leader)
    cluster.pause(cut.node_id)
    started = time.monotonic()
    for n in range(20):
        status, body = cluster.propose(leader, [put_cmd("b", f"p{n}", "v")])
        assert status == 200, body
    assert time.monotonic() - started < 5.0
    cluster.resume(cut.node_id)
    cluster.wait_converged(timeout=20)
    assert {f"p{n}" for n in range(20)} <= keys_on(cluster, cut)
    # 3. a follower cut off from the leader and the other follower refuses too
    leader = cluster.wait_leader()
    alone, other = [m for m in cluster.members if m is not leader]
    cluster.pause(leader.node_id)
    cluster.pause(other.node_id)
    for path, body in (("/propose", {"commands": [put_cmd("b", "cut2", "v")]}), ("/barrier", {})):
        started = time.monotonic()
        status, reply = cluster.request(alone, "POST", path, body)
        assert status == 503, reply
        assert time.monotonic() - started < 4.0
    cluster.resume(leader.node_id)
    cluster.resume(other.node_id)
    cluster.wait_converged(timeout=20)


def _partitioned_leader(cluster: Cluster):
    """Make n1 (the member its proxy can isolate) the leader; return it."""
    leader = cluster.wait_leader()
    n1 = cluster.member("n1")
    if leader is not n1:
        status, body = cluster.request(leader, "POST", "/members/transfer", {"to": "n1"})
        assert status == 200, body
    assert cluster.wait_leader(timeout=5, among=[n1]) is n1
    return n1


def test_partition_by_proxy_majority_serves_isolated_leader_refuses(make_cluster):
    cluster = make_cluster(proxies=True, timeout=2.0)
    create_bucket(cluster)
    n1 = _partitioned_leader(cluster)
    assert cluster.propose(n1, [put_cmd("b", "before", "v")])[0] == 200
    cluster.proxies["n1"].cut()
    cut_at = time.monotonic()
    majority = [m for m in cluster.members if m is not n1]
    new_leader = cluster.wait_leader(timeout=10, among=majority)
    print(f"majority elected {new_leader.node_id} {time.monotonic() - cut_at:.2f}s after the cut")
    status, body = cluster.propose(majority[0], [put_cmd("b", "during", "v")])
    assert status == 200, body
    # the isolated old leader still runs and answers, but refuses writes and strong reads
    for method, path, body in (
        ("POST", "/propose", {"commands": [put_cmd("b", "refused", "v")]}),
        ("POST", "/barrier", {}),
        ("GET", "/read?bucket=b&key=during&barrier=1", None),
    ):
        started = time.monotonic()
        status, reply = cluster.request(n1, method, path, body)
        assert status == 503, (path, reply)
        assert time.monotonic() - started < 4.0
    # ...while its local state is stale: what the barrier protects readers from
    assert cluster.get(n1, "/read?bucket=b&key=during")["record"] is None
    cluster.proxies["n1"].heal()
    cluster.wait_converged(timeout=30)
    assert "during" in keys_on(cluster, n1)


def test_add_fourth_member_then_remove_it(make_cluster):
    cluster = make_cluster(compaction=30)
    create_bucket(cluster)
    leader = cluster.wait_leader()
    for n in range(60):
        assert cluster.propose(leader, [put_cmd("b", f"a{n}", "v")])[0] == 200
    new = cluster.add_learner("n4")
    status, body = cluster.request(
        leader, "POST", "/members/add", {"id": "n4", "address": new.raft}, timeout=60
    )
    assert status == 200, body
    cluster.voters.append("n4")
    deadline = time.monotonic() + 15
    while cluster.status(new)["role"] == "learner" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert cluster.status(new)["role"] == "follower"
    leader = cluster.wait_leader()
    members = cluster.status(leader)["members"]
    assert {m["id"] for m in members if m["voter"]} == {"n1", "n2", "n3", "n4"}
    # the new voter takes part: proposals through it commit everywhere
    assert cluster.propose(new, [put_cmd("b", "via-n4", "v")])[0] == 200
    cluster.wait_converged(timeout=20)
    assert "a59" in keys_on(cluster, new)
    # removing the leader itself is refused; removing n4 works
    status, body = cluster.request(leader, "POST", "/members/remove", {"id": leader.node_id})
    assert status == 409, body
    status, body = cluster.request(leader, "POST", "/members/remove", {"id": "n4"})
    assert status == 200, body
    cluster.kill("n4")
    cluster.voters.remove("n4")
    members = cluster.status(leader)["members"]
    assert {m["id"] for m in members if m["voter"]} == {"n1", "n2", "n3"}
    # three voters with one dead: removing another would leave 1 healthy of 2 -> refused
    victim = next(m for m in cluster.members[:3] if m is not leader)
    cluster.kill(victim.node_id)
    time.sleep(0.5)
    other = next(m for m in cluster.members[:3] if m not in (leader, victim))
    status, body = cluster.request(leader, "POST", "/members/remove", {"id": other.node_id})
    assert status in (409, 503), body


def test_leadership_transfer(make_cluster):
    cluster = make_cluster()
    create_bucket(cluster)
    leader = cluster.wait_leader()
    target = next(m for m in cluster.members if m is not leader)
    started = time.monotonic()
    status, body = cluster.request(leader, "POST", "/members/transfer", {"to": target.node_id})
    assert status == 200, body
    assert cluster.wait_leader(timeout=5).node_id == target.node_id
    print(f"transfer took {time.monotonic() - started:.2f}s")
    assert cluster.propose(leader, [put_cmd("b", "t", "v")])[0] == 200
    # a non-leader refuses
    status, body = cluster.request(leader, "POST", "/members/transfer", {})
    assert status == 409 and body["error"] == "NotLeader"


def test_truncation_under_load_keeps_acknowledged_entries(make_cluster):
    """Fault injection for pysyncobj's `truncating already-applied log entries`.

    A tiny AppendEntries size limit makes the leader re-send overlapping, shorter ranges while
    12 writers keep it busy, which is what triggers the follower-side truncation. Then the
    leader is killed: every acknowledged write must survive and all members must agree.
    """
    cluster = make_cluster(append_batch_bytes=4096)
    create_bucket(cluster)
    with Writers(cluster, "b", threads=12) as writers:
        time.sleep(3.0)
        old = cluster.wait_leader()
        cluster.kill(old.node_id)
        cluster.wait_leader(timeout=10)
        time.sleep(1.0)
    kept = sum(cluster.status(m)["truncation_kept"] for m in cluster.alive())
    cluster.start(old.node_id)
    cluster.wait_converged(timeout=30)
    for m in cluster.members:
        assert writers.acked <= keys_on(cluster, m)
    logs = "".join((cluster.root / f"{m.node_id}.log").read_text() for m in cluster.members)
    print(f"kept on truncate: {kept}; CRITICAL lines: {logs.count('truncating already-applied')}")


def _history(cluster: Cluster, seconds: float, chaos, barrier: str = "1") -> dict[str, list[Op]]:
    """Concurrent writes/reads of 3 keys on random members while `chaos` runs; per-key ops."""
    keys = ["x", "y", "z"]
    history: dict[str, list[Op]] = {k: [] for k in keys}
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client(worker: int) -> None:
        rnd = random.Random(worker)
        n = 0
        while time.monotonic() < stop:
            alive = cluster.alive()
            if not alive:
                continue
            m, key = rnd.choice(alive), rnd.choice(keys)
            started = time.monotonic()
            write = rnd.random() < 0.5
            value = f"{worker}-{n}"
            n += 1
            try:
                if write:
                    status, _ = cluster.propose(m, [put_cmd("b", key, value)])
                    op = Op(started, time.monotonic() if status == 200 else math.inf, "w", value)
                else:
                    status, body = cluster.request(
                        m, "GET", f"/read?bucket=b&key={key}&barrier={barrier}"
                    )
                    if status != 200:
                        continue
                    record = body["record"]
                    op = Op(started, time.monotonic(), "r", record and record["etag"])
            except OSError:  # the member was killed under us: the outcome is unknown
                if not write:
                    continue
                op = Op(started, math.inf, "w", value)
            with lock:
                history[key].append(op)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    chaos()
    for t in threads:
        t.join()
    return history


def _check(history: dict[str, list[Op]]) -> None:
    for key, ops in history.items():
        read = {o.value for o in ops if o.kind == "r"}
        # an unknown-outcome write nobody read can be taken as never applied
        ops = [o for o in ops if not (o.end == math.inf and o.value not in read)]
        if not linearizable(ops):
            lines = "\n".join(f"{o.start:.4f} {o.end:.4f} {o.kind} {o.value}" for o in ops)
            raise AssertionError(f"history of {key} is not linearizable:\n{lines}")


def test_linearizable_history_under_partition(make_cluster):
    """Reads and writes keep hitting the partitioned old leader too (it must answer 503)."""
    cluster = make_cluster(proxies=True, timeout=1.5)
    create_bucket(cluster)
    _partitioned_leader(cluster)

    def chaos() -> None:
        time.sleep(1.5)
        cluster.proxies["n1"].cut()
        time.sleep(3.0)
        cluster.proxies["n1"].heal()

    history = _history(cluster, 6.0, chaos)
    assert sum(len(ops) for ops in history.values()) > 100
    _check(history)


def test_linearizable_history_under_leader_kill(make_cluster):
    cluster = make_cluster()
    create_bucket(cluster)

    def chaos() -> None:
        time.sleep(2.0)
        leader = cluster.wait_leader()
        cluster.kill(leader.node_id)
        time.sleep(2.0)
        cluster.start(leader.node_id)

    history = _history(cluster, 6.0, chaos)
    assert sum(len(ops) for ops in history.values()) > 100
    _check(history)
