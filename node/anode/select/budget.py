"""The CPU time one query may spend: `check` raises BusyResources once it is used up.

A query runs as steps in worker threads; each step is timed with the thread's own CPU clock
(`time.thread_time`), so waiting for chunk reads or for the GIL costs nothing, and the loops that
can run long (records of a batch, the LIKE matcher) call `check` as they go. Only that bounds a
hostile query: a thread cannot be stopped from outside.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import SelectError


class CpuBudget:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.spent = 0.0  # by finished steps
        self._since: float | None = None  # thread CPU clock when the running step began

    @contextmanager
    def step(self) -> Iterator[None]:
        """Count the CPU time of the enclosed code (one step, in one thread)."""
        self._since = time.thread_time()
        try:
            yield
            self.check()
        finally:
            self.spent += time.thread_time() - self._since
            self._since = None

    def check(self) -> None:
        used = self.spent
        if self._since is not None:
            used += time.thread_time() - self._since
        if used > self.seconds:
            raise SelectError(
                "BusyResources",
                f"The query used more than its CPU budget of {self.seconds:g} s "
                "(select.max_query_cpu); narrow it or raise the limit.",
            )
