"""Erasure-coded chunks in a running cluster: read through fragments, fragments kept whole.

The metadata says which chunks are coded (`RecordCoded`: the chunk id -> its `Coded` record);
everything else about a chunk is as for a replicated one (references, dedup on the chunk id,
encryption before coding). This module holds what the node needs on top of `Fragments`:

- `CodedFirst`, the `ChunkReader` that reads coded chunks through their fragments and every
  other chunk from the replicated files; fewer than k verified fragments raise `Unrecoverable`
  (the S3 layer answers 503), never bytes that were not verified;
- `FragmentKeeper`, pull-based like `Replicator.repair_round`: every member checks the fragment
  the current ranking gives it and restores it (fetching k others and re-coding) when it lacks
  it, drops fragments it holds but should not once their rightful member has them, and
  rebuilds a damaged fragment the store or the scrubber found.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

from ..internode.client import PeerError
from . import erasure
from .erasure import Coded, Unrecoverable
from .fragments import Fragments
from .reader import ChunkReader
from .store import ChunkStore

log = logging.getLogger(__name__)
PARALLEL = 8  # chunks a keeper round works on at once


class CodedFirst:
    """A `ChunkReader`: coded chunks from their fragments, the others from `files`."""

    def __init__(
        self, lookup: Callable[[bytes], Coded | None], fragments: Fragments, files: ChunkReader
    ) -> None:
        self.lookup = lookup
        self.fragments = fragments
        self.files = files
        self.unrecoverable = 0  # reads refused: fewer than k verified fragments (metrics)
        self.loop: asyncio.AbstractEventLoop | None = None  # for `read_sync` (set at start)

    async def read(self, digest: bytes, offset: int, length: int, whole: bool) -> bytes:
        coded = self.lookup(digest)
        if coded is None:
            return await self.files.read(digest, offset, length, whole)
        try:
            return await self.fragments.read(coded, digest, offset, length)
        except Unrecoverable:
            self.unrecoverable += 1
            log.error("coded chunk %s is unreadable now", digest.hex(), exc_info=True)
            raise

    def read_sync(self, digest: bytes, offset: int, length: int, whole: bool) -> bytes:
        """For worker threads (S3 Select, small GETs): fragments are fetched by the event loop."""
        if self.lookup(digest) is None:
            return self.files.read_sync(digest, offset, length, whole)
        assert self.loop is not None, "CodedFirst.loop is set when the node starts"
        future = asyncio.run_coroutine_threadsafe(
            self.read(digest, offset, length, whole), self.loop
        )
        return future.result(timeout=60)

    def read_local(self, digest: bytes, offset: int, length: int, whole: bool) -> bytes | None:
        if self.lookup(digest) is not None:
            return None  # fragments are on several members: the ordinary path
        return self.files.read_local(digest, offset, length, whole)


class FragmentKeeper:
    """Keeps every coded chunk at k + m fragments on its ranked members (see module doc)."""

    def __init__(
        self,
        *,
        node_id: str,
        fragments: Fragments,
        store: ChunkStore,
        owner: Callable[[bytes], tuple[bytes, Coded] | None],
    ) -> None:
        self.node_id = node_id
        self.fragments = fragments
        self.store = store
        self.owner = owner  # fragment digest -> (chunk id, coded) if it is a live fragment
        self.restored = 0
        self.dropped = 0

    async def round(self, coded_chunks: Iterable[tuple[bytes, dict[str, Any]]]) -> None:
        """Every chunk checked, `PARALLEL` at a time (a restore waits on k members)."""
        batch: list[tuple[bytes, dict[str, Any]]] = []
        for item in coded_chunks:
            batch.append(item)
            if len(batch) == PARALLEL:
                await asyncio.gather(*(self._keep_logged(*entry) for entry in batch))
                batch = []
        await asyncio.gather(*(self._keep_logged(*entry) for entry in batch))

    async def _keep_logged(self, chunk_id: bytes, record: dict[str, Any]) -> None:
        try:
            await self._keep(chunk_id, Coded.from_record(record))
        except Exception:  # one bad chunk must not stop the round
            log.exception("keeping the fragments of chunk %s failed", chunk_id.hex())

    async def _keep(self, chunk_id: bytes, coded: Coded) -> None:
        holders = self.fragments.holders(chunk_id, coded.scheme.width)
        if len(holders) < coded.scheme.width:
            return  # fewer than k + m live members: the ranking would misplace fragments; wait
        ids = [m.id for m in holders]
        index = ids.index(self.node_id) if self.node_id in ids else None
        if index is not None and not await asyncio.to_thread(
            self.store.exists, coded.digests[index]
        ):
            await self.restore(chunk_id, coded, index)
        for other, digest in enumerate(coded.digests):
            if other == index or not await asyncio.to_thread(self.store.exists, digest):
                continue
            # left here by an older ranking (a drain, a member added or back): dropped once
            # its rightful member has it
            try:
                held = await self.fragments.client.has_chunk(holders[other].data_url, digest)
            except PeerError:
                continue
            if held and not self.store.pins.get(digest):  # no await between check and unlink
                self.store.delete(digest)
                self.dropped += 1

    async def missing(
        self, coded_chunks: Iterable[tuple[bytes, dict[str, Any]]], *, limit: int = 0
    ) -> int:
        """Fragments not on their ranked member now (a chunk whose k + m members are not all
        live counts all of them: a drain must not finish below k + m); asks the members (HEAD),
        so for drains and tests. Stops counting at `limit` when given."""
        missing = 0
        checks = []
        for chunk_id, record in coded_chunks:
            coded = Coded.from_record(record)
            holders = self.fragments.holders(chunk_id, coded.scheme.width)
            if len(holders) < coded.scheme.width:
                missing += coded.scheme.width
                if limit and missing >= limit:
                    return missing
                continue
            checks += [(m.data_url, d) for m, d in zip(holders, coded.digests, strict=True)]
        for start in range(0, len(checks), 64):  # 64 HEADs in flight at a time
            batch = checks[start : start + 64]
            results = await asyncio.gather(
                *(self.fragments.client.has_chunk(url, d) for url, d in batch),
                return_exceptions=True,
            )
            missing += sum(1 for r in results if r is not True)
            if limit and missing >= limit:
                break
        return missing

    async def restore(self, chunk_id: bytes, coded: Coded, index: int) -> bool:
        """Store here fragment `index`: fetched if some member has it intact, else rebuilt
        from k others. False if fewer than k verified fragments could be found."""
        got = await self.fragments.fetch(coded, chunk_id, list(range(coded.scheme.width)))
        fragment = got.get(index)
        if fragment is None:
            try:
                fragment = (
                    await asyncio.to_thread(erasure.rebuild, coded, chunk_id, got, [index])
                )[index]
            except Unrecoverable as e:
                log.error("fragment %d of chunk %s cannot be rebuilt: %s", index, chunk_id.hex(), e)
                return False
        try:
            await asyncio.to_thread(self.store.write, coded.digests[index], fragment)
        except OSError as e:  # a full volume (its reserve): the next round tries again
            log.error("fragment %d of chunk %s: cannot store it here: %s", index, chunk_id.hex(), e)
            return False
        self.restored += 1
        return True

    async def repair(self, digest: bytes) -> bool | None:
        """A fragment found damaged here: rebuild it in place. None if `digest` is not a
        fragment of a referenced coded chunk (the caller then treats it as a chunk)."""
        owned = self.owner(digest)
        if owned is None:
            return None
        chunk_id, coded = owned
        index = coded.digests.index(digest)
        self.store.delete(digest)  # the damaged file must not be fetched back
        return await self.restore(chunk_id, coded, index)
