"""What the model harness drives: one node or a cluster, through boto3, with faults.

A `Target` hands out one S3 client per user; a cluster's clients send each request to a random
member that is running and not stopped. Faults (kill -9 and restart, SIGSTOP/SIGCONT) act on
processes this harness started, by PID only.
"""

from __future__ import annotations

import random
import signal
import time
import urllib.request
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from anode_procs import ACCESS_KEY, SECRET_KEY, ClusterProcesses, NodeProcess, s3_client

# Small limits so every size boundary of the design is cheap to reach (see docs/config.md).
CHUNK_SIZE = 128 * 1024
INLINE_MAX = 1024
GC_GRACE = 1.0
DAY_SECONDS = 1.0
LIFECYCLE_INTERVAL = 0.5
STORAGE = (
    f'chunk_size = "{CHUNK_SIZE}"\ninline_max = "{INLINE_MAX}"\n'
    f'gc_grace = "{GC_GRACE}s"\ngc_interval = "0.3s"\n'
    f'lifecycle_day_seconds = "{DAY_SECONDS}s"\n'
    f'lifecycle_interval = "{LIFECYCLE_INTERVAL}s"'
)
CLUSTER = 'repair_interval = "1s"\nscrub_interval = "2s"\n'
TIMEOUTS = {"connect_timeout": 2, "read_timeout": 20}


@dataclass
class Member:
    """A node process and what the harness did to it."""

    proc: NodeProcess
    stopped: bool = False
    ready: bool = True

    @property
    def running(self) -> bool:
        return self.proc.proc is not None and self.proc.proc.poll() is None

    def serving(self) -> bool:
        """Running, not stopped and ready (a restarted member is polled, not waited for)."""
        if not self.running or self.stopped:
            return False
        if not self.ready:
            try:
                with urllib.request.urlopen(self.proc.admin_url + "/ready", timeout=1) as r:
                    self.ready = r.status == 200
            except OSError:
                return False
        return self.ready

    def kill(self) -> None:
        self.cont()
        self.proc.kill()

    def restart(self, *, wait: bool) -> None:
        self.kill()
        self.ready = False
        self.proc.start(wait=wait, timeout=60)
        self.ready = wait

    def stop(self) -> None:
        if self.running and not self.stopped:
            self.proc.proc.send_signal(signal.SIGSTOP)
            self.stopped = True

    def cont(self) -> None:
        if self.stopped and self.running:
            self.proc.proc.send_signal(signal.SIGCONT)
        self.stopped = False


@dataclass
class Target:
    """The system under test: its members and a client per user (access key, secret)."""

    members: list[Member]
    users: dict[str, tuple[str, str]] = field(default_factory=dict)
    rng: random.Random = field(default_factory=random.Random)
    _clients: dict[str, object] = field(default_factory=dict)

    @property
    def clustered(self) -> bool:
        return len(self.members) > 1

    def serving(self) -> list[Member]:
        return [m for m in self.members if m.serving()]

    def client(self, user: str):
        if user not in self._clients:
            access, secret = self.users[user]
            client = s3_client(self.members[0].proc.s3_url, access, secret, **TIMEOUTS)
            if self.clustered:
                client.meta.events.register_first("before-sign.s3", self._route)
            self._clients[user] = client
        return self._clients[user]

    def _route(self, request, **_) -> None:
        live = self.serving() or self.members
        netloc = urlsplit(self.rng.choice(live).proc.s3_url).netloc
        request.url = urlunsplit(urlsplit(request.url)._replace(netloc=netloc))

    def admin(self, path: str, **kwargs):
        for member in self.serving() or self.members:
            status, body = member.proc.admin(path, **kwargs)
            if status < 500:
                return status, body
        return status, body

    def add_user(self, name: str) -> None:
        deadline = time.monotonic() + 60
        while True:
            status, body = self.admin("/users", method="POST", body={"name": name})
            if status in (200, 201):
                self.users[name] = (body["access_key"], body["secret_key"])
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"creating user {name}: {status} {body}")
            time.sleep(0.5)

    def restart_dead(self) -> None:
        """Continue stopped members and start killed ones (not waiting for them)."""
        for member in self.members:
            member.cont()
            if not member.running:
                member.restart(wait=False)

    def heal(self) -> None:
        """Every member running, continued, and serving again."""
        self.restart_dead()
        deadline = time.monotonic() + 90
        while not all(m.serving() for m in self.members):
            if time.monotonic() > deadline:
                raise AssertionError("the cluster did not heal in 90 s")
            time.sleep(0.2)

    def stop(self) -> None:
        for member in self.members:
            member.kill()


def single(root) -> Target:
    node = NodeProcess(root / "data", storage_options=STORAGE).start(timeout=60)
    return Target([Member(node)], users={"root": (ACCESS_KEY, SECRET_KEY)})


def cluster(root) -> Target:
    procs = ClusterProcesses(root, 3, storage_options=STORAGE, extra_cluster=CLUSTER)
    procs.start(timeout=90)
    return Target([Member(p) for p in procs.nodes], users={"root": (ACCESS_KEY, SECRET_KEY)})


def netns_cluster(root, lab) -> Target:
    """A 3-node cluster whose node i runs in `lab`'s namespace i, on its address there."""
    options = [
        {
            "host": lab.address(i),
            "launcher": lab.launcher(i),
            "s3_port": 8080,
            "admin_port": 8081,
            "cluster_port": 9090,
            "data_port": 9091,
        }
        for i in range(3)
    ]
    procs = ClusterProcesses(
        root, 3, storage_options=STORAGE, extra_cluster=CLUSTER, node_options=options
    )
    procs.start(timeout=90)
    return Target([Member(p) for p in procs.nodes], users={"root": (ACCESS_KEY, SECRET_KEY)})
