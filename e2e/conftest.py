"""Settings of the end-to-end run (environment variables; see e2e/README.md) and the shared
``Kube`` handle. Not collected by ``make test`` (pyproject's testpaths is ``tests``)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "operator"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from kube import Kube  # noqa: E402
from op_tools import helm, kubectl  # noqa: E402


@dataclass(frozen=True)
class Settings:
    image_load: str  # none | kind | ctr
    build: bool
    operator_replicas: int
    namespace: str = "anode-e2e"
    operator_namespace: str = "anode-system"
    node_image: str = "anode:e2e"
    next_image: str = "anode:e2e-next"  # the "upgrade": same bits, another image reference
    operator_image: str = "anode-operator:e2e"
    client_image: str = "anode-e2e-client:e2e"
    storage_class: str = ""


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings(
        image_load=os.environ.get("E2E_IMAGE_LOAD", "none"),
        build=os.environ.get("E2E_BUILD", "1") == "1",
        operator_replicas=int(os.environ.get("E2E_OPERATOR_REPLICAS", "2")),
        storage_class=os.environ.get("E2E_STORAGE_CLASS", ""),
    )


@pytest.fixture(scope="session")
def kube() -> Kube:
    kubeconfig = os.environ.get("KUBECONFIG")
    if not kubeconfig:
        pytest.fail("set KUBECONFIG to the cluster under test (e2e/run.sh does)")
    return Kube(
        kubectl=os.environ.get("E2E_KUBECTL") or str(kubectl()),
        helm=os.environ.get("E2E_HELM") or str(helm()),
        kubeconfig=kubeconfig,
    )


@pytest.fixture(scope="session")
def state() -> dict:
    """What one step leaves for the next (the steps run in file order and stop at a failure)."""
    return {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failed step, print the cluster's state and the operator's last log lines."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed or "kube" not in item.funcargs:
        return
    kube: Kube = item.funcargs["kube"]
    for args in (
        ("get", "anodeclusters,buckets,statefulsets,pods,pvc", "-A", "-o", "wide"),
        ("get", "events", "-A", "--sort-by=.lastTimestamp"),
        ("-n", "anode-system", "logs", "-l", "app.kubernetes.io/name=anode-operator",
         "--tail=60", "--prefix"),
    ):  # fmt: skip
        out = kube.run(*args, check=False, timeout=60)
        print(f"\n$ kubectl {' '.join(args)}\n{out.stdout[-6000:]}{out.stderr[-2000:]}")
