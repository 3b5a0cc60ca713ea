"""``hack/k8s/build.sh`` finds the control plane binaries a user already has (the envtest
convention ``KUBEBUILDER_ASSETS`` first) and, where it may not build them, says why with exit
status 3, which the fixtures turn into a skip. No build happens here."""

from __future__ import annotations

import os
import subprocess

from op_helpers import REPO

BUILD = REPO / "hack" / "k8s" / "build.sh"
NAMES = ("kube-apiserver", "kube-controller-manager", "kubectl", "etcd")


def run(tmp_path, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ANODE_K8S", "KUBEBUILDER"))}
    base["PATH"] = "/usr/bin:/bin"  # etcd may come from PATH: keep the system's only
    return subprocess.run(
        [str(BUILD)],
        env={**base, "ANODE_K8S_HOME": str(tmp_path / "home"), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def fake_binaries(directory, names=NAMES):
    directory.mkdir(parents=True)
    for name in names:
        path = directory / name
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)
    return directory


def test_kubebuilder_assets_come_first_and_missing_ones_come_from_anode_k8s_bin(tmp_path):
    assets = fake_binaries(tmp_path / "assets", ("kube-apiserver", "kubectl", "etcd"))
    own = fake_binaries(tmp_path / "own", ("kube-apiserver", "kube-controller-manager", "kubectl"))
    out = run(tmp_path, KUBEBUILDER_ASSETS=str(assets), ANODE_K8S_BIN=str(own))
    assert out.returncode == 0, out.stderr
    paths = dict(line.split("=", 1) for line in out.stdout.splitlines())
    assert paths == {
        "KUBE_APISERVER": str(assets / "kube-apiserver"),
        "KUBE_CONTROLLER_MANAGER": str(own / "kube-controller-manager"),  # envtest has none
        "KUBECTL": str(assets / "kubectl"),
        "ETCD": str(assets / "etcd"),
    }


def test_missing_binaries_that_may_not_be_built_exit_3_with_the_reason(tmp_path):
    out = run(tmp_path, ANODE_K8S_NO_BUILD="1")
    assert out.returncode == 3, out.stderr
    assert "missing: kube-apiserver kube-controller-manager kubectl" in out.stderr
    assert "KUBEBUILDER_ASSETS" in out.stderr and out.stdout == ""
