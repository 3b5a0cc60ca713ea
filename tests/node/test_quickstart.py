"""`anode local` (what `make run` starts): a 3-node cluster on loopback with printed endpoints."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from anode_procs import s3_client

from anode.local import QUICKSTART_ACCESS_KEY, QUICKSTART_SECRET_KEY

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
    proc = subprocess.Popen([ANODE, "local", "--data-dir", str(tmp_path / "data"),
                             "--base-port", str(base)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        banner = "".join(proc.stdout.readline() for _ in range(6))
        for i in range(3):
            assert f"http://127.0.0.1:{base + 100 * i}" in banner
        assert QUICKSTART_SECRET_KEY in banner
        for i in range(3):
            wait_ready(f"http://127.0.0.1:{base + 1 + 100 * i}")
        first = s3_client(f"http://127.0.0.1:{base}", QUICKSTART_ACCESS_KEY, QUICKSTART_SECRET_KEY)
        third = s3_client(f"http://127.0.0.1:{base + 200}", QUICKSTART_ACCESS_KEY,
                          QUICKSTART_SECRET_KEY)
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
