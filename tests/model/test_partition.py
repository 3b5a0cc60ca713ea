"""Real network partitions (network namespaces, iptables inside them): a minority and a majority
cut off from each other at once, and healed, while clients keep working through every member.

Skipped, with the reason, where namespaces cannot be made (not root, no `ip netns`)."""

from __future__ import annotations

import functools
import hashlib
import os
import time

import pytest
from anode_procs import s3_client
from botocore.exceptions import BotoCoreError, ClientError
from history_check import check
from hypothesis import strategies as st
from hypothesis.stateful import initialize, precondition, rule
from model_cluster import ClusterMachine, run_history
from model_netns import Lab, unavailable_reason
from model_requests import call
from model_run import run_machine
from model_targets import Member, Target, netns_cluster

pytestmark = pytest.mark.skipif(bool(unavailable_reason()), reason=unavailable_reason() or "")


@pytest.fixture(scope="module")
def lab():
    made = Lab(3).open()
    yield made
    made.close()


@pytest.fixture(scope="module")
def netns_target(lab, tmp_path_factory):
    target = netns_cluster(tmp_path_factory.mktemp("netns"), lab)
    target.add_user("alice")
    yield target
    target.stop()  # before the namespaces go


def wait_serving(target: Target, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if call(target, "root", "list_buckets").ok:
                return
        except Exception:
            pass
        time.sleep(0.5)
    raise AssertionError("the cluster did not serve again after healing")


def leader_of(target: Target) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for i, member in enumerate(target.members):
            status, doc = member.proc.admin("/status")
            if status == 200 and isinstance(doc, dict) and doc.get("role") == "leader":
                return i
        time.sleep(0.3)
    raise AssertionError("no leader")


def answers_without_quorum(member: Member) -> str | None:
    """What a PUT on a cut-off member answered, if it answered as though it had a quorum."""
    client = s3_client(member.proc.s3_url, connect_timeout=2, read_timeout=30)
    try:
        answer = client.put_object(Bucket="part", Key="minority", Body=b"must not commit")
    except ClientError as e:
        status = e.response["ResponseMetadata"]["HTTPStatusCode"]
        return None if status == 503 else f"{status} {e.response['Error']['Code']}"
    except BotoCoreError:
        return None  # a timeout is no acknowledgement either
    return f"acknowledged: {answer['ResponseMetadata']['HTTPStatusCode']}"


@pytest.mark.parametrize("side", ["leader", "follower"])
@pytest.mark.timeout(900)
def test_partition_minority_refuses_majority_serves(netns_target, lab, side):
    """One member (the leader, or a follower) is cut off from the two others while clients work
    through all three: the cut member acknowledges nothing, the majority elects a leader if it
    must and serves, and after healing every member has every acknowledged object and the
    history of the contended keys is linearizable."""
    target = netns_target
    wait_serving(target)
    call(target, "root", "create_bucket", Bucket="part")
    leader = leader_of(target)
    cut = leader if side == "leader" else (leader + 1) % 3
    acked: dict[str, bytes] = {}

    def partition_and_probe() -> None:
        lab.partition([cut])
        time.sleep(4)  # the cut member notices it has lost its quorum
        assert answers_without_quorum(target.members[cut]) is None
        majority = [m for i, m in enumerate(target.members) if i != cut]
        deadline = time.monotonic() + 30
        while True:  # the majority serves (a new leader first, when the leader was cut)
            try:
                body = os.urandom(70_000)
                client = s3_client(majority[0].proc.s3_url, connect_timeout=2, read_timeout=30)
                client.put_object(Bucket="part", Key="during", Body=body)
                acked["during"] = hashlib.sha256(body).digest()
                break
            except (ClientError, BotoCoreError):
                assert time.monotonic() < deadline, "the majority did not serve"
                time.sleep(0.5)

    try:
        history = run_history(
            functools.partial(call, target),
            "part",
            7,
            seconds=8.0,
            fault=partition_and_probe,
            keys=[f"h/{side}/0", f"h/{side}/1"],
        )
    finally:
        lab.heal()
    wait_serving(target)
    assert check(history) == [], "the contended keys' history is not linearizable"
    assert any(not op.unknown for op in history if op.kind == "put")
    for member in target.members:  # every member, including the healed one, serves it all
        client = s3_client(member.proc.s3_url, connect_timeout=2, read_timeout=30)
        deadline = time.monotonic() + 60
        while True:
            try:
                got = client.get_object(Bucket="part", Key="during")["Body"].read()
                break
            except (ClientError, BotoCoreError):
                assert time.monotonic() < deadline
                time.sleep(0.5)
        assert hashlib.sha256(got).digest() == acked["during"]
        with pytest.raises(ClientError) as missing:
            client.get_object(Bucket="part", Key="minority")
        assert missing.value.response["Error"]["Code"] == "NoSuchKey"


class Partitioned(ClusterMachine):
    """The cluster model with one more fault: a real partition of one member from the others."""

    lab: Lab

    def __init__(self) -> None:
        super().__init__()
        self.partitioned = False

    @initialize(which=st.sampled_from(["leader", 0, 1, 2]))
    def partition_first(self, which) -> None:
        """Every example starts cut (bucket creation waits for the majority)."""
        self.partition(which)

    @precondition(lambda self: self.can_fault() and not self.partitioned)
    @rule(which=st.sampled_from(["leader", 0, 1, 2]))
    def partition(self, which) -> None:
        self.fault("partition")
        leader = self.leader()
        index = self.target.members.index(leader) if which == "leader" and leader else 0
        self.lab.partition([index if which == "leader" else which])
        self.partitioned = True

    @precondition(lambda self: self.partitioned)
    @rule()
    def heal(self) -> None:
        self.lab.heal()
        self.partitioned = False

    def teardown(self) -> None:
        if self.partitioned:
            self.heal()
        super().teardown()


@pytest.mark.timeout(1800)  # a failure is shrunk for up to 5 minutes
def test_cluster_model_under_partitions(netns_target, lab, model_seed):
    Partitioned.use(netns_target)
    Partitioned.lab = lab
    wait_serving(netns_target)
    run_machine(Partitioned, model_seed, 0.015)
