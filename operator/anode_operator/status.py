"""``AnodeCluster.status`` from observations: phase, counts, leader and conditions.

``Ready``, ``Reconciling`` and ``Stalled`` follow kstatus (the conventions behind
``kubectl wait --for=condition=Ready``, Flux and Argo CD health checks): ``Reconciling`` is True
while the operator is still moving towards the spec, ``Stalled`` is True when it cannot (a refused
spec, or a step waiting longer than its deadline), ``Ready`` is True once the cluster serves the
spec; ``observedGeneration`` says which spec these describe. ``Degraded`` and ``QuorumAtRisk`` are
Anode's own. Pure: the caller supplies the clock and the previous conditions (to keep
``lastTransitionTime`` stable).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from anode_operator.render import quorum
from anode_operator.safety import Violation

CONDITION_TYPES = ("Ready", "Reconciling", "Stalled", "Degraded", "QuorumAtRisk")


@dataclass(frozen=True)
class Progress:
    """What the reconcile is doing: ``operation`` is "" (idle), "Scaling" or "Upgrading"."""

    operation: str = ""
    reason: str = ""
    message: str = ""


@dataclass(frozen=True)
class NodeProblem:
    """Something a node says is wrong with itself (from its ``/status``), e.g. a Raft snapshot
    it cannot install: it keeps the cluster ``Degraded`` even while the pod looks Ready."""

    reason: str
    message: str


@dataclass(frozen=True)
class Observation:
    generation: int
    desired_replicas: int
    current_replicas: int  # StatefulSet spec.replicas (0 before it exists)
    ready: frozenset[int] = frozenset()
    outdated_pods: int = 0
    # pods at ordinals >= current_replicas still present (terminating after a scale-down): the
    # cluster has not reached the spec until they are gone
    surplus_pods: tuple[int, ...] = ()
    leader: str | None = None
    nodes_answering: int = 0
    endpoint: str = ""
    selector: str = ""
    violations: tuple[Violation, ...] = ()
    progress: Progress = field(default_factory=Progress)
    node_problems: tuple[NodeProblem, ...] = ()


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def track_wait(
    previous: dict[str, Any] | None, *, progress: Progress, now: datetime
) -> dict[str, Any] | None:
    """The ``status.operation`` record: when the current step started waiting.

    The ``since`` timestamp survives as long as the step (operation + reason + message) stays the
    same, so ``waited()`` measures how long one pod/member has been blocking progress."""
    if not progress.operation:
        return None
    record = {
        "name": progress.operation,
        "reason": progress.reason,
        "message": progress.message,
    }
    prev = previous or {}
    same = all(prev.get(k) == v for k, v in record.items())
    record["since"] = prev["since"] if same and prev.get("since") else rfc3339(now)
    return record


def waited(record: dict[str, Any] | None, *, now: datetime) -> float:
    if not record or not record.get("since"):
        return 0.0
    return (now - parse_rfc3339(record["since"])).total_seconds()


def _condition(
    kind: str,
    status: bool,
    reason: str,
    message: str,
    *,
    generation: int,
    previous: dict[str, dict[str, Any]],
    now: datetime,
) -> dict[str, Any]:
    value = "True" if status else "False"
    prev = previous.get(kind)
    changed = prev is None or prev.get("status") != value
    return {
        "type": kind,
        "status": value,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": prev["lastTransitionTime"] if prev and not changed else rfc3339(now),
    }


def compute_status(
    obs: Observation,
    *,
    previous: dict[str, Any] | None,
    now: datetime,
    deadline_exceeded: bool = False,
) -> dict[str, Any]:
    """The full status document (minus kopf's own bookkeeping under ``status.kopf``)."""
    prev = previous or {}
    prev_conditions = {c["type"]: c for c in prev.get("conditions") or [] if "type" in c}
    ready_count = len([i for i in obs.ready if i < obs.current_replicas])
    voters = obs.current_replicas

    stalled_reason, stalled_message = "", ""
    if obs.violations:
        stalled_reason = obs.violations[0].reason
        stalled_message = "; ".join(v.message for v in obs.violations)
    elif deadline_exceeded and obs.progress.operation:
        stalled_reason = "ProgressDeadlineExceeded"
        stalled_message = f"{obs.progress.operation}: still {obs.progress.message}"
    stalled = bool(stalled_reason)

    converged = (
        obs.current_replicas == obs.desired_replicas
        and obs.outdated_pods == 0
        and not obs.surplus_pods
        and not obs.progress.operation
    )
    all_ready = voters > 0 and ready_count == voters
    ready = converged and all_ready and obs.leader is not None and not obs.violations

    was_running = prev.get("phase") not in (None, "", "Creating")
    degraded = (voters > 0 and ready_count < voters and was_running) or bool(obs.node_problems)
    if obs.node_problems:
        degraded_reason = obs.node_problems[0].reason
        degraded_message = "; ".join(p.message for p in obs.node_problems)
    else:
        degraded_reason = "NodesNotReady" if degraded else "AllNodesReady"
        degraded_message = f"{ready_count}/{voters} nodes Ready"

    if voters <= 1:
        at_risk, risk_reason, risk_message = False, "SingleNode", "a single node has no redundancy"
    elif ready_count < quorum(voters):
        at_risk, risk_reason = True, "QuorumLost"
        risk_message = f"{ready_count}/{voters} nodes Ready, quorum needs {quorum(voters)}"
    elif ready_count - 1 < quorum(voters):
        at_risk, risk_reason = True, "OneFailureFromQuorumLoss"
        risk_message = f"{ready_count}/{voters} nodes Ready, quorum needs {quorum(voters)}"
    else:
        at_risk, risk_reason = False, "QuorumSafe"
        risk_message = f"{ready_count}/{voters} nodes Ready, quorum needs {quorum(voters)}"

    if ready:
        reconciling, rec_reason, rec_message = False, "Reconciled", "cluster matches the spec"
    elif obs.progress.operation:
        reconciling, rec_reason = True, obs.progress.operation
        rec_message = obs.progress.message or obs.progress.reason
    elif not all_ready:
        reconciling, rec_reason = True, "PodsNotReady"
        rec_message = f"{ready_count}/{voters} pods Ready"
    elif obs.leader is None:
        reconciling, rec_reason, rec_message = True, "NoLeader", "no node reports a leader"
    elif obs.surplus_pods:
        reconciling, rec_reason = True, "PodsTerminating"
        rec_message = "waiting for removed pods to terminate: ordinals " + ", ".join(
            str(i) for i in obs.surplus_pods
        )
    else:
        reconciling, rec_reason, rec_message = False, "Reconciled", "cluster matches the spec"
    if stalled and obs.violations:
        reconciling, rec_reason, rec_message = False, "Stalled", stalled_message

    if stalled:
        phase = "Stalled"
    elif not was_running and not all_ready:
        phase = "Creating"
    elif obs.progress.operation:
        phase = obs.progress.operation
    elif degraded:
        phase = "Degraded"
    elif ready:
        phase = "Running"
    else:
        phase = "Reconciling"

    cond = functools.partial(
        _condition, generation=obs.generation, previous=prev_conditions, now=now
    )
    if ready:
        ready_reason, ready_message = "ClusterReady", f"{ready_count}/{voters} nodes Ready"
    elif stalled:
        ready_reason, ready_message = stalled_reason, stalled_message
    else:
        ready_reason, ready_message = rec_reason, rec_message
    conditions = [
        cond("Ready", ready, ready_reason, ready_message),
        cond("Reconciling", reconciling, rec_reason, rec_message),
        cond(
            "Stalled",
            stalled,
            stalled_reason or "NotStalled",
            stalled_message or "making progress",
        ),
        cond("Degraded", degraded, degraded_reason, degraded_message),
        cond("QuorumAtRisk", at_risk, risk_reason, risk_message),
    ]
    return without_empty_strings(
        {
            "observedGeneration": obs.generation,
            "phase": phase,
            "replicas": obs.current_replicas,
            "readyReplicas": ready_count,
            "leader": obs.leader or "",
            "endpoint": obs.endpoint,
            "selector": obs.selector,
            "conditions": conditions,
        }
    )


def without_empty_strings(status: dict[str, Any]) -> dict[str, Any]:
    """Empty strings become ``None`` at the top (a merge patch then removes the field) and are
    dropped inside conditions: the v1.20 API server turns ``""`` in a merge patch into ``null``,
    which a ``type: string`` schema field rejects."""
    out: dict[str, Any] = {}
    for key, value in status.items():
        if value == "":
            out[key] = None
        elif isinstance(value, list):
            out[key] = [
                {k: v for k, v in item.items() if v != ""} if isinstance(item, dict) else item
                for item in value
            ]
        else:
            out[key] = value
    return out


PROBLEM_CONDITIONS = ("Stalled", "Degraded", "QuorumAtRisk")


def transitions(
    previous: dict[str, Any] | None, current: dict[str, Any]
) -> list[tuple[str, str, str]]:
    """Condition changes worth an Event: ``(type, new status, reason)``. A problem condition
    that stays True for a new reason (pods not Ready, then a snapshot that cannot install) is
    news too."""
    before = {c["type"]: c for c in (previous or {}).get("conditions") or []}
    out = []
    for cond in current["conditions"]:
        old = before.get(cond["type"]) or {}
        if old.get("status") == cond["status"]:
            if not (
                cond["type"] in PROBLEM_CONDITIONS
                and cond["status"] == "True"
                and old.get("reason") != cond["reason"]
            ):
                continue  # unchanged
        elif not old and cond["status"] == "False":
            continue  # born False: not news
        out.append((cond["type"], cond["status"], cond["reason"]))
    return out
