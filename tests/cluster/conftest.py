"""Fixtures for the cluster tests: real member processes on 127.0.0.1, always stopped."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from harness import Cluster


@pytest.fixture
def make_cluster(tmp_path: Path) -> Iterator[object]:
    clusters: list[Cluster] = []

    def make(n: int = 3, **options: object) -> Cluster:
        cluster = Cluster(tmp_path / f"c{len(clusters)}", n, **options)
        clusters.append(cluster)
        cluster.start()
        return cluster

    yield make
    for cluster in clusters:
        cluster.stop_all()
