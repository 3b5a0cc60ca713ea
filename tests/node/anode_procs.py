"""Real `anode server` processes on loopback (one node or a cluster) and S3 clients for them.

A module of its own (not conftest) so test files can import it: several test folders have a
conftest.py, and `import conftest` would find whichever was imported first."""

from __future__ import annotations

import itertools
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import boto3
from botocore.config import Config
from ports import free_port

ACCESS_KEY = "test-root"
SECRET_KEY = "test-root-secret-key"
_names = itertools.count()


@dataclass
class NodeProcess:
    """One `anode server` subprocess with its own ports and data directory."""

    data_dir: Path
    extra_config: str = ""
    storage_options: str = ""
    env: dict[str, str] = field(default_factory=dict)
    s3_port: int = field(default_factory=free_port)
    admin_port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    node_id: str = "test-node"
    cluster_port: int = field(default_factory=free_port)
    data_port: int = field(default_factory=free_port)
    cluster: str = ""  # a [cluster] section for clustered nodes
    # the tests speak plain HTTP, and AWS (so Anode, by default) refuses SSE-C keys over it
    s3_options: str = "sse_c_allow_insecure = true"
    # (cert, key) PEM files: the node serves S3 and admin with TLS, trusted through the cert
    tls: tuple[Path, Path] | None = None
    # where it listens, and what it is started through (e.g. `ip netns exec NS` for a node in a
    # network namespace, listening on that namespace's address)
    host: str = "127.0.0.1"
    launcher: tuple[str, ...] = ()

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def ssl_context(self) -> ssl.SSLContext | None:
        return ssl.create_default_context(cafile=str(self.tls[0])) if self.tls else None

    @property
    def s3_url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.s3_port}"

    @property
    def admin_url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.admin_port}"

    def config_text(self) -> str:
        return f"""
[node]
id = "{self.node_id}"
s3_addr = "{self.host}:{self.s3_port}"
admin_addr = "{self.host}:{self.admin_port}"
cluster_addr = "{self.host}:{self.cluster_port}"
data_addr = "{self.host}:{self.data_port}"
advertise_host = "{self.host}"
{self._tls_config()}
{self.cluster}

[storage]
data_dir = "{self.data_dir}"
{self.storage_options}
{self._reserve()}

[s3]
{self.s3_options}

[root]
access_key = "{ACCESS_KEY}"
secret_key = "{SECRET_KEY}"
{self.extra_config}
"""

    def _reserve(self) -> str:
        """A small free-space reserve (and reserve file): many nodes share the test machine."""
        return "" if "reserve" in self.storage_options else 'reserve = "16MiB"'

    def _tls_config(self) -> str:
        if not self.tls:
            return ""
        return f'tls_cert_file = "{self.tls[0]}"\ntls_key_file = "{self.tls[1]}"'

    def start(self, timeout: float = 30, *, wait: bool = True) -> NodeProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir.parent / f"{self.data_dir.name}.toml"
        config.write_text(self.config_text())
        log_path = self.data_dir.parent / f"{self.data_dir.name}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANODE_")}
        env.update(self.env)
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [*self.launcher, sys.executable, "-m", "anode.cli", "server", "--config",
                 str(config)],
                stdout=log, stderr=subprocess.STDOUT, env=env)
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 30) -> NodeProcess:
        assert self.proc is not None
        log_path = self.data_dir.parent / f"{self.data_dir.name}.log"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"anode exited with {self.proc.returncode}; see {log_path}")
            try:
                with urllib.request.urlopen(self.admin_url + "/ready", timeout=1,
                                            context=self.ssl_context) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.05)
        raise TimeoutError("anode did not become ready")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def admin(self, path: str, *, method: str = "GET", body: dict | None = None,
              token: str | None = None, timeout: float = 30) -> tuple[int, object]:
        """Call the admin API with the root secret as Bearer token; (status, parsed JSON)."""
        import json
        import urllib.error

        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.admin_url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {token or self.secret_key}")
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=self.ssl_context) as r:
                status, raw = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode()

    def client(self, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY, **config):
        return s3_client(self.s3_url, access_key, secret_key, **config)

    def chunk_files(self) -> list[Path]:
        root = self.data_dir / "chunks"
        return [p for p in root.glob("??/*") if len(p.name) == 64]


class ClusterProcesses:
    """N clustered `anode server` processes on loopback (Raft metadata, replicated chunks)."""

    SECRET = "test-cluster-secret-0123456789"

    def __init__(self, root: Path, n: int = 3, *, replication_factor: int = 3,
                 storage_options: str = "", extra_cluster: str = "",
                 node_options: list[dict] | None = None) -> None:
        """`node_options[i]`: more NodeProcess fields for node i (host, launcher, ports)."""
        self.nodes = [NodeProcess(root / f"n{i}", node_id=f"n{i}", storage_options=storage_options,
                                  **(node_options[i - 1] if node_options else {}))
                      for i in range(1, n + 1)]
        peers = ", ".join(f'"{p.node_id}={p.host}:{p.cluster_port}"' for p in self.nodes)
        for proc in self.nodes:
            proc.cluster = (f"[cluster]\npeers = [{peers}]\nsecret = \"{self.SECRET}\"\n"
                            f"replication_factor = {replication_factor}\n{extra_cluster}")

    def start(self, timeout: float = 60) -> ClusterProcesses:
        for proc in self.nodes:
            proc.start(wait=False)
        for proc in self.nodes:
            proc.wait_ready(timeout)
        return self

    def stop(self) -> None:
        for proc in self.nodes:
            proc.stop()

    def kill(self) -> None:
        for proc in self.nodes:
            proc.kill()

    def client(self, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY, **config):
        """A boto3 client that sends every request to a random node of the cluster."""
        import random

        client = self.nodes[0].client(access_key, secret_key, **config)
        ports = [p.s3_port for p in self.nodes if p.proc and p.proc.poll() is None]

        def to_random_node(request, **_):
            from urllib.parse import urlsplit, urlunsplit

            parts = urlsplit(request.url)
            live = [p for p in ports if p]
            request.url = urlunsplit(parts._replace(netloc=f"127.0.0.1:{random.choice(live)}"))

        client.meta.events.register_first("before-sign.s3", to_random_node)
        return client

    def leader(self) -> NodeProcess:
        for proc in self.nodes:
            if proc.proc and proc.proc.poll() is None:
                status, doc = proc.admin("/status")
                if status == 200 and doc.get("role") == "leader":
                    return proc
        raise LookupError("no leader")


def s3_client(url: str, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY, **config):
    options = {"signature_version": "s3v4", "s3": {"addressing_style": "path"},
               "retries": {"max_attempts": 1}, **config}
    return boto3.client("s3", endpoint_url=url, aws_access_key_id=access_key,
                        aws_secret_access_key=secret_key, region_name="us-east-1",
                        config=Config(**options))


class ClusterFront:
    """Stands where a `NodeProcess` would in the S3 tests: clients spread requests over every
    node; raw requests and admin calls go to one node (any node must answer them)."""

    def __init__(self, cluster: ClusterProcesses) -> None:
        self.cluster = cluster

    def client(self, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY, **config):
        return self.cluster.client(access_key=access_key, secret_key=secret_key, **config)

    def __getattr__(self, name: str):
        return getattr(self.cluster.nodes[-1], name)
