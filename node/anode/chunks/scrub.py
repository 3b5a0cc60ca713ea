"""Damaged chunks: found by any read or by the scrubber, repaired at once where a healthy copy
exists, and otherwise kept on a list that `anode admin damaged` shows with the objects they
belong to (so an unreadable object is reported before someone tries to read it).

`store.on_corrupt` (called from worker threads whenever a chunk fails verification) lands in
`found`; `fetch` (a cluster's `Replicator.fetch_copy`) replaces the local copy with a verified
one from another holder. A single node has no other copy: its damaged chunks stay listed until
the objects using them are deleted (and the collector removes the file) or the file is good
again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from .store import ChunkCorrupt, ChunkMissing, ChunkStore

log = logging.getLogger(__name__)


class Scrubber:
    def __init__(
        self, store: ChunkStore, fetch: Callable[[bytes], Awaitable[bool]] | None = None
    ) -> None:
        self.store = store
        self.fetch = fetch
        self.damaged: dict[bytes, float] = {}  # digest -> when first found, not repaired
        self.corrupt_found = 0
        self.rounds = 0  # scrub rounds completed (metrics)
        self.verified = 0  # chunks re-hashed and found good (metrics)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running: dict[bytes, asyncio.Future[bool]] = {}

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start taking reports (`store.on_corrupt`) from any thread."""
        self._loop = loop
        self.store.on_corrupt = self.found

    def found(self, digest: bytes) -> None:
        """A read found this chunk damaged here: repair it now (thread-safe, returns at once)."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.repair, digest)

    def repair(self, digest: bytes) -> asyncio.Future[bool]:
        """Replace this node's damaged copy with a verified one (one attempt at a time per
        chunk); the future says whether a good copy could be had."""
        running = self._running.get(digest)
        if running is None:
            running = self._running[digest] = asyncio.ensure_future(self._repair(digest))
            running.add_done_callback(lambda _: self._running.pop(digest, None))
        return running

    async def _repair(self, digest: bytes) -> bool:
        self.corrupt_found += 1
        if self.fetch is not None and await self.fetch(digest):
            self.damaged.pop(digest, None)
            log.warning("chunk %s was damaged here; replaced by a good copy", digest.hex())
            return True
        if digest not in self.damaged:
            self.damaged[digest] = time.time()
            log.error("chunk %s is damaged here and no good copy was found", digest.hex())
        return False

    async def scrub_round(self, *, pause: float = 0.0) -> int:
        """Re-hash every local chunk (from the disk, not the cache); repair or list the bad
        ones; forget listed chunks that are gone or good again. Returns how many were bad."""
        bad = 0
        for digest, _ in await asyncio.to_thread(lambda: list(self.store.all_chunks())):
            try:
                await asyncio.to_thread(self.store.read_verified, digest, cached=False)
            except ChunkCorrupt:
                bad += 1
                await self.repair(digest)
                continue
            except ChunkMissing:
                pass
            else:
                self.verified += 1
            self.damaged.pop(digest, None)
            if pause:
                await asyncio.sleep(pause)
        for digest in list(self.damaged):
            if not await asyncio.to_thread(self.store.exists, digest):
                self.damaged.pop(digest, None)  # collected: nothing refers to it any more
        self.rounds += 1
        return bad

    async def run(self, *, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.scrub_round()
            except Exception:  # the scrubber must outlive a bad round
                log.exception("scrub round failed")
