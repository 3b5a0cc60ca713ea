"""Consensus and chunk-care metrics, read at scrape time from what the node already tracks:
Raft term, commit and applied index, leadership and its changes, members; repair, surplus-copy
and scrub counters. Repair counters exist only on a cluster member (a single node has no
copies to repair); the Raft gauges exist everywhere (a single node is its own leader)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from .chunks.replication import Replicator
    from .chunks.scrub import Scrubber
    from .meta.consensus import Consensus


class ClusterView(Protocol):
    """What the cluster gauges read of a node (`Node` satisfies it; metrics never import it)."""

    consensus: Consensus
    scrubber: Scrubber
    replicator: Replicator | None

Family = GaugeMetricFamily | CounterMetricFamily


class ClusterCollector(Collector):
    def __init__(self, node: ClusterView) -> None:
        self.node = node

    def collect(self) -> Iterator[Family]:
        yield from self._raft()
        yield from self._chunk_care()

    def _raft(self) -> Iterator[Family]:
        consensus = self.node.consensus
        status = consensus.status()
        commit = status.get("commit_index") or 0
        members = status.get("members") or [{"healthy": True}]
        yield GaugeMetricFamily("anode_raft_term", "Current Raft term", value=status.get("term", 0))
        yield GaugeMetricFamily(
            "anode_raft_commit_index", "Highest log index known committed", value=commit
        )
        yield GaugeMetricFamily(
            "anode_raft_applied_index",
            "Highest log index applied here (commit minus applied: the apply lag)",
            value=status.get("applied_index", commit) or 0,
        )
        yield GaugeMetricFamily(
            "anode_raft_is_leader",
            "1 on the Raft leader",
            value=1 if status.get("role") == "leader" else 0,
        )
        yield CounterMetricFamily(
            "anode_raft_leader_changes",
            "Times this member saw a new leader (the first election included)",
            value=getattr(consensus, "leader_changes", 0),
        )
        yield GaugeMetricFamily(
            "anode_raft_members", "Raft members (voters) this node knows", value=len(members)
        )
        yield GaugeMetricFamily(
            "anode_raft_healthy_members",
            "Raft members this node is connected to (itself included)",
            value=sum(1 for m in members if m.get("healthy")),
        )

    def _chunk_care(self) -> Iterator[Family]:
        scrubber = self.node.scrubber
        yield CounterMetricFamily(
            "anode_scrub_rounds", "Scrub rounds completed here", value=scrubber.rounds
        )
        yield CounterMetricFamily(
            "anode_scrubbed_chunks",
            "Chunk copies re-hashed from disk by the scrubber and found good",
            value=scrubber.verified,
        )
        replicator = self.node.replicator
        if replicator is None:
            return
        yield CounterMetricFamily(
            "anode_chunks_repaired",
            "Chunk copies fetched from peers (missing or damaged here)",
            value=replicator.repaired,
        )
        yield CounterMetricFamily(
            "anode_chunk_copies_dropped",
            "Surplus chunk copies deleted here (held by all their rightful holders)",
            value=replicator.dropped,
        )
