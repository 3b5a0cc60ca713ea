"""Errors the consensus layer raises to the node (which maps `NoQuorum` to 503)."""

from __future__ import annotations


class NoQuorum(Exception):
    """The proposal or read barrier could not be committed in time (no leader or no majority).

    The proposal was not acknowledged. If it had already reached a leader it may still commit
    later (Raft cannot tell), so callers must treat the outcome as unknown, as S3 clients do
    with a 503.
    """


class LeaderChanged(NoQuorum):
    """The leader changed while the proposal was in flight; its outcome is unknown."""


class NotLeader(Exception):
    """A leader-only operation (membership change, transfer) was called on a non-leader."""

    def __init__(self, leader: str | None) -> None:
        super().__init__(f"not the leader; the leader is {leader or 'unknown'}")
        self.leader = leader


class MembershipError(Exception):
    """A membership change was refused (would lose quorum, one already running, unknown node)."""
