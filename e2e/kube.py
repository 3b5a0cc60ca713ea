"""What the e2e needs to drive any Kubernetes cluster: kubectl/helm calls against one kubeconfig,
bounded polling, `kubectl port-forward` as a context manager, image loading (kind, containerd
`ctr import`, or nothing when the node's engine already has the images), and step logging that
prints each step's evidence and time."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")
START = time.monotonic()


def log(message: str) -> None:
    stamp = time.strftime("%H:%M:%S")
    print(f"[e2e {stamp} +{time.monotonic() - START:6.1f}s] {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def step(title: str) -> Iterator[None]:
    log(f"STEP {title}")
    t0 = time.monotonic()
    try:
        yield
    except BaseException:
        log(f"  FAILED after {time.monotonic() - t0:.1f}s: {title}")
        raise
    log(f"  done in {time.monotonic() - t0:.1f}s: {title}")


def evidence(message: str) -> None:
    log(f"  - {message}")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, interval: float = 2) -> T:
    """Call ``probe`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = probe()
            if value:
                return value
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, KeyError) as e:
            last_error = e
        if time.monotonic() > deadline:
            raise AssertionError(f"timeout after {timeout:.0f}s waiting for {what}: {last_error}")
        time.sleep(interval)


@dataclass
class Kube:
    kubectl: str
    helm: str
    kubeconfig: str
    env: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.env = {**os.environ, "KUBECONFIG": self.kubeconfig}

    def run(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess:
        # kubectl's own --timeout=Ns (deletes, waits) must run out before ours does
        for arg in args:
            if arg.startswith("--timeout=") and arg.endswith("s") and arg[10:-1].isdigit():
                timeout = max(timeout, int(arg[10:-1]) + 60)
        out = subprocess.run(
            [self.kubectl, *args],
            input=input,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout,
        )
        if check and out.returncode != 0:
            raise subprocess.CalledProcessError(out.returncode, out.args, out.stdout, out.stderr)
        return out

    def __call__(self, *args: str, input: str | None = None, timeout: float = 120) -> str:
        try:
            return self.run(*args, input=input, timeout=timeout).stdout
        except subprocess.CalledProcessError as e:
            raise AssertionError(f"kubectl {shlex.join(args)} failed: {e.stderr.strip()}") from e

    def get(self, *args: str) -> dict[str, Any]:
        return json.loads(self("get", *args, "-o", "json"))

    def items(self, *args: str) -> list[dict[str, Any]]:
        return self.get(*args)["items"]

    def exists(self, *args: str) -> bool:
        return self.run("get", *args, "-o", "name", check=False).returncode == 0

    def apply(self, manifest: str, *args: str) -> str:
        return self("apply", "-f", "-", *args, input=manifest)

    def secret(self, namespace: str, name: str) -> dict[str, str]:
        data = self.get("-n", namespace, "secret", name)["data"]
        return {k: base64.b64decode(v).decode() for k, v in data.items()}

    def pod_logs(self, namespace: str, pod: str) -> str:
        return self.run("-n", namespace, "logs", pod, check=False).stdout

    def helm_run(self, *args: str, timeout: float = 600) -> str:
        out = subprocess.run(
            [self.helm, *args], capture_output=True, text=True, env=self.env, timeout=timeout
        )
        if out.returncode != 0:
            raise AssertionError(f"helm {shlex.join(args)} failed: {out.stderr.strip()}")
        return out.stdout

    @contextlib.contextmanager
    def port_forward(self, namespace: str, target: str, port: int) -> Iterator[int]:
        """``kubectl port-forward`` on 127.0.0.1, a free local port; yields that port."""
        proc = subprocess.Popen(
            [
                self.kubectl,
                "-n",
                namespace,
                "port-forward",
                "--address",
                "127.0.0.1",
                target,
                f":{port}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
        )
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            match = re.search(r"127\.0\.0\.1:(\d+) ->", line)
            if not match:
                raise AssertionError(f"port-forward {target}: {line} {proc.stderr.read()}")
            yield int(match.group(1))
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def condition(obj: dict[str, Any], kind: str) -> str | None:
    for c in obj.get("status", {}).get("conditions") or []:
        if c.get("type") == kind:
            return c.get("status")
    return None


def pod_ready(pod: dict[str, Any]) -> bool:
    return not pod["metadata"].get("deletionTimestamp") and condition(pod, "Ready") == "True"


def load_images(strategy: str, images: list[str]) -> str:
    """Make locally built images available to the cluster's nodes.

    ``none``: the node's container engine is the one that built them (this repository's CI:
    dockershim on the same dockerd). ``kind``: ``kind load docker-image`` into
    ``$KIND_CLUSTER``. ``ctr``: ``docker save`` piped into ``$E2E_CTR_IMPORT`` (default
    ``ctr -n k8s.io images import -``, e.g. prefix ``ssh node sudo`` for a remote node)."""
    if strategy == "none":
        return "images already in the node's engine (imagePullPolicy: Never)"
    if strategy == "kind":
        cluster = os.environ.get("KIND_CLUSTER", "anode-e2e")
        subprocess.run(["kind", "load", "docker-image", "--name", cluster, *images], check=True)
        return f"kind load docker-image --name {cluster}"
    if strategy == "ctr":
        importer = os.environ.get("E2E_CTR_IMPORT", "ctr -n k8s.io images import -")
        save = subprocess.Popen(["docker", "save", *images], stdout=subprocess.PIPE)
        subprocess.run(shlex.split(importer), stdin=save.stdout, check=True)
        assert save.wait() == 0
        return f"docker save | {importer}"
    raise AssertionError(f"E2E_IMAGE_LOAD={strategy!r}: expected none, kind or ctr")
