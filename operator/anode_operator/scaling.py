"""The scaling state machine: from what is observed now to the single next step.

Membership changes one member at a time and never below quorum:

* up (n -> n+1): every current pod Ready and every member a voter, then grow the StatefulSet by
  one; the new pod starts as a Raft learner (it is not in the rendered voter list) and catches
  up; once it is Ready, promote it through the admin API (``POST /cluster/members``, which the
  node answers once the learner has caught up); when it is a voter, repeat.
* down (n -> n-1): every current pod Ready; the highest ordinal is drained (its chunks are
  re-replicated), then removed from Raft; only then does the StatefulSet shrink by one.

A pod whose node lost its volume comes back as a learner that reports ``rejoin`` in its status
(the node's cluster/rejoin.py): once it has caught up, its old voter entry is removed
(``RemoveStaleVoter``, before anything else: that entry is a dead voter), and it is then promoted
as any learner.

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
class RemoveStaleVoter:
    """Remove the voter entry of a member that rejoins on a new volume (no drain: its data is
    gone already), so that it can be added back as the learner it now is."""

    ordinal: int


@dataclass(frozen=True)
class Done:
    pass


ScaleStep = Hold | SetReplicas | AddMember | DecommissionMember | RemoveStaleVoter | Done


def plan_scale(
    *,
    desired: int,
    current: int,
    ready: frozenset[int],
    members: tuple[Member, ...] | None,
    membership_api: bool,
    rejoining: frozenset[int] = frozenset(),
) -> ScaleStep:
    """Next step from ``current`` StatefulSet replicas towards ``desired``.

    ``ready``: ordinals of Ready pods. ``members``: Raft membership as the leader reports it, or
    ``None`` when no node could be asked. ``rejoining``: ordinals whose node rejoins on a new
    volume, has caught up, and waits for its old voter entry to go.
    """
    by_ordinal = {m.ordinal: m for m in members or ()}
    if membership_api:
        stale = [i for i in sorted(rejoining) if i in by_ordinal and by_ordinal[i].voter]
        if stale:
            return RemoveStaleVoter(stale[0])

    def unpromoted() -> list[int]:
        """Ready pods that are not voters yet (learners, or not registered at all)."""
        return [
            i
            for i in range(current)
            if i in ready and (i not in by_ordinal or not by_ordinal[i].voter)
        ]

    if desired == current:
        if membership_api and members:
            pending = unpromoted()
            if pending:
                return AddMember(pending[0])
        return Done()

    not_ready = [i for i in range(current) if i not in ready]
    if not_ready:
        return Hold("PodsNotReady", f"waiting for pod {not_ready[0]} to be Ready before scaling")
    if members is None:
        return Hold("MembershipUnknown", "no node answered the admin API; not changing membership")

    if desired > current:
        if membership_api:
            pending = unpromoted()
            if pending:
                return AddMember(pending[0])
        return SetReplicas(current + 1)

    victim = current - 1
    if membership_api and victim in by_ordinal:
        return DecommissionMember(victim)
    return SetReplicas(current - 1)
