"""Prometheus metrics of one node, in their own registry (served by the admin API at /metrics)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from .audit.record import CATEGORIES as AUDIT_CATEGORIES
from .metrics_cluster import ClusterCollector, ClusterView

if TYPE_CHECKING:
    from .meta.store import MetaStore
    from .select import FooterCache
    from .space import SpaceGuard


class NodeView(ClusterView, Protocol):
    """What the gauges read of a node at scrape time (`Node` satisfies it)."""

    ready: bool
    meta: MetaStore
    space: SpaceGuard
    footer_cache: FooterCache

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
)


class _StorageCollector(Collector):
    """Storage gauges read from the state machine's totals at scrape time."""

    def __init__(self, node: NodeView) -> None:
        self.node = node

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        stats = self.node.meta.stats()
        yield GaugeMetricFamily(
            "anode_stored_bytes", "Bytes of unique chunks stored", value=stats["stored_bytes"]
        )
        yield GaugeMetricFamily(
            "anode_logical_bytes",
            "Bytes of all current object versions",
            value=stats["logical_bytes"],
        )
        yield GaugeMetricFamily(
            "anode_dedup_saved_bytes",
            "Logical minus stored bytes",
            value=stats["logical_bytes"] - stats["stored_bytes"],
        )
        yield GaugeMetricFamily("anode_chunks", "Unique chunks referenced", value=stats["chunks"])
        yield GaugeMetricFamily("anode_coded_chunks", "Chunks stored erasure-coded",
                                value=stats["coded_chunks"])
        yield GaugeMetricFamily("anode_coded_bytes", "Bytes of the chunks stored erasure-coded",
                                value=stats["coded_bytes"])
        yield GaugeMetricFamily("anode_fragment_bytes", "Bytes their k + m fragments take on "
                                "all members together", value=stats["fragment_bytes"])
        coded = self.node.coded
        yield CounterMetricFamily("anode_erasure_unrecoverable_reads", "Chunk reads refused (503) "
                                  "here: fewer than k verified fragments reachable",
                                  value=coded.unrecoverable if coded is not None else 0)
        keeper = self.node.keeper
        yield CounterMetricFamily("anode_fragments_restored", "Fragments restored here (rebuilt "
                                  "or fetched) by repair or after damage",
                                  value=keeper.restored if keeper is not None else 0)
        yield GaugeMetricFamily("anode_objects", "Current object versions", value=stats["objects"])
        yield GaugeMetricFamily("anode_buckets", "Buckets", value=stats["buckets"])
        yield GaugeMetricFamily(
            "anode_ready", "1 when the node serves requests", value=1 if self.node.ready else 0
        )
        space = self.node.space.status()
        yield GaugeMetricFamily("anode_volume_free_bytes", "Free bytes on the data volume",
                                value=space["free_bytes"])
        yield GaugeMetricFamily("anode_volume_reserve_bytes",
                                "Free bytes writes never take (storage.reserve)",
                                value=space["reserve_bytes"])
        yield GaugeMetricFamily("anode_volume_reserve_file_bytes",
                                "Bytes held in the reserve file (0: released, volume full)",
                                value=space["reserve_file_bytes"])
        yield GaugeMetricFamily("anode_volume_writable",
                                "1 while writes are admitted (free space above the reserve)",
                                value=1 if space["writable"] else 0)
        yield CounterMetricFamily("anode_volume_writes_refused",
                                  "Writes refused with 507 to keep the reserve",
                                  value=space["writes_refused"])
        scrubber = self.node.scrubber
        yield GaugeMetricFamily("anode_damaged_chunks", "Chunks damaged here with no good copy "
                                "found yet (`anode admin damaged`)", value=len(scrubber.damaged))
        yield CounterMetricFamily("anode_corrupt_chunks_found", "Chunk copies found damaged here "
                                  "(by reads or the scrubber)", value=scrubber.corrupt_found)
        cache = self.node.footer_cache
        yield CounterMetricFamily("anode_parquet_footer_cache_hits", "Footer cache hits",
                                  value=cache.hits)
        yield CounterMetricFamily("anode_parquet_footer_cache_misses", "Footer cache misses",
                                  value=cache.misses)
        yield CounterMetricFamily("anode_parquet_footer_range_hits",
                                  "Range GETs of Parquet footers served from memory",
                                  value=cache.range_hits)
        yield GaugeMetricFamily("anode_parquet_footer_cache_bytes", "Bytes held by the cache",
                                value=cache.used_bytes)


class Metrics:
    def __init__(self, node: NodeView) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "anode_s3_requests",
            "S3 requests by operation and status",
            ["operation", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "anode_s3_request_duration_seconds",
            "S3 request latency",
            ["operation"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.bytes_in = Counter(
            "anode_s3_bytes_in", "Request body bytes received", registry=self.registry
        )
        self.bytes_out = Counter(
            "anode_s3_bytes_out", "Response body bytes sent", registry=self.registry
        )
        self.gc_deleted = Counter(
            "anode_gc_deleted_chunks",
            "Chunk files deleted by the collector",
            registry=self.registry,
        )
        self.audit_records = Counter(
            "anode_audit_records", "Audit records written, by category", ["category"],
            registry=self.registry,
        )
        self.audit_dropped = Counter(
            "anode_audit_dropped_records",
            "Audit records the webhook did not get (queue full, or the POST failed)",
            ["reason"],
            registry=self.registry,
        )
        for reason in ("queue_full", "send_failed"):
            self.audit_dropped.labels(reason)
        for category in AUDIT_CATEGORIES:
            self.audit_records.labels(category)
        self.registry.register(_StorageCollector(node))
        self.registry.register(ClusterCollector(node))
        self._children: dict[tuple[str, int], tuple[Any, Any]] = {}

    def observe(self, operation: str, status: int, seconds: float) -> None:
        # labels() builds and looks up a key on every call; per-request, keep the children.
        key = (operation, status)
        children = self._children.get(key)
        if children is None:
            children = (self.requests.labels(operation, str(status)),
                        self.latency.labels(operation))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
