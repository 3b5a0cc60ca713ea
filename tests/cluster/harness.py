"""Run N `node_main.py` processes on 127.0.0.1 and talk to their control APIs.

Every process this starts is stopped by PID in `stop_all` (the fixture calls it), so a failing
test does not leave members running on the shared machine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ports import free_port
from proxy import Proxy

NODE_MAIN = Path(__file__).with_name("node_main.py")


def bucket_cmd(bucket: str) -> list[Any]:
    return ["CreateBucket", {"bucket": bucket, "owner": "o", "created": 0.0}]


def put_cmd(bucket: str, key: str, value: str) -> list[Any]:
    record = {"etag": value, "size": len(value), "chunks": [], "mtime": 0.0}
    return ["PutObject", {"bucket": bucket, "key": key, "record": record}]


@dataclass
class Member:
    node_id: str
    raft: str
    http: int
    data: Path
    learner: bool = False
    paused: bool = False
    listen: str | None = None
    proc: subprocess.Popen[bytes] | None = None
    extra: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http}"


class Cluster:
    def __init__(self, root: Path, n: int = 3, *, proxies: bool = False, **options: Any) -> None:
        """`proxies`: every member is reached through a `Proxy` and n1 has the smallest
        address, so `proxies["n1"].cut()` partitions n1 away (see proxy.py)."""
        self.root = root
        self.options = options
        self.members: list[Member] = []
        self.proxies: dict[str, Proxy] = {}
        for i in range(n):
            self.members.append(self._new_member(f"n{i + 1}"))
        if proxies:
            addresses = sorted((f"127.0.0.1:{free_port()}" for _ in self.members), key=str)
            for m, address in zip(self.members, addresses, strict=True):
                m.listen = m.raft
                m.raft = address
                self.proxies[m.node_id] = Proxy(
                    listen_port=int(address.rsplit(":", 1)[1]),
                    target_port=int(m.listen.rsplit(":", 1)[1]),
                )
        self.voters = [m.node_id for m in self.members]

    def _new_member(self, node_id: str) -> Member:
        return Member(node_id, f"127.0.0.1:{free_port()}", free_port(), self.root / node_id)

    def member(self, node_id: str) -> Member:
        return next(m for m in self.members if m.node_id == node_id)

    # ---- processes ------------------------------------------------------------------------

    def start(self, node_id: str | None = None) -> None:
        for m in self.members if node_id is None else [self.member(node_id)]:
            peers = ",".join(
                f"{o.node_id}={o.raft}"
                for o in self.members
                if o.node_id != m.node_id and o.node_id in self.voters
            )
            args = [
                sys.executable,
                str(NODE_MAIN),
                "--id",
                m.node_id,
                "--raft",
                m.raft,
                "--http",
                str(m.http),
                "--peers",
                peers,
                "--data",
                str(m.data),
            ]
            for key, value in self.options.items():
                args += [f"--{key.replace('_', '-')}", str(value)]
            if m.learner:
                args.append("--learner")
            args += m.extra
            if m.listen:
                args += ["--listen", m.listen]
            m.data.mkdir(parents=True, exist_ok=True)
            with open(m.data.parent / f"{m.node_id}.log", "ab") as log:
                m.proc = subprocess.Popen(args, stdout=log, stderr=log, env=os.environ.copy())
        for m in self.members if node_id is None else [self.member(node_id)]:
            self._wait_http(m)

    def add_learner(self, node_id: str) -> Member:
        m = self._new_member(node_id)
        m.learner = True
        self.members.append(m)
        self.start(node_id)
        return m

    def _wait_http(self, m: Member, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert m.proc is not None and m.proc.poll() is None, f"{m.node_id} exited"
            try:
                self.get(m, "/status")
                return
            except (OSError, urllib.error.URLError):
                time.sleep(0.1)
        raise TimeoutError(f"{m.node_id} did not come up")

    def kill(self, node_id: str) -> None:
        m = self.member(node_id)
        if m.proc is not None and m.proc.poll() is None:
            m.proc.send_signal(signal.SIGKILL)
            m.proc.wait()
        m.proc = None

    def pause(self, node_id: str) -> None:
        """SIGSTOP: the member's TCP connections stay open but nothing flows (a silent
        partition, unlike a kill, whose connection resets tell the others at once)."""
        m = self.member(node_id)
        assert m.proc is not None
        m.proc.send_signal(signal.SIGSTOP)
        m.paused = True

    def resume(self, node_id: str) -> None:
        m = self.member(node_id)
        assert m.proc is not None
        m.proc.send_signal(signal.SIGCONT)
        m.paused = False

    def stop_all(self) -> None:
        for m in self.members:
            if m.proc is not None and m.paused:
                m.proc.send_signal(signal.SIGCONT)
                m.paused = False
        for m in self.members:
            if m.proc is not None and m.proc.poll() is None:
                m.proc.send_signal(signal.SIGTERM)
        for m in self.members:
            if m.proc is not None:
                try:
                    m.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    m.proc.kill()
                    m.proc.wait()
                m.proc = None
        for proxy in self.proxies.values():
            proxy.close()
        self.proxies.clear()

    def alive(self) -> list[Member]:
        return [
            m for m in self.members if m.proc is not None and m.proc.poll() is None and not m.paused
        ]

    # ---- control API ----------------------------------------------------------------------

    def request(
        self, m: Member, method: str, path: str, body: Any = None, timeout: float = 15.0
    ) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            m.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def get(self, m: Member, path: str) -> Any:
        status, body = self.request(m, "GET", path)
        assert status == 200, (status, body)
        return body

    def propose(self, m: Member, commands: list[Any]) -> tuple[int, Any]:
        return self.request(m, "POST", "/propose", {"commands": commands})

    def status(self, m: Member, digest: bool = False) -> dict[str, Any]:
        return self.get(m, "/status" + ("?digest=1" if digest else ""))

    def wait_leader(self, timeout: float = 15.0, among: list[Member] | None = None) -> Member:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for m in among or self.alive():
                try:
                    s = self.status(m)
                except (OSError, urllib.error.URLError):
                    continue
                if s["role"] == "leader":
                    return m
            time.sleep(0.05)
        raise TimeoutError("no leader")

    def wait_converged(
        self, timeout: float = 20.0, members: list[Member] | None = None
    ) -> dict[str, Any]:
        """Wait until the given members hold identical data; return the common digest info."""
        deadline = time.monotonic() + timeout
        for m in members or self.alive():  # everything committed so far is applied there
            while self.request(m, "POST", "/barrier", {})[0] != 200:
                assert time.monotonic() < deadline, f"{m.node_id}: barrier keeps failing"
                time.sleep(0.2)
        last: list[Any] = []
        while time.monotonic() < deadline:
            last = [self.status(m, digest=True) for m in members or self.alive()]
            if len({(s["digest"], tuple(s["position"])) for s in last}) == 1:
                return last[0]
            time.sleep(0.2)
        seen = [(s["digest"][:8], s["position"]) for s in last]
        raise AssertionError(f"members did not converge: {seen}")


class Writers:
    """Threads that keep proposing unique PutObjects to random live members.

    `acked` holds every key whose proposal was acknowledged (HTTP 200); others may or may not
    have been applied.
    """

    def __init__(self, cluster: Cluster, bucket: str, threads: int = 8) -> None:
        import random
        import threading

        self.cluster = cluster
        self.bucket = bucket
        self.acked: set[str] = set()
        self.failed = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._random = random.Random(7)
        self._threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)
        ]

    def __enter__(self) -> Writers:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()

    def _run(self, worker: int) -> None:
        n = 0
        while not self._stop.is_set():
            alive = self.cluster.alive()
            if not alive:
                time.sleep(0.05)
                continue
            m = self._random.choice(alive)
            key = f"w{worker}-{n}"
            n += 1
            try:
                status, _ = self.cluster.propose(m, [put_cmd(self.bucket, key, key)])
            except OSError:
                status = 0
            with self._lock:
                if status == 200:
                    self.acked.add(key)
                else:
                    self.failed += 1
                    time.sleep(0.02)

    def count(self) -> int:
        with self._lock:
            return len(self.acked)
