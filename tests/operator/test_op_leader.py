"""The leader election rule (pure): who may write the Lease, on the standby's own clock."""

from __future__ import annotations

from anode_operator.leader import Decision, LeaseView, decide


def lease(holder: str, duration: float = 15.0, version: str = "7") -> LeaseView:
    return LeaseView(holder=holder, duration=duration, version=version)


def test_a_missing_or_released_lease_is_taken_at_once():
    assert decide(None, me="a", seen_since=0, now=0) is Decision.TAKE
    assert decide(lease(""), me="a", seen_since=100, now=100) is Decision.TAKE


def test_the_holder_renews_its_own_lease():
    assert decide(lease("a"), me="a", seen_since=0, now=1000) is Decision.TAKE


def test_a_live_lease_of_another_keeps_the_standby_waiting_until_it_expires():
    held = lease("b", duration=15)
    assert decide(held, me="a", seen_since=100, now=100) is Decision.WAIT
    assert decide(held, me="a", seen_since=100, now=115) is Decision.WAIT  # not yet past
    assert decide(held, me="a", seen_since=100, now=115.1) is Decision.TAKE


def test_expiry_counts_from_when_this_standby_saw_the_version_not_from_the_leaders_clock():
    # the caller restarts seen_since whenever the resourceVersion changes (every renewal), so a
    # leader that keeps renewing is never taken over, whatever the clocks say
    assert decide(lease("b", version="8"), me="a", seen_since=200, now=210) is Decision.WAIT
