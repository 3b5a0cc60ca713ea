"""The scaling state machine: from what is observed now to the single next step.

Membership changes one member at a time and never below quorum:

* up (n -> n+1): every current pod Ready and every member a voter, then grow the StatefulSet by
  one; once the new pod is Ready, add it through the admin API (it joins as a learner and the
  node promotes it to voter once caught up); wait for the voter, repeat.
* down (n -> n-1): every current pod Ready; the highest ordinal is drained (its chunks are
  re-replicated), then removed from Raft; only then does the StatefulSet shrink by one.

Pure: ``plan_scale`` is called on every reconcile with fresh observations and returns what to do
next; the shell executes it and calls again. ``membership_api=False`` means the nodes answered 501
(a single-node or part-1 node build): membership steps are skipped, the StatefulSet still moves
one pod at a time.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Member:
    ordinal: int
    voter: bool


@dataclass(frozen=True)
class Hold:
    """Nothing to do until the world changes; ``reason`` says what we wait for."""

    reason: str
    message: str


@dataclass(frozen=True)
class SetReplicas:
    replicas: int


@dataclass(frozen=True)
class AddMember:
    ordinal: int


@dataclass(frozen=True)
class DecommissionMember:
    """Drain, and once drained remove, the member (the shell runs drain then remove)."""

    ordinal: int


@dataclass(frozen=True)
class Done:
    pass


ScaleStep = Hold | SetReplicas | AddMember | DecommissionMember | Done


def plan_scale(
    *,
    desired: int,
    current: int,
    ready: frozenset[int],
    members: tuple[Member, ...] | None,
    membership_api: bool,
) -> ScaleStep:
    """Next step from ``current`` StatefulSet replicas towards ``desired``.

    ``ready``: ordinals of Ready pods. ``members``: Raft membership as the leader reports it, or
    ``None`` when no node could be asked.
    """
    by_ordinal = {m.ordinal: m for m in members or ()}
    if desired == current:
        if membership_api and members is not None:
            learners = sorted(m.ordinal for m in members if not m.voter and m.ordinal < current)
            if learners:
                return Hold("MemberCatchingUp", f"member {learners[0]} is a learner, catching up")
            missing = [i for i in range(current) if i not in by_ordinal and i in ready]
            if missing and members:
                return AddMember(missing[0])
        return Done()

    not_ready = [i for i in range(current) if i not in ready]
    if not_ready:
        return Hold("PodsNotReady", f"waiting for pod {not_ready[0]} to be Ready before scaling")
    if members is None:
        return Hold("MembershipUnknown", "no node answered the admin API; not changing membership")

    if desired > current:
        if membership_api:
            missing = [i for i in range(current) if i not in by_ordinal]
            if missing:
                return AddMember(missing[0])
            learners = sorted(m.ordinal for m in members if not m.voter)
            if learners:
                return Hold("MemberCatchingUp", f"member {learners[0]} is a learner, catching up")
        return SetReplicas(current + 1)

    victim = current - 1
    if membership_api and victim in by_ordinal:
        return DecommissionMember(victim)
    return SetReplicas(current - 1)
