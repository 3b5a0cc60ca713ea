"""A small Wing & Gong linearizability checker for a set of independent registers (S3 keys).

Each operation is (process, kind, key, value, invoked, completed, result): kind is "put", "get"
or "delete"; a get's result is the value read (None for absent); an operation whose outcome is
unknown (timeout, 503, connection cut) has completed = inf and may have taken effect at any
point after its invocation, or never. Keys are independent, so each key's history is checked on
its own, which keeps the search small.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Op:
    process: int
    kind: str  # "put" | "get" | "delete"
    key: str
    value: Any  # what a put writes
    invoked: float
    completed: float  # math.inf when the outcome is unknown
    result: Any = None  # what a get returned

    @property
    def unknown(self) -> bool:
        return math.isinf(self.completed)


def _apply(state: Any, op: Op) -> tuple[bool, Any]:
    """(is this op's observed result possible from `state`, next state)."""
    if op.kind == "put":
        return True, op.value
    if op.kind == "delete":
        return True, None
    return (op.unknown or op.result == state), state


def check_register(history: list[Op], initial: Any = None) -> bool:
    """True when the history of one register has a linearization (WGL search, memoised)."""
    ops = sorted(history, key=lambda o: o.invoked)
    n = len(ops)
    seen: set[tuple[frozenset[int], Any]] = set()

    def search(done: frozenset[int], state: Any) -> bool:
        if len(done) == n:
            return True
        key = (done, state)
        if key in seen:
            return False
        seen.add(key)
        pending = [i for i in range(n) if i not in done]
        # an op may go next only if it was invoked before every pending op completed
        horizon = min(ops[i].completed for i in pending)
        for i in pending:
            op = ops[i]
            if op.invoked > horizon:
                break
            ok, nxt = _apply(state, op)
            if ok and search(done | {i}, nxt):
                return True
            if op.unknown and search(done | {i}, state):  # it never took effect
                return True
        return False

    return search(frozenset(), initial)


def check(history: list[Op]) -> list[str]:
    """Keys whose histories are not linearizable (empty when all are)."""
    keys = sorted({op.key for op in history})
    return [k for k in keys if not check_register([op for op in history if op.key == k])]
