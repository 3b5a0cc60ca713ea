"""The checker itself must catch violations, or the cluster test proves nothing."""

from __future__ import annotations

import math

from history_check import Op, check, check_register


def op(kind, value=None, t0=0.0, t1=1.0, result=None, key="k", p=0):
    return Op(p, kind, key, value, t0, t1, result)


def test_sequential_history_is_linearizable():
    h = [op("put", "a", 0, 1), op("get", None, 2, 3, result="a"), op("delete", None, 4, 5),
         op("get", None, 6, 7, result=None)]
    assert check_register(h)


def test_stale_read_after_a_completed_write_is_caught():
    h = [op("put", "a", 0, 1), op("put", "b", 2, 3), op("get", None, 4, 5, result="a")]
    assert not check_register(h)


def test_concurrent_write_may_be_seen_or_not():
    h = [op("put", "a", 0, 1), op("put", "b", 2, 6, p=1), op("get", None, 3, 4, result="a"),
         op("get", None, 5, 7, result="b", p=2)]
    assert check_register(h)


def test_read_going_back_in_time_is_caught():
    h = [op("put", "a", 0, 1), op("put", "b", 2, 10, p=1), op("get", None, 3, 4, result="b"),
         op("get", None, 5, 6, result="a", p=2)]
    assert not check_register(h)


def test_unknown_write_may_apply_late_or_never():
    h = [op("put", "a", 0, 1), op("put", "b", 2, math.inf, p=1),
         op("get", None, 3, 4, result="a"), op("get", None, 5, 6, result="b")]
    assert check_register(h)
    h2 = [op("put", "a", 0, 1), op("put", "b", 2, math.inf, p=1),
          op("get", None, 3, 4, result="c")]
    assert not check_register(h2)


def test_keys_are_checked_independently():
    h = [op("put", "a", 0, 1, key="x"), op("get", None, 2, 3, result="a", key="x"),
         op("put", "a", 0, 1, key="y"), op("get", None, 2, 3, result=None, key="y")]
    assert check(h) == ["y"]
