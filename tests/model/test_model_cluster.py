"""The model harness against a 3-node cluster: random members, faults, concurrent histories."""

from __future__ import annotations

import pytest
from model_cluster import ClusterMachine
from model_run import run_machine


class Cluster(ClusterMachine):
    pass


@pytest.mark.timeout(1800)  # a failure is shrunk for up to 5 minutes
def test_cluster_model(model_cluster, model_seed):
    Cluster.use(model_cluster)
    run_machine(Cluster, model_seed, 0.1)
