"""The scaling state machine, driven against a simulated cluster for every odd start/target
pair: it must converge, change one member at a time, never shrink the StatefulSet under a live
member, and never act while a pod is not Ready or membership is unknown."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import pytest

from anode_operator.scaling import (
    AddMember,
    DecommissionMember,
    Done,
    Hold,
    Member,
    RemoveStaleVoter,
    SetReplicas,
    plan_scale,
)

ODD = [1, 3, 5, 7, 9]


@dataclass
class World:
    """A cluster whose pods become Ready and learners become voters one tick after a step."""

    current: int
    membership_api: bool
    ready: set[int] = field(default_factory=set)
    members: dict[int, bool] = field(default_factory=dict)  # ordinal -> voter
    log: list[object] = field(default_factory=list)
    removed: set[int] = field(default_factory=set)  # decommissioned, pod not yet deleted

    @classmethod
    def running(cls, n: int, *, membership_api: bool) -> World:
        members = {i: True for i in range(n)} if membership_api else {0: True}
        return cls(current=n, membership_api=membership_api, ready=set(range(n)), members=members)

    def plan(self, desired: int):
        return plan_scale(
            desired=desired,
            current=self.current,
            ready=frozenset(self.ready),
            members=tuple(Member(i, v) for i, v in sorted(self.members.items())),
            membership_api=self.membership_api,
        )

    def execute(self, step) -> None:
        self.log.append(step)
        match step:
            case SetReplicas(replicas=n):
                assert abs(n - self.current) == 1, "one pod at a time"
                if n < self.current:
                    assert self.current - 1 not in self.members or not self.membership_api, (
                        "StatefulSet shrank under a live member"
                    )
                    self.ready.discard(self.current - 1)
                    self.removed.discard(self.current - 1)
                self.current = n
            case AddMember(ordinal=i):
                assert i < self.current and i in self.ready
                assert not self.members.get(i, False), "promoting a voter"
                others = [j for j, voter in self.members.items() if not voter and j != i]
                assert not others, "two membership changes at once"
                self.members[i] = True  # promoted (the node waits until it caught up)
            case DecommissionMember(ordinal=i):
                assert i == self.current - 1, "only the highest ordinal is removed"
                assert all(self.members.values()), "removing while a learner catches up"
                del self.members[i]
                self.removed.add(i)
                voters = sum(self.members.values())
                assert voters >= 1

    def tick(self) -> None:
        """Pods become Ready; a new pod registers as a learner (pods start as learners when
        they are not in the rendered voter list)."""
        self.ready |= set(range(self.current))
        if self.membership_api:
            for i in range(self.current):
                if i not in self.removed:
                    self.members.setdefault(i, False)


@pytest.mark.parametrize(
    ("start", "desired", "api"), list(itertools.product(ODD, ODD, [True, False]))
)
def test_converges_one_member_at_a_time(start, desired, api):
    world = World.running(start, membership_api=api)
    for _ in range(10 * (abs(desired - start) + 1)):
        step = world.plan(desired)
        if isinstance(step, Done):
            break
        if not isinstance(step, Hold):
            world.execute(step)
        world.tick()
    else:
        pytest.fail(f"did not converge: {world.log}")
    assert world.current == desired
    if api:
        assert set(world.members) == set(range(desired))
        assert all(world.members.values())
    sizes = [s.replicas for s in world.log if isinstance(s, SetReplicas)]
    assert len(sizes) == abs(desired - start)


def test_scale_up_adds_pod_then_promotes_the_learner_then_grows_again():
    world = World.running(3, membership_api=True)
    assert world.plan(5) == SetReplicas(4)
    world.execute(SetReplicas(4))
    assert world.plan(5) == Hold("PodsNotReady", "waiting for pod 3 to be Ready before scaling")
    world.ready.add(3)
    world.members[3] = False  # joined as a learner
    assert world.plan(5) == AddMember(3)
    world.execute(AddMember(3))
    assert world.plan(5) == SetReplicas(5)


def test_a_ready_pod_not_yet_registered_is_promoted_too():
    step = plan_scale(
        desired=5,
        current=4,
        ready=frozenset(range(4)),
        members=tuple(Member(i, True) for i in range(3)),
        membership_api=True,
    )
    assert step == AddMember(3)


def test_scale_down_drains_before_shrinking():
    world = World.running(5, membership_api=True)
    assert world.plan(3) == DecommissionMember(4)
    world.execute(DecommissionMember(4))
    assert world.plan(3) == SetReplicas(4)


def test_nothing_moves_while_a_pod_is_not_ready():
    world = World.running(5, membership_api=True)
    world.ready.discard(2)
    for desired in (3, 7):
        step = world.plan(desired)
        assert isinstance(step, Hold) and step.reason == "PodsNotReady"


def test_nothing_moves_when_no_node_answers():
    step = plan_scale(
        desired=5, current=3, ready=frozenset({0, 1, 2}), members=None, membership_api=True
    )
    assert step == Hold(
        "MembershipUnknown", "no node answered the admin API; not changing membership"
    )
    step = plan_scale(
        desired=1, current=3, ready=frozenset({0, 1, 2}), members=None, membership_api=False
    )
    assert isinstance(step, Hold)


def test_without_membership_api_the_statefulset_still_moves_one_pod_at_a_time():
    world = World.running(3, membership_api=False)
    assert world.plan(5) == SetReplicas(4)
    assert world.plan(1) == SetReplicas(2)


def test_at_target_a_ready_pod_missing_from_membership_is_added():
    step = plan_scale(
        desired=3,
        current=3,
        ready=frozenset({0, 1, 2}),
        members=(Member(0, True), Member(1, True)),
        membership_api=True,
    )
    assert step == AddMember(2)


def test_at_target_without_membership_api_is_done():
    step = plan_scale(
        desired=3,
        current=3,
        ready=frozenset(),
        members=None,
        membership_api=False,
    )
    assert step == Done()


@pytest.mark.parametrize("desired", [3, 5, 1])
def test_a_member_rejoining_on_a_new_volume_loses_its_voter_entry_first_then_is_promoted(desired):
    """Pod 1 lost its volume: its node rejoins as a learner and has caught up, while the leader
    still lists it as a voter. Its stale entry goes first (whatever the target), then the
    learner is promoted as any other."""
    voters = (Member(0, True), Member(1, True), Member(2, True))
    step = plan_scale(
        desired=desired,
        current=3,
        ready=frozenset({0, 1, 2}),
        members=voters,
        membership_api=True,
        rejoining=frozenset({1}),
    )
    assert step == RemoveStaleVoter(1)
    # removed: the node reports `removed`, so it is no longer rejoining; the learner is added
    step = plan_scale(
        desired=3,
        current=3,
        ready=frozenset({0, 1, 2}),
        members=(Member(0, True), Member(2, True)),
        membership_api=True,
    )
    assert step == AddMember(1)


def test_a_rejoining_member_that_is_no_voter_is_left_to_the_learner_path():
    step = plan_scale(
        desired=3,
        current=3,
        ready=frozenset({0, 1, 2}),
        members=(Member(0, True), Member(1, False), Member(2, True)),
        membership_api=True,
        rejoining=frozenset({1}),
    )
    assert step == AddMember(1)
