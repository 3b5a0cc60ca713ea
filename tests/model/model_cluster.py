"""Cluster rules for the model harness: faults on members between steps (kill -9 of any member
or the leader, SIGSTOP/SIGCONT, lost chunk files, network partitions where the target has
them) and bursts of concurrent operations on a few keys whose history must be linearizable."""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable

from history_check import Op, check
from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule
from model_machine import StoreMachine
from model_requests import STATS, Answer, Unavailable
from model_targets import Member


class ClusterMachine(StoreMachine):
    """Requests go to random serving members; at most `max_faults` member faults per example,
    each undone by a later step or at the end of the example."""

    unknown_grace = 60.0
    expiry_slack = 15.0
    max_faults = 1

    def __init__(self) -> None:
        super().__init__()
        self.stopped: Member | None = None
        self.bursts = 0

    def leader(self) -> Member | None:
        for member in self.target.serving():
            status, doc = member.proc.admin("/status")
            if status == 200 and isinstance(doc, dict) and doc.get("role") == "leader":
                return member
        return None

    def wait_for_all(self, timeout: float = 90) -> None:
        self.target.restart_dead()
        deadline = time.monotonic() + timeout
        while not all(m.serving() for m in self.target.members):
            assert time.monotonic() < deadline, "a restarted member did not serve in time"
            time.sleep(0.2)

    def can_fault(self) -> bool:
        return self.faults < self.max_faults and self.stopped is None

    @precondition(lambda self: self.can_fault())
    @rule(which=st.sampled_from(["leader", 0, 1, 2]))
    def kill_member(self, which) -> None:
        """kill -9 of a member (the leader, or one by number) and its restart, not waited for:
        requests go to the others while it starts and catches up."""
        self.fault("kill_member")
        member = self.leader() if which == "leader" else self.target.members[which]
        if member is None:
            member = self.target.members[0]
        self.wait_for_all()  # never two down at once: an earlier victim serves again first
        member.kill()
        member.restart(wait=False)

    @precondition(lambda self: self.can_fault())
    @rule(which=st.sampled_from(["leader", 0, 1, 2]))
    def stop_member(self, which) -> None:
        """SIGSTOP: the member is frozen (a hung process, or one cut off) until `continue`."""
        self.fault("stop_member")
        member = self.leader() if which == "leader" else self.target.members[which]
        self.stopped = member or self.target.members[0]
        self.stopped.stop()

    @precondition(lambda self: self.stopped is not None)
    @rule()
    def continue_member(self) -> None:
        self.stopped.cont()
        self.stopped = None

    @precondition(lambda self: self.faults < self.max_faults)
    @rule(which=st.integers(0, 2), pick=st.integers(0, 1 << 16))
    def lose_chunk_file(self, which: int, pick: int) -> None:
        """A chunk file vanishes from one member: reads go to another holder, repair restores."""
        self.fault("lose_chunk_file")
        files = sorted(self.target.members[which].proc.chunk_files())
        if files:
            files[pick % len(files)].unlink(missing_ok=True)

    @rule(fault=st.sampled_from(["none", "kill", "stop"]), seed=st.integers(0, 1 << 16))
    def concurrent_history(self, fault: str, seed: int) -> None:
        """Clients put, get and delete a few keys at once through random members while a fault
        strikes; what they saw must be linearizable (tests/node/history_check.py)."""
        if fault != "none" and not self.can_fault():
            fault = "none"
        STATS["concurrent_history"] += 1
        bucket = self.bucket(0).name
        self.bursts += 1  # fresh keys: a burst's history starts from nothing
        keys = [f"h/{self.bursts}/{k}" for k in range(2)]
        history = run_history(
            self.call, bucket, seed, seconds=1.5, fault=self.fault_action(fault), keys=keys
        )
        if self.stopped is not None:
            self.continue_member()
        STATS["history_puts_acknowledged"] += sum(
            not op.unknown for op in history if op.kind == "put"
        )
        STATS["history_ops"] += len(history)
        assert check(history) == [], f"not linearizable: {history}"

    def fault_action(self, fault: str) -> Callable[[], None]:
        if fault == "kill":
            return lambda: self.kill_member("leader")
        if fault == "stop":
            return lambda: self.stop_member("leader")
        return lambda: None

    def teardown(self) -> None:
        if self.stopped is not None:
            self.continue_member()
        super().teardown()


def run_history(
    call: Callable[..., Answer],
    bucket: str,
    seed: int,
    *,
    seconds: float,
    fault: Callable[[], None],
    keys: list[str],
    workers: int = 4,
) -> list[Op]:
    """`workers` threads doing PUT/GET/DELETE on `keys` (new ones) for `seconds`, `fault` run in
    the middle; the history with invocation and completion times (inf: outcome unknown)."""
    history: list[Op] = []
    lock = threading.Lock()
    stop = threading.Event()

    def work(worker: int) -> None:
        rng = random.Random(seed * 100 + worker)
        i = 0
        while not stop.is_set():
            i += 1
            key, kind = rng.choice(keys), rng.choice(["put", "put", "get", "delete"])
            value = f"{worker}-{i}"
            started = time.monotonic()
            result = None
            try:
                if kind == "put":
                    call("root", "put_object", Bucket=bucket, Key=key, Body=value.encode())
                elif kind == "delete":
                    call("root", "delete_object", Bucket=bucket, Key=key)
                else:
                    got = call("root", "get_object", Bucket=bucket, Key=key)
                    assert got.ok or got.code == "NoSuchKey", got
                    result = got.body.decode() if got.ok else None
                ended = time.monotonic()
            except Unavailable:
                if kind == "get":
                    continue  # a failed read tells nothing
                ended = math.inf  # a write's outcome is unknown: it may still take effect
            with lock:
                history.append(
                    Op(worker, kind, key, value if kind == "put" else None, started, ended, result)
                )

    threads = [threading.Thread(target=work, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    time.sleep(seconds / 3)
    fault()
    time.sleep(2 * seconds / 3)
    stop.set()
    for thread in threads:
        thread.join(120)
    return history
