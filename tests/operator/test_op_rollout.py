"""The rolling upgrade, simulated: followers first (highest ordinal first), the leader last after
a leadership transfer, one pod at a time, never while any pod is not Ready."""

from __future__ import annotations

import pytest

from anode_operator.rollout import (
    Done,
    Hold,
    PodView,
    RestartPod,
    TransferLeadership,
    plan_rollout,
)


def simulate(replicas: int, leader: int, *, leadership_api: bool) -> list[object]:
    revision = {i: "old" for i in range(replicas)}
    ready = set(range(replicas))
    log: list[object] = []
    for _ in range(10 * replicas):
        pods = [PodView(i, revision[i], i in ready) for i in range(replicas)]
        step = plan_rollout(
            pods=pods,
            replicas=replicas,
            update_revision="new",
            leader=leader,
            leadership_api=leadership_api,
        )
        if isinstance(step, Done):
            return log
        log.append(step)
        match step:
            case RestartPod(ordinal=i):
                assert ready == set(range(replicas)), "restarted while a pod was not Ready"
                if replicas > 1 and leadership_api:
                    assert i != leader, "restarted the leader"
                revision[i] = "new"
                ready.discard(i)
            case TransferLeadership(to_ordinal=i):
                assert revision[i] == "new", "leadership to a pod still on the old image"
                leader = i
            case Hold():
                ready = set(range(replicas))  # the restarted pod comes back
    pytest.fail(f"rollout did not finish: {log}")


@pytest.mark.parametrize("replicas", [1, 3, 5, 7])
@pytest.mark.parametrize("leader_pick", ["first", "last", "middle"])
def test_leader_goes_last_after_a_transfer(replicas, leader_pick):
    leader = {"first": 0, "last": replicas - 1, "middle": replicas // 2}[leader_pick]
    log = simulate(replicas, leader, leadership_api=True)
    restarts = [s.ordinal for s in log if isinstance(s, RestartPod)]
    assert sorted(restarts) == list(range(replicas)), "every pod restarted exactly once"
    assert restarts[-1] == leader
    followers = [r for r in restarts if r != leader]
    assert followers == sorted(followers, reverse=True)
    transfers = [s for s in log if isinstance(s, TransferLeadership)]
    assert len(transfers) == (1 if replicas > 1 else 0)


@pytest.mark.parametrize("replicas", [1, 3, 5])
def test_without_leadership_api_the_leader_still_goes_last(replicas):
    log = simulate(replicas, 0, leadership_api=False)
    restarts = [s.ordinal for s in log if isinstance(s, RestartPod)]
    assert restarts[-1] == 0
    assert not any(isinstance(s, TransferLeadership) for s in log)


def test_waits_for_missing_and_unready_pods():
    pods = [PodView(0, "old", True), PodView(1, "new", True)]
    step = plan_rollout(pods=pods, replicas=3, update_revision="new", leader=0, leadership_api=True)
    assert step == Hold("PodsMissing", "waiting for pod 2 to be created")
    pods.append(PodView(2, "new", False))
    step = plan_rollout(pods=pods, replicas=3, update_revision="new", leader=0, leadership_api=True)
    assert step == Hold("PodsNotReady", "waiting for pod 2 to be Ready")


def test_unknown_leader_blocks_a_multi_node_rollout():
    pods = [PodView(i, "old", True) for i in range(3)]
    step = plan_rollout(
        pods=pods, replicas=3, update_revision="new", leader=None, leadership_api=True
    )
    assert isinstance(step, Hold) and step.reason == "LeaderUnknown"


def test_up_to_date_is_done():
    pods = [PodView(i, "r1", False) for i in range(3)]
    assert (
        plan_rollout(pods=pods, replicas=3, update_revision="r1", leader=None, leadership_api=True)
        == Done()
    )
