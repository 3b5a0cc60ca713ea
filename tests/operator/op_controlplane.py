"""Session fixtures: a real Kubernetes v1.20 control plane (etcd + kube-apiserver +
kube-controller-manager, found or built by ``hack/k8s/build.sh``) and the real ``anode-operator``
process.

The binaries are built once per machine (5-11 minutes) when they are missing, before any test
starts (``conftest.py``), or taken from ``$KUBEBUILDER_ASSETS`` / ``$ANODE_K8S_BIN``. The control
plane runs on ports of its own with its own state directory, so it neither clashes with a
developer's ``up.sh`` nor leaves anything running: ``down.sh`` stops exactly the PIDs ``up.sh``
recorded. Where the binaries are missing and cannot be built (not Debian, not root) the tests that
need them skip and say why, unless ``ANODE_K8S_REQUIRED=1`` (CI) turns that into a failure.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml
from kubernetes.client.exceptions import ApiException
from ports import free_port

from anode_operator.kube import Kube

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "hack" / "k8s"
K8S_HOME = Path(os.environ.get("ANODE_K8S_HOME", "/var/tmp/anode-k8s"))
# One state directory and free ports per test session: two runs on one machine (a developer
# and CI, say) each get a private control plane, and down.sh stops only this run's PIDs.
RUN_DIR = K8S_HOME / f"run-operator-tests-{os.getpid()}"
CANNOT_BUILD = 3  # build.sh's exit status when this machine cannot build the binaries


PORTS = {name: str(free_port()) for name in ("ETCD_PORT", "ETCD_PEER_PORT", "API_PORT", "KCM_PORT")}


@dataclass(frozen=True)
class Binaries:
    """What ``build.sh`` answered: the binaries' paths (KUBE_APISERVER=..., KUBECTL=...), or
    why there are none."""

    paths: dict[str, str]
    missing_reason: str | None = None


_binaries: Binaries | None = None


def ensure_built() -> Binaries:
    """Find or build the binaries, once per session (``build.sh`` is a no-op when they exist)."""
    global _binaries
    if _binaries is None:
        print(
            "control plane binaries: hack/k8s/build.sh (5-11 min if not built yet)", file=sys.stderr
        )
        out = subprocess.run([str(K8S / "build.sh")], capture_output=True, text=True, timeout=3600)
        if out.returncode == CANNOT_BUILD:
            _binaries = Binaries({}, out.stderr.strip().splitlines()[-1])
        elif out.returncode != 0:
            raise RuntimeError(f"hack/k8s/build.sh failed:\n{out.stderr[-3000:]}")
        else:
            lines = [line.split("=", 1) for line in out.stdout.splitlines() if "=" in line]
            _binaries = Binaries({key: value for key, value in lines})
    return _binaries


def _k8s_env(binaries: Binaries) -> dict[str, str]:
    return {**os.environ, "ANODE_K8S_RUN": str(RUN_DIR), **PORTS, **binaries.paths}


@pytest.fixture(scope="session")
def k8s_binaries() -> Binaries:
    binaries = ensure_built()
    if binaries.missing_reason:
        if os.environ.get("ANODE_K8S_REQUIRED") == "1":
            pytest.fail(f"ANODE_K8S_REQUIRED=1 but {binaries.missing_reason}")
        pytest.skip(f"no Kubernetes control plane binaries: {binaries.missing_reason}")
    return binaries


@pytest.fixture(scope="session")
def control_plane(k8s_binaries: Binaries) -> Iterator[str]:
    """KUBECONFIG path of a fresh, running control plane."""
    env = _k8s_env(k8s_binaries)
    up = subprocess.run([str(K8S / "up.sh")], env=env, capture_output=True, text=True, timeout=300)
    if up.returncode != 0:
        raise RuntimeError(f"up.sh failed:\n{up.stderr[-3000:]}")
    kubeconfig = up.stdout.strip().splitlines()[-1]
    try:
        yield kubeconfig
    finally:
        subprocess.run([str(K8S / "down.sh"), "--purge"], env=env, capture_output=True, timeout=120)


@dataclass
class KubeEnv:
    kubeconfig: str
    kube: Kube
    api: kubernetes.client.ApiClient
    kubectl_path: str

    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run the control plane's kubectl against it, from the repository root."""
        out = subprocess.run(
            [self.kubectl_path, *args],
            env={**os.environ, "KUBECONFIG": self.kubeconfig},
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
        )
        assert not check or out.returncode == 0, out.stderr
        return out

    def apply_file(self, path: Path) -> None:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                self.kube.apply(doc)

    def wait(self, what: str, predicate: Callable[[], Any], timeout: float = 60.0) -> Any:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = predicate()
            except ApiException as exc:
                last = exc
                if exc.status != 404:
                    raise
            if last and not isinstance(last, ApiException):
                return last
            time.sleep(0.5)
        raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")

    def custom(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return kubernetes.client.CustomObjectsApi(self.api).get_namespaced_custom_object(
                "anode.dev", "v1alpha1", namespace, plural, name
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def condition(self, obj: dict[str, Any] | None, kind: str) -> dict[str, Any] | None:
        for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
            if cond["type"] == kind:
                return cond
        return None

    def create_namespace(self, name: str) -> None:
        self.kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    def events(self, namespace: str, name: str) -> list[Any]:
        return (
            kubernetes.client.CoreV1Api(self.api)
            .list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}")
            .items
        )


@pytest.fixture(scope="session")
def kube_env(control_plane: str, k8s_binaries: Binaries) -> KubeEnv:
    """The control plane with Anode's CRDs installed."""
    api = kubernetes.config.new_client_from_config(config_file=control_plane)
    env = KubeEnv(control_plane, Kube(api), api, k8s_binaries.paths["KUBECTL"])
    ext = kubernetes.client.ApiextensionsV1Api(api)
    for path in sorted((REPO / "crds").glob("*.yaml")):
        env.apply_file(path)
    for name in ("anodeclusters.anode.dev", "buckets.anode.dev"):
        env.wait(
            f"CRD {name} established",
            lambda n=name: any(
                c.type == "Established" and c.status == "True"
                for c in ext.read_custom_resource_definition(n).status.conditions or []
            ),
        )
    # the dynamic client caches discovery: start a fresh one now that the CRDs exist
    env.kube = Kube(api)
    return env


def service_account_kubeconfig(env: KubeEnv, *, path: Path) -> Path:
    """A kubeconfig that authenticates as the operator's ServiceAccount from ``manifests/``, so
    the suite's operator runs with exactly the RBAC the install gives it (least privilege,
    proven by every integration test)."""
    for name in ("00-namespace.yaml", "rbac.yaml"):
        env.apply_file(REPO / "manifests" / name)
    core = kubernetes.client.CoreV1Api(env.api)

    # a TokenRequest, not the token Secret: servers from v1.24 on no longer create those
    request = kubernetes.client.AuthenticationV1TokenRequest(
        spec=kubernetes.client.V1TokenRequestSpec(audiences=[], expiration_seconds=24 * 3600)
    )
    bearer = env.wait(
        "ServiceAccount token",
        lambda: (
            core.create_namespaced_service_account_token(
                "anode-operator", "anode-system", request
            ).status.token
        ),
    )
    admin = yaml.safe_load(Path(env.kubeconfig).read_text())
    admin["users"] = [{"name": "anode-operator", "user": {"token": bearer}}]
    admin["contexts"][0]["context"]["user"] = "anode-operator"
    path.write_text(yaml.safe_dump(admin))
    path.chmod(0o600)
    return path


LEASE = ("anode-system", "anode-operator-tests")  # the session operator's leader election
# Short leader election timings: a standby takes over within 8 + 1 s of a SIGKILL.
LEASE_ENV = {
    "ANODE_OPERATOR_LEASE_DURATION": "8",
    "ANODE_OPERATOR_LEASE_RENEW_DEADLINE": "4",
    "ANODE_OPERATOR_LEASE_RETRY": "1",
}


@dataclass
class OperatorProcess:
    proc: subprocess.Popen
    log_path: Path

    def log_lines(self) -> list[str]:
        return self.log_path.read_text(errors="replace").splitlines()

    def leading(self) -> bool:
        return any('"leading: lease' in line for line in self.log_lines())

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_operator(kube_env: KubeEnv, workdir: Path) -> OperatorProcess:
    """``anode-operator`` (the console script) watching all namespaces as the ServiceAccount of
    ``manifests/rbac.yaml``, electing its leader with the Lease ``LEASE``. Returns once it logs
    that it leads or waits as the standby."""
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "operator.log"
    kubeconfig = service_account_kubeconfig(kube_env, path=workdir / "operator.kubeconfig")
    env = {
        **os.environ,
        **LEASE_ENV,
        "KUBECONFIG": str(kubeconfig),
        "ANODE_OPERATOR_CLUSTER_INTERVAL": "2",
        "ANODE_OPERATOR_BUCKET_INTERVAL": "3",
        "ANODE_OPERATOR_RETRY_DELAY": "2",
        "ANODE_OPERATOR_BUCKET_DELETE_GIVE_UP": "15",
        # no cluster DNS here: promote learners by the pod address the stand-in kubelet assigns
        "ANODE_OPERATOR_PEER_ADDRESS": "{ip}:{port}",
    }
    script = Path(sys.executable).parent / "anode-operator"
    namespace, name = LEASE
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [str(script), "--lease", name, "--lease-namespace", namespace, "--log-format", "json"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
    op = OperatorProcess(proc=proc, log_path=log_path)
    kube_env.wait(
        "operator start-up",
        lambda: proc.poll() is not None or op.leading() or "standby: lease" in log_path.read_text(),
        timeout=30,
    )
    if proc.poll() is not None:
        raise RuntimeError("anode-operator exited:\n" + "\n".join(op.log_lines()[-40:]))
    return op


@pytest.fixture(scope="session")
def operator_process(kube_env: KubeEnv, tmp_path_factory) -> Iterator[OperatorProcess]:
    """The session's operator, leading. A test that kills it hands its successor over by
    replacing ``proc`` and ``log_path`` (see the high-availability test)."""
    op = start_operator(kube_env, tmp_path_factory.mktemp("operator"))
    try:
        assert op.leading(), "the first operator takes the free Lease"
        yield op
    finally:
        op.stop()
