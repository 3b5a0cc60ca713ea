"""Specs the operator refuses to act on, and why.

The CRD schema catches what OpenAPI can express (types, ranges, enums); what it cannot (odd
replica counts, relations between fields, changes relative to the running cluster) is checked here
before anything is applied. A refused spec leaves the running cluster exactly as it is and is
reported through the ``Stalled`` condition and a Warning Event.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from anode_operator.model import ClusterSpec, parse_duration

_SIZE = re.compile(r"^\d+(B|KB|MB|GB|KiB|MiB|GiB)?$")


@dataclass(frozen=True)
class Violation:
    reason: str  # CamelCase, used as the condition reason and Event reason
    message: str


def check_spec(spec: ClusterSpec, *, current_replicas: int | None) -> list[Violation]:
    """Every reason not to reconcile ``spec``; ``current_replicas`` is ``None`` before creation."""
    out: list[Violation] = []
    if spec.replicas < 1:
        out.append(Violation("InvalidReplicas", f"replicas must be >= 1, got {spec.replicas}"))
    elif spec.replicas % 2 == 0:
        out.append(
            Violation(
                "EvenReplicas",
                f"replicas must be odd (Raft needs a strict majority), got {spec.replicas}",
            )
        )
    if spec.replication_factor < 1:
        out.append(
            Violation(
                "InvalidReplicationFactor",
                f"replicationFactor must be >= 1, got {spec.replication_factor}",
            )
        )
    elif spec.replicas >= 1 and spec.replicas < spec.replication_factor:
        reason = "ShrinkBelowReplicationFactor" if current_replicas else "TooFewReplicas"
        out.append(
            Violation(
                reason,
                f"replicas ({spec.replicas}) below replicationFactor "
                f"({spec.replication_factor}): every chunk needs that many distinct nodes",
            )
        )
    if spec.erasure_coding is not None:
        # Each coded chunk puts one fragment on each of dataShards + parityShards members; the
        # node refuses to start with fewer peers, and writes would be refused (503) anyway.
        ec = spec.erasure_coding
        width = ec.data_shards + ec.parity_shards
        if ec.data_shards < 1 or ec.parity_shards < 1 or width > 32:
            out.append(
                Violation(
                    "InvalidErasureCoding",
                    f"erasureCoding ({ec.data_shards}+{ec.parity_shards}): dataShards and "
                    "parityShards must be >= 1, and together at most 32",
                )
            )
        elif spec.replicas >= 1 and spec.replicas < width:
            out.append(
                Violation(
                    "TooFewReplicasForErasureCoding",
                    f"replicas ({spec.replicas}) below dataShards + parityShards ({width}): "
                    "every coded chunk needs that many distinct nodes",
                )
            )
    if not _SIZE.match(spec.chunk_size):
        out.append(Violation("InvalidChunkSize", f"chunkSize {spec.chunk_size!r} is not a size"))
    try:
        parse_duration(spec.upgrade_pod_ready_timeout)
    except ValueError as exc:
        out.append(Violation("InvalidUpgradePolicy", str(exc)))
    return out
