"""`anode local`: the embedded default, a cluster of node processes on 127.0.0.1, no Kubernetes.

Node i (from 0) listens on 8080+100i (S3), 8081+100i (admin), 9090+100i (Raft), 9091+100i (chunk
transfer), keeps its data under <data-dir>/node-<i+1>, and all share a cluster secret created once
in <data-dir>/cluster.secret. The first node keeps S3 on :8080, so the single-node quick start
still works. This process supervises the nodes and stops them all on Ctrl-C.
"""

from __future__ import annotations

import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

QUICKSTART_ACCESS_KEY = "anodeadmin"
QUICKSTART_SECRET_KEY = "anodeadmin-secret"


def node_config(i: int, n: int, data_dir: Path, secret: str, base: int) -> str:
    def port(offset: int, node: int = i) -> int:
        return base + offset + 100 * node

    peers = ", ".join(f'"node-{k + 1}=127.0.0.1:{port(1010, k)}"' for k in range(n))
    cluster = (f'[cluster]\npeers = [{peers}]\nsecret = "{secret}"\n'
               f"replication_factor = {min(3, n)}\n") if n > 1 else ""
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


def run_local(*, data_dir: Path, nodes: int, base_port: int = 8080) -> int:
    data_dir.mkdir(parents=True, exist_ok=True)
    secret_file = data_dir / "cluster.secret"
    if not secret_file.exists():
        secret_file.write_text(secrets.token_urlsafe(32))
        secret_file.chmod(0o600)
    secret = secret_file.read_text().strip()
    procs: list[subprocess.Popen[bytes]] = []
    print(f"Anode: a local cluster of {nodes} node(s), data in {data_dir}")
    for i in range(nodes):
        config = data_dir / f"node-{i + 1}.toml"
        config.write_text(node_config(i, nodes, data_dir.resolve(), secret, base_port))
        procs.append(subprocess.Popen([sys.executable, "-m", "anode.cli", "server",
                                       "--config", str(config)]))
        print(f"  node-{i + 1}: S3 http://127.0.0.1:{base_port + 100 * i}   "
              f"admin http://127.0.0.1:{base_port + 1 + 100 * i}")
    print(f"""  access key: {QUICKSTART_ACCESS_KEY}
  secret key: {QUICKSTART_SECRET_KEY}
Try: AWS_ACCESS_KEY_ID={QUICKSTART_ACCESS_KEY} AWS_SECRET_ACCESS_KEY={QUICKSTART_SECRET_KEY} \\
     aws --endpoint-url http://127.0.0.1:{base_port} s3 mb s3://demo
     ANODE_ROOT_SECRET_KEY={QUICKSTART_SECRET_KEY} anode admin status""", flush=True)
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while not stopping and all(p.poll() is None for p in procs):
        time.sleep(0.2)
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
    failed = [i + 1 for i, p in enumerate(procs) if p.returncode not in (0, -signal.SIGTERM)]
    if failed and not stopping:
        print(f"anode local: node(s) {failed} exited; stopped the others", file=sys.stderr)
        return 1
    return 0
