"""The model harness against one node: random operation sequences, every answer checked."""

from __future__ import annotations

import pytest
from model_faults import FaultMachine
from model_machine import StoreMachine
from model_run import run_machine


class SingleNode(StoreMachine):
    pass


class SingleNodeFaults(FaultMachine):
    pass


@pytest.mark.timeout(900)
def test_single_node_model(model_node, model_seed):
    SingleNode.use(model_node)
    run_machine(SingleNode, model_seed, 1.0)


@pytest.mark.timeout(900)
def test_single_node_model_with_kills_gc_and_expiry(model_node, model_seed):
    SingleNodeFaults.use(model_node)
    run_machine(SingleNodeFaults, model_seed, 0.025)
