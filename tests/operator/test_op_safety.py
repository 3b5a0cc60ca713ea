"""Specs the operator refuses: each with a reason that ends up in the Stalled condition."""

from __future__ import annotations

import pytest

from anode_operator.model import ClusterSpec, ErasureCoding
from anode_operator.safety import check_spec


def reasons(spec: ClusterSpec, current: int | None = None) -> list[str]:
    return [v.reason for v in check_spec(spec, current_replicas=current)]


@pytest.mark.parametrize("replicas", [1, 3, 5, 7, 9, 11, 13, 15])
def test_odd_replicas_at_or_above_rf_are_accepted(replicas):
    assert reasons(ClusterSpec(replicas=replicas, replication_factor=min(3, replicas))) == []


@pytest.mark.parametrize("replicas", [2, 4, 6, 8])
def test_even_replicas_are_refused(replicas):
    assert "EvenReplicas" in reasons(ClusterSpec(replicas=replicas, replication_factor=1))


def test_zero_replicas_refused():
    assert reasons(ClusterSpec(replicas=0, replication_factor=1)) == ["InvalidReplicas"]


def test_shrinking_below_replication_factor_is_refused_with_its_own_reason():
    assert reasons(ClusterSpec(replicas=1, replication_factor=3), current=3) == [
        "ShrinkBelowReplicationFactor"
    ]
    assert reasons(ClusterSpec(replicas=1, replication_factor=3), current=None) == [
        "TooFewReplicas"
    ]


def test_erasure_coding_needs_as_many_replicas_as_fragments():
    for width in ((4, 2), (2, 1), (3, 1)):
        assert reasons(ClusterSpec(replicas=7, erasure_coding=ErasureCoding(*width))) == []
    (violation,) = check_spec(
        ClusterSpec(replicas=5, erasure_coding=ErasureCoding(4, 2)), current_replicas=7
    )
    assert violation.reason == "TooFewReplicasForErasureCoding"
    assert "(6)" in violation.message
    assert reasons(ClusterSpec(replicas=7, erasure_coding=ErasureCoding(30, 5))) == [
        "InvalidErasureCoding"
    ]


def test_bad_chunk_size_and_timeout_refused():
    assert reasons(ClusterSpec(chunk_size="lots")) == ["InvalidChunkSize"]
    assert reasons(ClusterSpec(upgrade_pod_ready_timeout="soon")) == ["InvalidUpgradePolicy"]


def test_every_violation_is_reported_not_just_the_first():
    spec = ClusterSpec(replicas=2, replication_factor=3, chunk_size="x")
    assert reasons(spec) == ["EvenReplicas", "TooFewReplicas", "InvalidChunkSize"]
