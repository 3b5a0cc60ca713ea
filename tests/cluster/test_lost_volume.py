"""A member whose volume was lost (a deleted PVC) must not vote until it was replaced.

Real member processes on 127.0.0.1 (harness.py). Without the rejoin rule (cluster/rejoin.py) the
member comes back as a voter with an empty log, votes for a member that misses committed entries,
and those entries are lost.
"""

from __future__ import annotations

import shutil
import time

import pytest
from harness import Cluster, bucket_cmd, put_cmd

from anode.cluster import rejoin


def keys_on(cluster: Cluster, m, bucket: str = "b") -> set[str]:
    return set(cluster.get(m, f"/keys?bucket={bucket}")["keys"])


def wait_for(what: str, predicate, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def ok(cluster: Cluster, m, path: str, body: dict) -> None:
    status, answer = cluster.request(m, "POST", path, body, timeout=90)
    assert status == 200, (path, status, answer)


def test_lost_volume_rejoins_as_learner_and_loses_nothing_acknowledged(make_cluster):
    cluster = make_cluster()
    leader = cluster.wait_leader()
    assert cluster.propose(leader, [bucket_cmd("b")])[0] == 200
    lost, lagging = [m for m in cluster.members if m is not leader]
    cluster.wait_converged(timeout=30)

    # `lagging` misses entries that `leader` and `lost` commit ...
    cluster.kill(lagging.node_id)
    acked = set()
    for n in range(30):
        status, body = cluster.propose(leader, [put_cmd("b", f"k{n}", "v")])
        assert status == 200, body
        acked.add(f"k{n}")
    # ... then the leader stops and `lost` comes back on an empty volume, with `lagging`.
    cluster.kill(leader.node_id)
    cluster.kill(lost.node_id)
    shutil.rmtree(lost.data)
    lost.extra = ["--initial-state", "existing"]
    cluster.start(lost.node_id)
    cluster.start(lagging.node_id)

    # A voter `lost` would elect `lagging` (its empty log is behind) and the writes would be gone.
    # As a learner it does not vote: no leader, writes refused, for many election timeouts.
    watch_until = time.monotonic() + 5.0
    while time.monotonic() < watch_until:
        assert cluster.status(lost)["role"] == "learner"
        assert cluster.status(lagging)["role"] != "leader"
        time.sleep(0.1)
    assert cluster.propose(lagging, [put_cmd("b", "refused", "v")])[0] == 503
    assert cluster.status(lost)["rejoin"] == {"since": None, "removed": False}
    assert (lost.data / "raft" / rejoin.FILE).exists()

    # The old leader returns: it leads (its log is the longest), and `lost` catches up as a learner.
    cluster.start(leader.node_id)
    assert cluster.wait_leader(timeout=60, among=[leader, lagging]) is leader
    since = wait_for("lost to catch up", lambda: cluster.status(lost)["rejoin"]["since"])
    assert since > 0
    # A restarted leader learns its commit index again only by committing in its new term, so
    # "caught up" may be recorded before the last acknowledged entries are applied here: they
    # must arrive, and the removal below (committed in the new term) is applied after them.
    wait_for("lost to hold every acknowledged write", lambda: acked <= keys_on(cluster, lost))
    assert cluster.status(lost)["role"] == "learner"
    # Adding it back before its old voter entry is gone is refused (it still is one).
    status, _ = cluster.request(
        leader, "POST", "/members/add", {"id": lost.node_id, "address": lost.raft}
    )
    assert status == 409

    # The operator's part: remove the stale voter entry, then add the learner back.
    ok(cluster, leader, "/members/remove", {"id": lost.node_id})
    wait_for("the removal to reach lost", lambda: cluster.status(lost)["rejoin"]["removed"])
    assert cluster.status(lost)["role"] == "learner"
    ok(cluster, leader, "/members/add", {"id": lost.node_id, "address": lost.raft})
    wait_for("lost to be a voter", lambda: cluster.status(lost)["role"] != "learner")
    assert cluster.status(lost)["rejoin"] is None
    assert not (lost.data / "raft" / rejoin.FILE).exists()

    voters = {m["id"] for m in cluster.status(leader)["members"] if m["voter"]}
    assert voters == {m.node_id for m in cluster.members}
    assert cluster.propose(lost, [put_cmd("b", "via-lost", "v")])[0] == 200
    cluster.wait_converged(timeout=60)
    for m in cluster.members:
        assert acked | {"via-lost"} <= keys_on(cluster, m), m.node_id

    # Restarted now, its volume has its own Raft state again: a voter at once.
    cluster.kill(lost.node_id)
    cluster.start(lost.node_id)
    wait_for("lost back as a follower", lambda: cluster.status(lost)["role"] == "follower")
    assert cluster.status(lost)["rejoin"] is None


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ([("removed", 5)], rejoin.Rejoin()),  # history before catching up: not ours
        ([("caught_up", 10), ("removed", 7)], rejoin.Rejoin(since=10)),
        ([("caught_up", 10), ("removed", 12)], rejoin.Rejoin(since=10, removed=True)),
        ([("caught_up", 10), ("caught_up", 20)], rejoin.Rejoin(since=10)),
    ],
)
def test_rejoin_counts_only_a_removal_after_catching_up(steps, expected):
    state = rejoin.Rejoin()
    for step, index in steps:
        state = state.caught_up(index) if step == "caught_up" else state.removal_applied(index)
    assert state == expected


def test_rejoin_state_survives_a_restart(tmp_path):
    assert rejoin.load(tmp_path) is None
    assert rejoin.lost_volume(tmp_path)
    rejoin.save(tmp_path, rejoin.Rejoin(since=3, removed=True))
    assert rejoin.load(tmp_path) == rejoin.Rejoin(since=3, removed=True)
    rejoin.clear(tmp_path)
    assert rejoin.load(tmp_path) is None
