"""Status and conditions: kstatus semantics for Ready/Reconciling/Stalled, plus Degraded and
QuorumAtRisk, with stable transition times and Events only on transitions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from anode_operator.observe import ClusterState
from anode_operator.safety import Violation
from anode_operator.status import (
    NodeProblem,
    Observation,
    Progress,
    compute_status,
    track_wait,
    transitions,
    waited,
)

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def obs(**kw) -> Observation:
    base = dict(
        generation=3,
        desired_replicas=3,
        current_replicas=3,
        ready=frozenset({0, 1, 2}),
        leader="demo-0",
        endpoint="http://demo.ns.svc:8080",
        selector="a=b",
    )
    base.update(kw)
    return Observation(**base)


def conds(status) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def test_healthy_cluster_is_ready_and_not_reconciling():
    s = compute_status(obs(), previous={"phase": "Running"}, now=T0)
    assert s["phase"] == "Running"
    assert s["observedGeneration"] == 3 and s["readyReplicas"] == 3 and s["leader"] == "demo-0"
    c = conds(s)
    assert c["Ready"][0] == "True"
    assert c["Reconciling"][0] == "False"
    assert c["Stalled"][0] == "False"
    assert c["Degraded"][0] == "False"
    assert c["QuorumAtRisk"] == ("False", "QuorumSafe")


def test_new_cluster_is_creating_and_reconciling_not_degraded():
    s = compute_status(obs(ready=frozenset(), leader=None), previous=None, now=T0)
    assert s["phase"] == "Creating"
    c = conds(s)
    assert c["Ready"][0] == "False" and c["Reconciling"] == ("True", "PodsNotReady")
    assert c["Degraded"][0] == "False"
    assert c["QuorumAtRisk"] == ("True", "QuorumLost")


@pytest.mark.parametrize(
    ("voters", "ready", "expected"),
    [
        (3, 3, ("False", "QuorumSafe")),
        (3, 2, ("True", "OneFailureFromQuorumLoss")),
        (3, 1, ("True", "QuorumLost")),
        (5, 4, ("False", "QuorumSafe")),
        (5, 3, ("True", "OneFailureFromQuorumLoss")),
        (5, 2, ("True", "QuorumLost")),
        (1, 1, ("False", "SingleNode")),
        (1, 0, ("False", "SingleNode")),
    ],
)
def test_quorum_at_risk(voters, ready, expected):
    s = compute_status(
        obs(desired_replicas=voters, current_replicas=voters, ready=frozenset(range(ready))),
        previous={"phase": "Running"},
        now=T0,
    )
    assert conds(s)["QuorumAtRisk"] == expected


def test_running_cluster_losing_a_pod_is_degraded():
    s = compute_status(obs(ready=frozenset({0, 1})), previous={"phase": "Running"}, now=T0)
    assert s["phase"] == "Degraded"
    assert conds(s)["Degraded"] == ("True", "NodesNotReady")
    assert conds(s)["Ready"][0] == "False"


def test_refused_spec_is_stalled_not_reconciling():
    v = Violation("EvenReplicas", "replicas must be odd")
    s = compute_status(obs(violations=(v,)), previous={"phase": "Running"}, now=T0)
    c = conds(s)
    assert s["phase"] == "Stalled"
    assert c["Stalled"] == ("True", "EvenReplicas")
    assert c["Reconciling"][0] == "False"
    assert c["Ready"] == ("False", "EvenReplicas")


def test_scaling_is_reconciling_and_deadline_makes_it_stalled():
    p = Progress("Scaling", "PodsNotReady", "waiting for pod 3")
    s = compute_status(
        obs(current_replicas=4, desired_replicas=5, progress=p),
        previous={"phase": "Running"},
        now=T0,
    )
    assert s["phase"] == "Scaling"
    assert conds(s)["Reconciling"] == ("True", "Scaling")
    late = compute_status(
        obs(current_replicas=4, desired_replicas=5, progress=p),
        previous={"phase": "Running"},
        now=T0,
        deadline_exceeded=True,
    )
    assert conds(late)["Stalled"] == ("True", "ProgressDeadlineExceeded")
    assert late["phase"] == "Stalled"


def test_outdated_pods_keep_ready_false():
    s = compute_status(
        obs(outdated_pods=1, progress=Progress("Upgrading", "RestartingPod", "x")),
        previous={"phase": "Running"},
        now=T0,
    )
    assert s["phase"] == "Upgrading" and conds(s)["Ready"][0] == "False"


def test_pods_left_after_a_scale_down_keep_ready_false_until_they_are_gone():
    # e2e: StatefulSet scaled 4 -> 3, demo-3 still terminating (and still Ready by its probe)
    s = compute_status(
        obs(ready=frozenset({0, 1, 2, 3}), surplus_pods=(3,)),
        previous={"phase": "Running"},
        now=T0,
    )
    c = conds(s)
    assert c["Ready"][0] == "False"
    assert c["Reconciling"] == ("True", "PodsTerminating")
    assert s["readyReplicas"] == 3
    gone = compute_status(obs(), previous=s, now=T0)
    assert conds(gone)["Ready"][0] == "True" and conds(gone)["Reconciling"][0] == "False"


def test_transition_time_is_kept_while_status_is_unchanged():
    first = compute_status(obs(), previous={"phase": "Running"}, now=T0)
    later = compute_status(obs(), previous=first, now=T0 + timedelta(minutes=5))
    assert first["conditions"] == later["conditions"]
    broken = compute_status(obs(ready=frozenset({0})), previous=later, now=T0 + timedelta(hours=1))
    ready = next(c for c in broken["conditions"] if c["type"] == "Ready")
    assert ready["lastTransitionTime"] == "2026-01-01T13:00:00Z"


def test_transitions_report_only_changes():
    first = compute_status(obs(), previous={"phase": "Running"}, now=T0)
    assert ("Ready", "True", "ClusterReady") in transitions(None, first)
    assert all(status == "True" for _, status, _ in transitions(None, first))
    assert transitions(first, first) == []
    broken = compute_status(obs(ready=frozenset({0})), previous=first, now=T0)
    changed = {kind for kind, _, _ in transitions(first, broken)}
    assert {"Ready", "Degraded", "QuorumAtRisk"} <= changed


def test_track_wait_keeps_since_for_the_same_step_and_resets_on_change():
    p = Progress("Upgrading", "PodsNotReady", "waiting for pod 2")
    first = track_wait(None, progress=p, now=T0)
    same = track_wait(first, progress=p, now=T0 + timedelta(minutes=3))
    assert same["since"] == first["since"]
    assert waited(same, now=T0 + timedelta(minutes=3)) == 180
    other = track_wait(
        same, progress=Progress("Upgrading", "PodsNotReady", "pod 1"), now=T0 + timedelta(minutes=4)
    )
    assert other["since"] == "2026-01-01T12:04:00Z"
    assert track_wait(other, progress=Progress(), now=T0) is None
    assert waited(None, now=T0) == 0


@pytest.mark.parametrize(
    ("condition", "value", "expected"),
    [
        ("Ready", "True", "Normal"),
        ("Ready", "False", "Warning"),
        ("Reconciling", "True", "Normal"),
        ("Reconciling", "False", "Normal"),
        ("Stalled", "True", "Warning"),
        ("Stalled", "False", "Normal"),
        ("Degraded", "True", "Warning"),
        ("QuorumAtRisk", "True", "Warning"),
        ("QuorumAtRisk", "False", "Normal"),
    ],
)
def test_event_types_for_condition_changes(condition, value, expected):
    from anode_operator.clusters import event_type

    assert event_type(condition, value) == expected


def test_a_node_that_cannot_install_a_snapshot_degrades_the_cluster_with_its_reason():
    problem = NodeProblem("SnapshotInstallFailed", "demo-1 cannot install the leader's snapshot")
    healthy = compute_status(obs(), previous={"phase": "Running"}, now=T0)
    failing = compute_status(obs(node_problems=(problem,)), previous=healthy, now=T0)
    assert conds(failing)["Degraded"] == ("True", "SnapshotInstallFailed")
    degraded = next(c for c in failing["conditions"] if c["type"] == "Degraded")
    assert "demo-1 cannot install" in degraded["message"]
    assert failing["phase"] == "Degraded"
    assert ("Degraded", "True", "SnapshotInstallFailed") in transitions(healthy, failing)
    # already Degraded for another reason (the member's pod is not Ready): still an Event
    not_ready = compute_status(obs(ready=frozenset({0, 2})), previous=healthy, now=T0)
    assert conds(not_ready)["Degraded"] == ("True", "NodesNotReady")
    both = compute_status(
        obs(ready=frozenset({0, 2}), node_problems=(problem,)), previous=not_ready, now=T0
    )
    assert transitions(not_ready, both) == [("Degraded", "True", "SnapshotInstallFailed")]
    assert transitions(both, both) == []


def test_node_problems_come_from_the_nodes_status_documents():
    failing = {"snapshots": {"install_error": {"error": "TypeError: x", "failures": 4, "at": 1.0}}}
    state = ClusterState(
        statefulset=None,
        nodes={2: failing, 0: {"snapshots": {"install_error": None}}, 1: {}},
    )
    (problem,) = state.node_problems("demo")
    assert problem.reason == "SnapshotInstallFailed"
    assert problem.message.startswith("demo-2 cannot install the leader's Raft snapshot")
    assert "(4 failures): TypeError: x" in problem.message
