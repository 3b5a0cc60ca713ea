"""`anode local`: the embedded default, a cluster of node processes on 127.0.0.1, no Kubernetes.

Node i (from 0) listens on 8080+100i (S3), 8081+100i (admin), 9090+100i (Raft), 9091+100i (chunk
transfer), keeps its data under <data-dir>/node-<i+1>, and all share a cluster secret created once
in <data-dir>/cluster.secret. The first node keeps S3 on :8080, so the single-node quick start
still works.

This process supervises the nodes like a container runtime would: a node that dies (kill -9 it
to try failover) is restarted with back-off while the others keep serving; only Ctrl-C or
SIGTERM stops them all. Each node's PID is in <data-dir>/node-<i+1>.pid.
"""

from __future__ import annotations

import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from .config import ConfigError, RootConfig, load_config

QUICKSTART_ACCESS_KEY = "anodeadmin"
QUICKSTART_SECRET_KEY = "anodeadmin-secret"
_POLL = 0.2


def node_config(i: int, n: int, data_dir: Path, secret: str, base: int) -> str:
    def port(offset: int, node: int = i) -> int:
        return base + offset + 100 * node

    peers = ", ".join(f'"node-{k + 1}=127.0.0.1:{port(1010, k)}"' for k in range(n))
    cluster = (
        (f'[cluster]\npeers = [{peers}]\nsecret = "{secret}"\nreplication_factor = {min(3, n)}\n')
        if n > 1
        else ""
    )
    return f"""[node]
id = "node-{i + 1}"
s3_addr = "127.0.0.1:{port(0)}"
admin_addr = "127.0.0.1:{port(1)}"
cluster_addr = "127.0.0.1:{port(1010)}"
data_addr = "127.0.0.1:{port(1011)}"
advertise_host = "127.0.0.1"

{cluster}
[storage]
data_dir = "{data_dir / f"node-{i + 1}"}"

[root]
access_key = "{QUICKSTART_ACCESS_KEY}"
secret_key = "{QUICKSTART_SECRET_KEY}"
"""


@dataclass
class Backoff:
    """Delay before restarting a node: doubles per crash, resets once a run lasted `stable`."""

    first: float = 1.0
    cap: float = 30.0
    stable: float = 60.0
    delay: float = 0.0

    def after_exit(self, ran_for: float) -> float:
        if ran_for >= self.stable or self.delay == 0:
            self.delay = self.first
        else:
            self.delay = min(self.cap, self.delay * 2)
        return self.delay


@dataclass
class Member:
    """One supervised `anode server` process."""

    name: str
    config: Path
    admin_url: str
    pid_file: Path
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    restart_at: float | None = None
    serving: bool = False
    restarts: int = 0
    backoff: Backoff = field(default_factory=Backoff)

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "anode.cli", "server", "--config", str(self.config)]
        )
        self.pid_file.write_text(f"{self.proc.pid}\n")
        self.started, self.restart_at, self.serving = time.monotonic(), None, False

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def _serves(admin_url: str) -> bool:
    try:
        with urllib.request.urlopen(admin_url + "/ready", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def effective_root(config: Path) -> RootConfig:
    """The root credentials a node started from `config` really uses: ANODE_ROOT_* in the
    environment override the quick-start ones written into the file."""
    return load_config(config).root


def run_local(*, data_dir: Path, nodes: int, base_port: int = 8080) -> int:
    data_dir.mkdir(parents=True, exist_ok=True)
    secret_file = data_dir / "cluster.secret"
    if not secret_file.exists():
        secret_file.write_text(secrets.token_urlsafe(32))
        secret_file.chmod(0o600)
    secret = secret_file.read_text().strip()
    members: list[Member] = []
    print(f"Anode: a local cluster of {nodes} node(s), data in {data_dir}")
    for i in range(nodes):
        config = data_dir / f"node-{i + 1}.toml"
        config.write_text(node_config(i, nodes, data_dir.resolve(), secret, base_port))
        member = Member(
            f"node-{i + 1}",
            config,
            f"http://127.0.0.1:{base_port + 1 + 100 * i}",
            data_dir / f"node-{i + 1}.pid",
        )
        members.append(member)
    try:
        root = effective_root(members[0].config)
    except ConfigError as e:
        print(f"anode local: configuration error: {e}", file=sys.stderr)
        return 2
    for i, member in enumerate(members):
        member.start()
        assert member.proc is not None
        print(
            f"  {member.name}: S3 http://127.0.0.1:{base_port + 100 * i}   "
            f"admin {member.admin_url}   pid {member.proc.pid}"
        )
    print(
        f"""  access key: {root.access_key}
  secret key: {root.secret_key}
Try: AWS_ACCESS_KEY_ID={root.access_key} AWS_SECRET_ACCESS_KEY={root.secret_key} \\
     aws --endpoint-url http://127.0.0.1:{base_port} s3 mb s3://demo
     ANODE_ROOT_SECRET_KEY={root.secret_key} anode admin status""",
        flush=True,
    )
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    all_serving = False
    while not stopping:
        _supervise(members)
        if not all_serving and all(m.serving for m in members):
            all_serving = True
            print(f"Anode: ready, all {nodes} node(s) serving", flush=True)
        time.sleep(_POLL)
    _stop_all(members)
    return 0


def _supervise(members: list[Member]) -> None:
    """One round: notice exits, restart members whose back-off has passed, notice serving."""
    now = time.monotonic()
    for m in members:
        if m.proc is not None and m.restart_at is None and m.proc.poll() is not None:
            delay = m.backoff.after_exit(now - m.started)
            m.restart_at, m.serving = now + delay, False
            print(
                f"anode local: {m.name} (pid {m.proc.pid}) exited with "
                f"{_exit_text(m.proc.returncode)}; the others keep serving; restarting it in "
                f"{delay:g}s",
                file=sys.stderr,
                flush=True,
            )
        elif m.restart_at is not None and now >= m.restart_at:
            m.start()
            m.restarts += 1
            assert m.proc is not None
            print(
                f"anode local: {m.name} restarted (pid {m.proc.pid}, restart {m.restarts})",
                file=sys.stderr,
                flush=True,
            )
        elif m.running() and not m.serving and _serves(m.admin_url):
            m.serving = True
            if m.restarts:
                print(f"anode local: {m.name} is serving again", file=sys.stderr, flush=True)


def _exit_text(code: int) -> str:
    if code < 0:
        return f"signal {signal.Signals(-code).name}"
    return f"status {code}"


def _stop_all(members: list[Member]) -> None:
    for m in members:
        if m.running():
            assert m.proc is not None
            m.proc.terminate()
    for m in members:
        if m.proc is None:
            continue
        try:
            m.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            m.proc.kill()
            m.proc.wait()
        m.pid_file.unlink(missing_ok=True)
