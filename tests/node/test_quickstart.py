"""`anode local` (what `make run` starts): a 3-node cluster on loopback with printed endpoints."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from anode_procs import s3_client
from botocore.exceptions import ClientError, EndpointConnectionError

from anode.local import QUICKSTART_ACCESS_KEY, QUICKSTART_SECRET_KEY, Backoff

ANODE = str(Path(sys.executable).parent / "anode")


def wait_ready(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/ready", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(url)


def test_anode_local_runs_a_three_node_cluster(tmp_path):
    base = random.randrange(20000, 40000, 1000)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANODE_")}
    proc = subprocess.Popen(
        [ANODE, "local", "--data-dir", str(tmp_path / "data"), "--base-port", str(base)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        banner = "".join(proc.stdout.readline() for _ in range(6))
        for i in range(3):
            assert f"http://127.0.0.1:{base + 100 * i}" in banner
        assert QUICKSTART_SECRET_KEY in banner
        for i in range(3):
            wait_ready(f"http://127.0.0.1:{base + 1 + 100 * i}")
        first = s3_client(f"http://127.0.0.1:{base}", QUICKSTART_ACCESS_KEY, QUICKSTART_SECRET_KEY)
        third = s3_client(
            f"http://127.0.0.1:{base + 200}", QUICKSTART_ACCESS_KEY, QUICKSTART_SECRET_KEY
        )
        first.create_bucket(Bucket="demo")
        body = b"from node 1 " * 4000  # over inline_max: a chunk file on every node
        first.put_object(Bucket="demo", Key="hello", Body=body)
        assert third.get_object(Bucket="demo", Key="hello")["Body"].read() == body
        token = {"Authorization": f"Bearer {QUICKSTART_SECRET_KEY}"}
        request = urllib.request.Request(f"http://127.0.0.1:{base + 1}/status", headers=token)
        with urllib.request.urlopen(request) as r:
            status = json.load(r)
        assert len(status["members"]) == 3 and status["leader"]
        assert all(m["chunks"] == 1 for m in status["members"])  # one chunk, three copies
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0


class Console:
    """The lines `anode local` prints (stdout and stderr), read by a thread as they come."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        threading.Thread(target=self._read, args=(proc.stdout,), daemon=True).start()

    def _read(self, stream) -> None:
        for line in stream:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    def wait_for(self, pattern: str, timeout: float = 90) -> re.Match:
        """The first line (from the start) matching `pattern`."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines:
                    if m := re.search(pattern, line):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"no line matching {pattern!r} in:\n" + "\n".join(self.lines)
                    )
                self._changed.wait(left)


def _retry_unavailable(call, timeout: float = 60, **params):
    """`call(**params)`, retried while the cluster elects a leader (503) or a member is down."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call(**params)
        except (ClientError, EndpointConnectionError) as e:
            code = getattr(e, "response", {}).get("Error", {}).get("Code")
            if time.monotonic() > deadline or code not in (None, "ServiceUnavailable"):
                raise
            time.sleep(0.3)


def test_anode_local_survives_a_killed_member(tmp_path):
    """kill -9 one node of `anode local` (the Raft leader, the hardest case): the other two keep
    serving reads and writes, the supervisor restarts the dead one, and it serves again with
    everything written meanwhile. The printed credentials are the ones that work, also when
    ANODE_ROOT_* overrides the quick-start ones."""
    base = random.randrange(20000, 40000, 1000)
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANODE_")}
    env.update(ANODE_ROOT_ACCESS_KEY="my-root", ANODE_ROOT_SECRET_KEY="my-root-secret-key")
    proc = subprocess.Popen(
        [ANODE, "local", "--data-dir", str(data), "--base-port", str(base)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    console = Console(proc)
    try:
        assert console.wait_for(r"access key: (\S+)").group(1) == "my-root"
        assert console.wait_for(r"secret key: (\S+)").group(1) == "my-root-secret-key"
        console.wait_for(r"^Anode: ready, all 3 node\(s\) serving")
        clients = [
            s3_client(f"http://127.0.0.1:{base + 100 * i}", "my-root", "my-root-secret-key")
            for i in range(3)
        ]
        clients[0].create_bucket(Bucket="demo")
        token = {"Authorization": "Bearer my-root-secret-key"}
        request = urllib.request.Request(f"http://127.0.0.1:{base + 1}/status", headers=token)
        with urllib.request.urlopen(request) as r:
            dead = int(json.load(r)["leader"].removeprefix("node-")) - 1
        pid = int((data / f"node-{dead + 1}.pid").read_text())
        assert console.wait_for(rf"node-{dead + 1}: .* pid (\d+)").group(1) == str(pid)
        os.kill(pid, signal.SIGKILL)
        console.wait_for(rf"node-{dead + 1} \(pid {pid}\) exited with signal SIGKILL")
        alive = [c for i, c in enumerate(clients) if i != dead]
        written = {}
        for n in range(20):
            key, body = f"k{n}", f"written while node-{dead + 1} is down #{n} ".encode() * 2000
            _retry_unavailable(alive[n % 2].put_object, Bucket="demo", Key=key, Body=body)
            got = _retry_unavailable(alive[(n + 1) % 2].get_object, Bucket="demo", Key=key)
            assert got["Body"].read() == body
            written[key] = body
        new_pid = int(console.wait_for(rf"node-{dead + 1} restarted \(pid (\d+)").group(1))
        assert new_pid != pid and int((data / f"node-{dead + 1}.pid").read_text()) == new_pid
        console.wait_for(rf"node-{dead + 1} is serving again")
        for key, body in written.items():
            got = _retry_unavailable(clients[dead].get_object, Bucket="demo", Key=key)
            assert got["Body"].read() == body
        clients[dead].put_object(Bucket="demo", Key="after", Body=b"back")
        assert proc.poll() is None  # the supervisor never gave up
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    assert not list(data.glob("*.pid"))


def test_restart_backoff_doubles_while_crashing_and_resets_after_a_stable_run():
    backoff = Backoff(first=1, cap=8, stable=60)
    assert [backoff.after_exit(ran_for=2) for _ in range(5)] == [1, 2, 4, 8, 8]
    assert backoff.after_exit(ran_for=61) == 1
