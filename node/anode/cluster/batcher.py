"""Group concurrent proposals into one Raft log entry, and give each its own results back.

A Raft round trip (two fsyncs and a network hop) costs the same for one command as for hundreds,
so throughput comes from putting every proposal that arrives while earlier entries are in flight
into the next entry. At most `max_inflight` entries are outstanding; whatever queues meanwhile
becomes the next entry. Each proposal has a deadline: when no commit arrives in time it fails
with `NoQuorum` instead of hanging (an isolated node has no leader, or a leader with no majority).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pysyncobj import FAIL_REASON

from .errors import LeaderChanged, NoQuorum

# submit(encoded_commands, callback) hands one log entry to the Raft thread; the callback is
# called there with (results, fail_reason).
Submit = Callable[[list[bytes], Callable[[Any, int], None]], None]

_RETRY_DELAY = 0.05
# Never sent to a leader: safe to resubmit until the deadline.
_RETRYABLE = {FAIL_REASON.MISSING_LEADER, FAIL_REASON.QUEUE_FULL}


@dataclass
class _Proposal:
    encoded: list[bytes]
    future: asyncio.Future[list[Any]]
    deadline: float
    sent: bool = field(default=False)


class Batcher:
    """Queues proposals on the event loop and submits them as grouped log entries."""

    def __init__(
        self,
        *,
        submit: Submit,
        timeout: float,
        max_inflight: int = 2,
        max_commands: int = 1024,
        max_bytes: int = 4 << 20,
    ) -> None:
        self._submit = submit
        self._timeout = timeout
        self._max_inflight = max_inflight
        self._max_commands = max_commands
        self._max_bytes = max_bytes
        self._queue: deque[_Proposal] = deque()
        self._inflight = 0
        self._sent: set[asyncio.Future[list[Any]]] = set()  # futures of entries in flight
        self._loop: asyncio.AbstractEventLoop | None = None
        self.entries = 0  # log entries submitted
        self.commands = 0  # commands in them

    async def propose(self, encoded: list[bytes]) -> list[Any]:
        """Results of `encoded` once committed and applied here; `NoQuorum` after the timeout."""
        loop = self._loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Any]] = loop.create_future()
        self._queue.append(_Proposal(encoded, future, time.monotonic() + self._timeout))
        self._pump()
        try:
            return await asyncio.wait_for(asyncio.shield(future), self._timeout)
        except TimeoutError:
            future.cancel()
            raise NoQuorum(f"not committed within {self._timeout:.1f}s") from None

    def fail_all(self, exc: Exception) -> None:
        """Fail every queued and in-flight proposal (on close)."""
        futures = [p.future for p in self._queue] + list(self._sent)
        self._queue.clear()
        self._sent.clear()
        for future in futures:
            if not future.done():
                future.set_exception(exc)

    def _pump(self) -> None:
        """Submit queued proposals as entries while fewer than `max_inflight` are outstanding."""
        while self._queue and self._inflight < self._max_inflight:
            batch = self._take()
            if batch:
                self._send(batch)

    def _take(self) -> list[_Proposal]:
        batch: list[_Proposal] = []
        commands = size = 0
        now = time.monotonic()
        while self._queue:
            proposal = self._queue[0]
            if proposal.future.done() or proposal.deadline < now:
                self._queue.popleft()  # timed out already: propose() has raised
                continue
            grown = commands + len(proposal.encoded)
            grown_size = size + sum(len(e) for e in proposal.encoded)
            if batch and (grown > self._max_commands or grown_size > self._max_bytes):
                break
            self._queue.popleft()
            batch.append(proposal)
            commands, size = grown, grown_size
        return batch

    def _send(self, batch: list[_Proposal]) -> None:
        assert self._loop is not None
        loop = self._loop
        flat = [e for proposal in batch for e in proposal.encoded]
        self._sent.update(p.future for p in batch)
        self._inflight += 1
        self.entries += 1
        self.commands += len(flat)
        state = {"open": True}

        def release() -> None:
            if state["open"]:
                state["open"] = False
                self._sent.difference_update(p.future for p in batch)
                self._inflight -= 1
                self._pump()

        # An entry appended by a leader that then lost its majority may never be answered:
        # free its slot at the deadline so later proposals are not stuck behind it.
        timer = loop.call_later(self._timeout, release)

        def on_result(results: Any, reason: int) -> None:  # Raft thread
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting
                loop.call_soon_threadsafe(done, results, reason)

        def done(results: Any, reason: int) -> None:
            timer.cancel()
            release()
            self._settle(batch, results, reason)

        self._submit(flat, on_result)

    def _settle(self, batch: list[_Proposal], results: Any, reason: int) -> None:
        if reason == FAIL_REASON.SUCCESS:
            offset = 0
            for proposal in batch:
                mine = results[offset : offset + len(proposal.encoded)]
                offset += len(proposal.encoded)
                if proposal.future.done():
                    continue
                error = next((r for r in mine if isinstance(r, BaseException)), None)
                if error is not None:
                    proposal.future.set_exception(error)
                else:
                    proposal.future.set_result(mine)
            return
        if reason in _RETRYABLE:
            assert self._loop is not None
            self._loop.call_later(_RETRY_DELAY, self._requeue, batch)
            return
        exc = LeaderChanged(f"proposal failed: {_REASONS.get(reason, reason)}")
        for proposal in batch:
            if not proposal.future.done():
                proposal.future.set_exception(exc)

    def _requeue(self, batch: list[_Proposal]) -> None:
        self._queue.extendleft(reversed([p for p in batch if not p.future.done()]))
        self._pump()


_REASONS = {value: name for name, value in vars(FAIL_REASON).items() if not name.startswith("_")}
