"""The `Consensus` interface the node proposes metadata commands through, and its local form.

`LocalConsensus` is the single-node implementation: it applies commands to the state machine in
one worker thread, grouping whatever is queued into one durable WAL sync (group commit).
`cluster/raft.py` implements the same interface with Raft.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from ..errors import ErrorCode, Refused
from .commands import Command
from .state import StateMachine


class Consensus(Protocol):
    """What the node needs of a consensus: `cluster/raft.py`'s `RaftConsensus` on a cluster,
    `LocalConsensus` below on a single node (both declare it, so mypy checks them)."""

    def start(self) -> None: ...

    async def propose(self, commands: Sequence[Command]) -> list[Any]:
        """Apply `commands` in log order; their results, a `Rejected` or an exception each."""
        ...

    async def read_barrier(self) -> None:
        """Return once this member has applied everything committed before the call."""
        ...

    async def add_member(self, node_id: str, address: str) -> None: ...

    async def remove_member(self, node_id: str) -> None: ...

    async def transfer_leadership(self, to: str | None = None) -> None: ...

    def status(self) -> dict[str, Any]:
        """role, leader, term, commit_index and, on a cluster, members and more."""
        ...

    async def close(self) -> None: ...


class LocalConsensus(Consensus):
    """Applies commands on this node alone, batching concurrent proposals."""

    MAX_BATCH = 256

    def __init__(self, state_machine: StateMachine, *, node_id: str) -> None:
        self._sm = state_machine
        self._node_id = node_id
        self._queue: asyncio.Queue[tuple[Command, asyncio.Future[Any]]] = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="apply")
        self._task: asyncio.Task[None] | None = None
        self.commits = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="local-consensus")

    async def propose(self, commands: Sequence[Command]) -> list[Any]:
        loop = asyncio.get_running_loop()
        futures = []
        for command in commands:
            future: asyncio.Future[Any] = loop.create_future()
            self._queue.put_nowait((command, future))
            futures.append(future)
        return list(await asyncio.gather(*futures))

    async def read_barrier(self) -> None:
        return None  # every acknowledged command is already applied locally

    async def add_member(self, node_id: str, address: str) -> None:
        raise _single_node()

    async def remove_member(self, node_id: str) -> None:
        raise _single_node()

    async def transfer_leadership(self, to: str | None = None) -> None:
        raise _single_node()

    def status(self) -> dict[str, Any]:
        return {
            "role": "leader",
            "leader": self._node_id,
            "term": 1,
            "commit_index": int(self._sm.db.get(b"S/applied") or 0),
        }

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._executor.shutdown(wait=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                results = await loop.run_in_executor(
                    self._executor, self._sm.apply_many, [cmd for cmd, _ in batch]
                )
            except Exception as exc:  # a failed batch fails every proposal in it
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self.commits += 1
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)


def _single_node() -> Refused:
    return Refused(ErrorCode.NotImplemented, "a single node has no Raft members to change")
