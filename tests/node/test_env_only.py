"""`anode server` with no config file: environment variables and defaults alone, the way a
container image is run (`docker run -e ...`, a compose file). A 3-node cluster from env only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from anode_procs import ACCESS_KEY, SECRET_KEY, free_port, s3_client

SECRET = "env-only-cluster-secret-0123456789"


def _env(**values: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("ANODE_")}
    return {**base, **values}


def _wait_ready(proc: subprocess.Popen, admin: str, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"anode exited with {proc.returncode}:\n{log.read_text()}"
        try:
            with urllib.request.urlopen(f"{admin}/ready", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"not ready: {log.read_text()[-2000:]}")


def test_three_nodes_from_environment_variables_alone(tmp_path):
    nodes = [{name: free_port() for name in ("s3", "admin", "cluster", "data")} for _ in range(3)]
    peers = ",".join(f"n{i}=127.0.0.1:{p['cluster']}" for i, p in enumerate(nodes))
    procs: list[subprocess.Popen] = []
    try:
        for i, ports in enumerate(nodes):
            env = _env(
                ANODE_NODE_ID=f"n{i}",
                ANODE_NODE_S3_ADDR=f"127.0.0.1:{ports['s3']}",
                ANODE_NODE_ADMIN_ADDR=f"127.0.0.1:{ports['admin']}",
                ANODE_NODE_CLUSTER_ADDR=f"127.0.0.1:{ports['cluster']}",
                ANODE_NODE_DATA_ADDR=f"127.0.0.1:{ports['data']}",
                ANODE_NODE_ADVERTISE_HOST="127.0.0.1",
                ANODE_CLUSTER_PEERS=peers,
                ANODE_CLUSTER_SECRET=SECRET,
                ANODE_STORAGE_DATA_DIR=str(tmp_path / f"n{i}"),
                ANODE_ROOT_ACCESS_KEY=ACCESS_KEY,
                ANODE_ROOT_SECRET_KEY=SECRET_KEY,
            )
            log = tmp_path / f"n{i}.log"
            with log.open("wb") as out:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "anode.cli", "server"],  # no --config
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
        for i, (proc, ports) in enumerate(zip(procs, nodes, strict=True)):
            _wait_ready(proc, f"http://127.0.0.1:{ports['admin']}", tmp_path / f"n{i}.log")

        first = s3_client(f"http://127.0.0.1:{nodes[0]['s3']}")
        first.create_bucket(Bucket="env")
        first.put_object(Bucket="env", Key="k", Body=b"from env alone")
        last = s3_client(f"http://127.0.0.1:{nodes[2]['s3']}")
        assert last.get_object(Bucket="env", Key="k")["Body"].read() == b"from env alone"

        status = subprocess.run(
            [sys.executable, "-m", "anode.cli", "admin", "status"],
            env=_env(
                ANODE_ADMIN_URL=f"http://127.0.0.1:{nodes[1]['admin']}",
                ANODE_ROOT_SECRET_KEY=SECRET_KEY,
            ),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert status.returncode == 0, status.stderr
        doc = json.loads(status.stdout)
        assert doc["node_id"] == "n1" and {m["id"] for m in doc["members"]} == {"n0", "n1", "n2"}
        assert doc["snapshots"]["install_error"] is None
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_without_credentials_the_error_says_which_variables_to_set(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "anode.cli", "server"],
        env=_env(ANODE_STORAGE_DATA_DIR=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "ANODE_ROOT_ACCESS_KEY" in out.stderr and "does not exist" not in out.stderr


def test_anode_config_names_the_file_when_no_flag_is_given(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "anode.cli", "server"],
        env=_env(ANODE_CONFIG=str(tmp_path / "missing.toml")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "missing.toml does not exist" in out.stderr
