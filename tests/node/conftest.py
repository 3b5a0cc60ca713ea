"""Fixtures: the shared node (single and 3-node cluster), fresh nodes, clients and buckets."""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from anode_procs import ClusterFront, ClusterProcesses, NodeProcess

_names = itertools.count()


@pytest.fixture(scope="session", params=["single", "cluster"])
def node(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """The S3 tests run twice: against one node, and against a 3-node cluster with every
    request sent to a random node. Tests use their own buckets."""
    if request.param == "single":
        proc = NodeProcess(tmp_path_factory.mktemp("shared") / "data").start()
        yield proc
        proc.stop()
    else:
        cluster = ClusterProcesses(tmp_path_factory.mktemp("cluster")).start()
        yield ClusterFront(cluster)
        cluster.stop()


@pytest.fixture
def fresh_node(tmp_path: Path) -> Iterator[NodeProcess]:
    """A node of the test's own, for tests that count files or kill the process."""
    proc = NodeProcess(tmp_path / "data", storage_options='gc_grace = "1s"\ngc_interval = "0.2s"')
    yield proc
    proc.kill()
    shutil.rmtree(tmp_path / "data", ignore_errors=True)


@pytest.fixture
def s3(node: NodeProcess):
    return node.client()


@pytest.fixture
def bucket(s3) -> str:
    name = f"test-{os.getpid()}-{next(_names)}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def meta(tmp_path):
    """A metadata store (and its state machine) on a real RocksDB, for direct tests."""
    from anode.meta.store import MetaStore, open_db

    store = MetaStore(open_db(tmp_path / "meta"))
    yield store
    store.close()
