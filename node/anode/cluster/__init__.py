"""Raft consensus for the metadata state machine, built on pysyncobj (see `raft.RaftConsensus`)."""

from .errors import LeaderChanged, MembershipError, NoQuorum, NotLeader
from .raft import RaftConsensus

__all__ = ["LeaderChanged", "MembershipError", "NoQuorum", "NotLeader", "RaftConsensus"]
