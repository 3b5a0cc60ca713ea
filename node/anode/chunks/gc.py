"""The chunk collector: deletes chunk files no object version or part refers to.

Two sources of garbage:
- chunks whose reference count reached zero (the state machine leaves a `G/` marker), and
- orphans: chunk or temp files written by a PUT that failed or crashed before its metadata commit.
Both are deleted only after `grace` seconds. The check "unpinned and unreferenced" and the unlink
happen together in the event loop with no await between them, and writers pin a chunk (in the
loop) before renaming it into place, so a concurrent PUT that dedups onto a chunk can never lose it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from ..meta.commands import ForgetGarbage
from ..meta.consensus import Consensus
from ..meta.layout import CODED_MARKER
from ..meta.store import MetaStore
from .store import ChunkStore

log = logging.getLogger(__name__)

# How long a coded chunk no version refers to yet is assumed to belong to a write in flight
# (a body of up to 5 GiB still arriving); an abandoned write's fragments go after that.
IN_FLIGHT = 6 * 3600.0


class Collector:
    def __init__(
        self, *, chunks: ChunkStore, meta: MetaStore, consensus: Consensus, grace: float
    ) -> None:
        self.chunks = chunks
        self.meta = meta
        self.consensus = consensus
        self.grace = grace
        self._first_seen: dict[bytes, float] = {}
        self.deleted = 0

    def _collectable(self, digest: bytes) -> bool:
        return not self.chunks.pins.get(digest) and self.meta.chunk_refs(digest) == 0

    def _recorded(self, digest: bytes) -> bool:
        return self.meta.fragment_owner(digest) is not None

    def _maybe_in_flight(self, digest: bytes) -> bool:
        """A chunk coded by a write that has not committed: it may still be receiving its body
        (its pin is on the writer only), so it is left alone for `IN_FLIGHT` after coding."""
        coded = self.meta.coded(digest)
        return coded is not None and time.time() - coded.get("at", 0.0) < max(IN_FLIGHT, self.grace)

    def _fragments(self, digest: bytes) -> list[bytes]:
        """An erasure-coded chunk's fragments (those here go with it; the other members' are
        orphans once ForgetGarbage drops the record: their sweeps remove them)."""
        coded = self.meta.coded(digest)
        return list(coded["digests"]) if coded is not None else []

    def _recently_written(self, digest: bytes) -> bool:
        """A fresh file may be a copy another node just pushed for a write in flight (its pins
        are on that node, not here): leave it for at least the grace period."""
        try:
            return self.chunks.path(digest).stat().st_mtime > time.time() - self.grace
        except FileNotFoundError:
            return False

    async def collect_released(self) -> int:
        """Delete chunks whose count reached zero at least `grace` seconds ago (as seen here)."""
        now = time.monotonic()
        forget: list[bytes] = []
        deleted = 0
        for digest, marker in list(self.meta.garbage_markers()):
            first = self._first_seen.setdefault(digest, now)
            if self.meta.chunk_refs(digest) > 0:
                forget.append(digest)  # referenced again: no longer garbage
            elif marker == CODED_MARKER and self._maybe_in_flight(digest):
                continue
            elif (
                now - first >= self.grace
                and self._collectable(digest)
                and not any(map(self._recently_written, [digest, *self._fragments(digest)]))
            ):
                # no await between the check and the unlinks
                for name in [digest, *self._fragments(digest)]:
                    self.chunks.delete(name)
                deleted += 1
                forget.append(digest)
        if forget:
            await self.consensus.propose([ForgetGarbage(tuple(forget))])
            for digest in forget:
                self._first_seen.pop(digest, None)
        self.deleted += deleted
        return deleted

    async def sweep_orphans(self, *, startup: bool = False) -> int:
        """Delete chunk files nothing refers to, and stale temp files. Costs a directory walk."""
        cutoff = time.time() - self.grace
        files = await asyncio.to_thread(lambda: list(self.chunks.all_chunks()))
        deleted = 0
        for i, (digest, mtime) in enumerate(files):
            # a recorded fragment goes with its chunk (collect_released), never as an orphan:
            # a write still receiving its body may have coded it long ago
            if mtime < cutoff and self._collectable(digest) and not self._recorded(digest):
                self.chunks.delete(digest)
                deleted += 1
            if i % 1000 == 999:
                await asyncio.sleep(0)
        await asyncio.to_thread(self.chunks.drop_stray_tables)
        temps: list[tuple[Path, float]] = await asyncio.to_thread(
            lambda: list(self.chunks.temp_files())
        )
        for path, mtime in temps:
            # At start-up no write is in flight, so every temp file is a crash leftover.
            if startup or mtime < cutoff:
                path.unlink(missing_ok=True)
        self.deleted += deleted
        return deleted

    async def run(self, *, interval: float) -> None:
        sweeps = 0
        while True:
            await asyncio.sleep(interval)
            try:
                await self.collect_released()
                sweeps += 1
                if sweeps % 6 == 0:
                    await self.sweep_orphans()
            except Exception:  # the collector must outlive a bad round
                log.exception("chunk collection round failed")
