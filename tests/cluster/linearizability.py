"""A small Wing–Gong/Lowe linearizability checker for one read/write register.

Operations are (start, end, kind, value): `kind` "w" writes `value`, "r" read `value` (None:
the key did not exist). A write whose outcome is unknown (the client got an error or a timeout)
has `end = inf`: it may take effect at any point after its start, or never. Failed reads carry
no information and are left out by the caller.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Op:
    start: float
    end: float
    kind: str  # "w" or "r"
    value: str | None


def linearizable(ops: list[Op], initial: str | None = None) -> bool:
    """True when some total order of `ops` respects real time and register semantics."""
    ops = sorted(ops, key=lambda o: o.start)
    required = frozenset(i for i, o in enumerate(ops) if o.end != math.inf)
    seen: set[tuple[frozenset[int], str | None]] = set()
    stack: list[tuple[frozenset[int], str | None]] = [(frozenset(), initial)]
    while stack:
        done, value = stack.pop()
        if required <= done:
            return True
        if (done, value) in seen:
            continue
        seen.add((done, value))
        pending = [i for i in range(len(ops)) if i not in done]
        # the next op must have started before every pending op has ended
        horizon = min(ops[i].end for i in pending)
        for i in pending:
            op = ops[i]
            if op.start > horizon:
                break
            if op.kind == "w":
                stack.append((done | {i}, op.value))
            elif op.value == value:
                stack.append((done | {i}, value))
    return False
