"""Fixtures of the model-based harness: one node and one 3-node cluster per session, and the
run's seed (MODEL_SEED, else a fresh one), printed so any failure can be replayed."""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
# the harness's own modules, and the node tests' process helpers and history checker
sys.path[:0] = [str(HERE), str(HERE.parent / "node")]

import model_targets as targets  # noqa: E402


@pytest.fixture(scope="session")
def model_seed() -> int:
    seed = int(os.environ.get("MODEL_SEED") or random.SystemRandom().randrange(1 << 32))
    print(f"\nmodel harness seed: MODEL_SEED={seed}")
    return seed


@pytest.fixture(scope="session")
def model_node(tmp_path_factory):
    target = targets.single(tmp_path_factory.mktemp("model-node"))
    yield target
    target.stop()


@pytest.fixture(scope="session")
def model_cluster(tmp_path_factory):
    target = targets.cluster(tmp_path_factory.mktemp("model-cluster"))
    yield target
    target.stop()
