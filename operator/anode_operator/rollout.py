"""The rolling-upgrade state machine (the StatefulSet uses ``OnDelete``; this decides the order).

One pod at a time: followers first (highest ordinal first), the leader last, after handing its
leadership to an already-upgraded follower. Nothing moves while any pod is not Ready, so a bad
image stops the rollout after one pod instead of taking the cluster down. Pure, like
``scaling``: the shell observes, calls ``plan_rollout``, executes one step, and calls again.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PodView:
    ordinal: int
    revision: str
    ready: bool


@dataclass(frozen=True)
class Hold:
    reason: str
    message: str


@dataclass(frozen=True)
class RestartPod:
    """Delete the pod; the StatefulSet controller recreates it from the new template."""

    ordinal: int


@dataclass(frozen=True)
class TransferLeadership:
    to_ordinal: int


@dataclass(frozen=True)
class Done:
    pass


RolloutStep = Hold | RestartPod | TransferLeadership | Done


def outdated(pods: list[PodView], *, update_revision: str) -> list[PodView]:
    return [p for p in pods if p.revision != update_revision]


def plan_rollout(
    *,
    pods: list[PodView],
    replicas: int,
    update_revision: str,
    leader: int | None,
    leadership_api: bool,
) -> RolloutStep:
    old = outdated(pods, update_revision=update_revision)
    if not old:
        return Done()
    missing = sorted(set(range(replicas)) - {p.ordinal for p in pods})
    if missing:
        return Hold("PodsMissing", f"waiting for pod {missing[0]} to be created")
    not_ready = sorted(p.ordinal for p in pods if not p.ready)
    if not_ready:
        return Hold("PodsNotReady", f"waiting for pod {not_ready[0]} to be Ready")
    if leader is None and replicas > 1:
        return Hold("LeaderUnknown", "no node reports a leader; not restarting anything")
    followers = sorted((p.ordinal for p in old if p.ordinal != leader), reverse=True)
    if followers:
        return RestartPod(followers[0])
    # Only the leader is left on the old revision (or the only pod, leader unknown).
    upgraded = sorted(
        (p.ordinal for p in pods if p.revision == update_revision and p.ordinal != leader),
        reverse=True,
    )
    if leadership_api and upgraded:
        return TransferLeadership(upgraded[0])
    return RestartPod(old[0].ordinal)
