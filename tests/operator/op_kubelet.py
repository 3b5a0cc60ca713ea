"""A stand-in kubelet: runs a real ``anode server`` process for every Pod of a namespace and
reports it in the Pod's status, so the operator's health checks, bucket creation and rolling
restarts hit real nodes while the control plane has no kubelet of its own.

It does what a kubelet does with the pod spec the operator rendered, no more: ConfigMap and
Secret volumes become directories of their keys, the container's env is resolved (plain values,
``$(VAR)`` references, ``fieldRef: metadata.name``, ``secretKeyRef``; container paths point into
the volumes), the container args run against the local ``anode`` console script, the PVC is a
directory that outlives the process, and the readiness probe (``GET /ready`` on the admin port,
HTTPS without verification when the probe says HTTPS) decides the Pod's ``Ready`` condition.
Each pod gets its own loopback address (its "pod IP"), so every node keeps the standard ports.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
import tomllib
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kubernetes
from kubernetes.client.exceptions import ApiException

ANODE = Path(sys.executable).parent / "anode"
_UNVERIFIED = ssl._create_unverified_context()  # what a kubelet's HTTPS probe does


@dataclass
class RunningPod:
    uid: str
    name: str
    ip: str
    proc: subprocess.Popen
    ready: bool = False


class StandInKubelet:
    def __init__(
        self, *, api: kubernetes.client.ApiClient, namespace: str, workdir: Path, subnet: str
    ) -> None:
        """``subnet``: a loopback /24 prefix such as ``127.101.7.`` for this kubelet's pods."""
        self.core = kubernetes.client.CoreV1Api(api)
        self.namespace = namespace
        self.workdir = workdir
        self.subnet = subnet
        self.next_ip = 10
        self.ips: dict[str, str] = {}  # pod name -> address, stable like a PVC-bound identity
        self.pods: dict[str, RunningPod] = {}  # uid -> process
        self.starts: list[tuple[str, str]] = []  # (pod name, image) in start order
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="stand-in-kubelet", daemon=True)
        self.errors: list[str] = []

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> StandInKubelet:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        for pod in list(self.pods.values()):
            self._kill(pod)
        self.pods.clear()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._sync()
            except Exception as exc:  # keep going; tests assert on self.errors
                self.errors.append(repr(exc))
            self._stop.wait(0.3)

    # --- one pass ----------------------------------------------------------------------------
    def _sync(self) -> None:
        live = {p.metadata.uid: p for p in self.core.list_namespaced_pod(self.namespace).items}
        for uid in [u for u in self.pods if u not in live]:
            self._kill(self.pods.pop(uid))
        for uid, pod in live.items():
            if pod.metadata.deletion_timestamp:
                continue
            running = self.pods.get(uid)
            if running is None:
                if any(p.name == pod.metadata.name for p in self.pods.values()):
                    continue  # the previous incarnation is still stopping
                self.pods[uid] = self._run(pod)
                continue
            alive = running.proc.poll() is None
            (container,) = pod.spec.containers
            probe = container.readiness_probe.http_get if container.readiness_probe else None
            scheme = (probe.scheme if probe and probe.scheme else "HTTP").lower()
            ready = alive and _probe(f"{scheme}://{running.ip}:8081/ready")
            if ready != running.ready:
                running.ready = ready
                self._report(pod, running)

    def _run(self, pod: Any) -> RunningPod:
        name = pod.metadata.name
        ip = self._ip(name)
        root = self.workdir / name
        mounts = self._volumes(pod, root)
        (container,) = pod.spec.containers
        # the image's PATH: `anode` is the console script of this checkout
        env = {"PATH": f"{ANODE.parent}:/usr/bin:/bin", "HOME": str(root)}
        if "PYTHONPATH" in os.environ:  # lets a run pin another checkout of the node
            env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        for var in container.env or []:  # container paths in values point into the volumes
            env[var.name] = _remap(self._env_value(pod, var, env), mounts)
        # What a container's mount namespace, network namespace and cluster DNS would provide:
        # the data volume, the pod's own address, and peer names resolved to pod addresses.
        config = mounts.get("/etc/anode")
        peers = _peers(config / "anode.toml") if config else []
        env.update(
            {
                "ANODE_STORAGE_DATA_DIR": str(mounts.get("/var/lib/anode", root / "data")),
                "ANODE_NODE_S3_ADDR": f"{ip}:8080",
                "ANODE_NODE_ADMIN_ADDR": f"{ip}:8081",
                "ANODE_NODE_CLUSTER_ADDR": f"{ip}:9090",
                "ANODE_NODE_DATA_ADDR": f"{ip}:9091",
                "ANODE_NODE_ADVERTISE_HOST": ip,
                "ANODE_CLUSTER_PEERS": ",".join(
                    f"{peer}={self._ip(peer)}:{port}" for peer, port in peers
                ),
            }
        )
        command = [*(container.command or ["anode"]), *(container.args or [])]
        argv = [_remap(a, mounts) for a in command]
        log = (root / "node.log").open("ab")
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
        log.close()
        self.starts.append((name, container.image))
        running = RunningPod(uid=pod.metadata.uid, name=name, ip=ip, proc=proc)
        self._report(pod, running)
        return running

    def _ip(self, pod_name: str) -> str:
        """The pod's address: stable per pod name (what its DNS name resolves to)."""
        if pod_name not in self.ips:
            self.ips[pod_name] = f"{self.subnet}{self.next_ip}"
            self.next_ip += 1
        return self.ips[pod_name]

    def _volumes(self, pod: Any, root: Path) -> dict[str, Path]:
        """mountPath -> local directory, for the container's volume mounts."""
        (container,) = pod.spec.containers
        volumes = {v.name: v for v in pod.spec.volumes or []}
        out: dict[str, Path] = {}
        for mount in container.volume_mounts or []:
            local = root / "volumes" / mount.name
            volume = volumes.get(mount.name)
            if volume is not None and volume.config_map is not None:
                shutil.rmtree(local, ignore_errors=True)
                local.mkdir(parents=True)
                cm = self.core.read_namespaced_config_map(volume.config_map.name, self.namespace)
                for key, value in (cm.data or {}).items():
                    (local / key).write_text(value)
            elif volume is not None and volume.secret is not None:
                shutil.rmtree(local, ignore_errors=True)
                local.mkdir(parents=True)
                secret = self.core.read_namespaced_secret(volume.secret.secret_name, self.namespace)
                for key, value in (secret.data or {}).items():
                    (local / key).write_bytes(base64.b64decode(value))
            else:  # PVC (persistent across restarts), emptyDir
                local.mkdir(parents=True, exist_ok=True)
            out[mount.mount_path] = local
        return out

    def _env_value(self, pod: Any, var: Any, env: dict[str, str]) -> str:
        if var.value_from is None:
            return re.sub(
                r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), var.value or ""
            )
        if var.value_from.field_ref is not None:
            assert var.value_from.field_ref.field_path == "metadata.name"
            return pod.metadata.name
        ref = var.value_from.secret_key_ref
        secret = self.core.read_namespaced_secret(ref.name, self.namespace)
        return base64.b64decode(secret.data[ref.key]).decode()

    def _report(self, pod: Any, running: RunningPod) -> None:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        flag = "True" if running.ready else "False"
        status = {
            "phase": "Running" if running.proc.poll() is None else "Failed",
            "podIP": running.ip,
            "podIPs": [{"ip": running.ip}],
            "startTime": now,
            "conditions": [
                {"type": "Ready", "status": flag, "lastTransitionTime": now},
                {"type": "ContainersReady", "status": flag, "lastTransitionTime": now},
            ],
        }
        try:
            self.core.patch_namespaced_pod_status(
                pod.metadata.name, self.namespace, {"status": status}
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

    def _kill(self, pod: RunningPod) -> None:
        if pod.proc.poll() is None:
            pod.proc.send_signal(signal.SIGTERM)
            try:
                pod.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pod.proc.kill()
                pod.proc.wait()

    def wait_until_idle(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(
            p.proc.poll() is None and not p.ready for p in self.pods.values()
        ):
            time.sleep(0.2)


def _remap(arg: str, mounts: dict[str, Path]) -> str:
    """Container paths (also inside a shell command line) -> the local volume directories."""
    if not mounts:
        return arg
    paths = sorted(mounts, key=len, reverse=True)
    pattern = "|".join(re.escape(p) + r"(?=/|\b|$)" for p in paths)
    return re.sub(pattern, lambda m: str(mounts[m.group(0)]), arg)  # one pass: no re-mapping


def _peers(config: Path) -> list[tuple[str, str]]:
    """(pod name, port) of every ``cluster.peers`` entry ("id=host:port")."""
    data = tomllib.loads(config.read_text())
    out = []
    for entry in data.get("cluster", {}).get("peers", []):
        node_id, _, address = entry.partition("=")
        out.append((node_id, address.rpartition(":")[2]))
    return out


def _probe(url: str) -> bool:
    """A kubelet's HTTP(S) probe: an HTTPS probe does not verify the certificate."""
    try:
        with urllib.request.urlopen(url, timeout=1, context=_UNVERIFIED) as resp:
            return resp.status == 200
    except OSError:
        return False
