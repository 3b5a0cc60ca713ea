"""Fixtures that run real `anode server` processes on loopback and real S3 clients against them."""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

ACCESS_KEY = "test-root"
SECRET_KEY = "test-root-secret-key"
_names = itertools.count()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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

    @property
    def s3_url(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def config_text(self) -> str:
        return f"""
[node]
id = "test-node"
s3_addr = "127.0.0.1:{self.s3_port}"
admin_addr = "127.0.0.1:{self.admin_port}"

[storage]
data_dir = "{self.data_dir}"
{self.storage_options}

[root]
access_key = "{ACCESS_KEY}"
secret_key = "{SECRET_KEY}"
{self.extra_config}
"""

    def start(self, timeout: float = 30) -> NodeProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir.parent / f"{self.data_dir.name}.toml"
        config.write_text(self.config_text())
        log_path = self.data_dir.parent / f"{self.data_dir.name}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANODE_")}
        env.update(self.env)
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "anode.cli", "server", "--config", str(config)],
                stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"anode exited with {self.proc.returncode}; see {log_path}")
            try:
                with urllib.request.urlopen(self.admin_url + "/ready", timeout=1) as r:
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
              token: str | None = None) -> tuple[int, object]:
        """Call the admin API with the root secret as Bearer token; (status, parsed JSON)."""
        import json
        import urllib.error

        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.admin_url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {token or self.secret_key}")
        try:
            with urllib.request.urlopen(request, timeout=10) as r:
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


def s3_client(url: str, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY, **config):
    options = {"signature_version": "s3v4", "s3": {"addressing_style": "path"},
               "retries": {"max_attempts": 1}, **config}
    return boto3.client("s3", endpoint_url=url, aws_access_key_id=access_key,
                        aws_secret_access_key=secret_key, region_name="us-east-1",
                        config=Config(**options))


@pytest.fixture(scope="session")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    """A node shared by the whole session; tests use their own buckets."""
    proc = NodeProcess(tmp_path_factory.mktemp("shared") / "data").start()
    yield proc
    proc.stop()


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
