"""Reading byte ranges of an object back from its chunk list, in bounded pieces.

Where a chunk's bytes come from is a `ChunkReader`: this node's disk (`LocalChunks`) or, in a
cluster, any healthy holder (`replication.Replicator`). Whole chunks are verified against their
SHA-256 as they are read, partial ones against their segment table (`store.read_part`): no
reader returns bytes that were not verified.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Protocol

from .store import ChunkCorrupt, ChunkMissing, ChunkStore, cut

PIECE = 1024 * 1024


def segments(chunks: list[list], start: int, end: int) -> Iterator[tuple[bytes, int, int, bool]]:
    """(digest, offset in chunk, length, whole chunk?) covering object bytes [start, end)."""
    position = 0
    for digest, size in chunks:
        chunk_start, chunk_end = position, position + size
        position = chunk_end
        if chunk_end <= start:
            continue
        if chunk_start >= end:
            return
        lo = max(start, chunk_start) - chunk_start
        hi = min(end, chunk_end) - chunk_start
        yield digest, lo, hi - lo, lo == 0 and hi == size


class ChunkReader(Protocol):
    """Bytes [offset, offset + length) of a chunk; a negative length reads to its end."""

    async def read(self, digest: bytes, offset: int, length: int, whole: bool) -> bytes: ...

    def read_sync(self, digest: bytes, offset: int, length: int, whole: bool) -> bytes: ...

    def read_local(self, digest: bytes, offset: int, length: int, whole: bool) -> bytes | None:
        """This node's copy, or None; never waits on the network."""
        ...


class LocalChunks:
    """Chunks from this node's own store."""

    def __init__(self, store: ChunkStore) -> None:
        self.store = store

    def read_sync(self, digest: bytes, offset: int, length: int, whole: bool) -> bytes:
        if whole:
            return self.store.read_verified(digest)
        data = self.store.read_part(digest, offset, length)
        assert data is not None
        return data

    async def read(self, digest: bytes, offset: int, length: int, whole: bool) -> bytes:
        return await asyncio.to_thread(self.read_sync, digest, offset, length, whole)

    def read_local(self, digest: bytes, offset: int, length: int, whole: bool) -> bytes | None:
        return read_quick(self.store, digest, offset, length, whole)


def read_quick(store: ChunkStore, digest: bytes, offset: int, length: int, whole: bool
               ) -> bytes | None:
    """A cheap verified read for the event loop, or None (damaged, missing, or a chunk whose
    part would need a whole verification first: work for a worker thread)."""
    try:
        if whole:
            return store.read_verified(digest)
        return store.read_part(digest, offset, length, quick=True)
    except (ChunkMissing, ChunkCorrupt):
        return None


class InlineFirst:
    """Chunks kept in the metadata (small objects' bodies) first, then `files`.

    Inline bytes come from RocksDB, whose blocks are checksummed, and are on every member (the
    log replicated them), so they are neither re-hashed nor ever fetched from a peer. `lookup`
    may also answer from the small-chunk cache, which holds verified chunk files as well.
    """

    def __init__(self, lookup: Callable[[bytes], bytes | None], files: ChunkReader) -> None:
        self.lookup = lookup
        self.files = files

    def read_sync(self, digest: bytes, offset: int, length: int, whole: bool) -> bytes:
        data = self.lookup(digest)
        if data is not None:
            return cut(data, offset, length)
        return self.files.read_sync(digest, offset, length, whole)

    async def read(self, digest: bytes, offset: int, length: int, whole: bool) -> bytes:
        data = self.lookup(digest)
        if data is not None:
            return cut(data, offset, length)
        return await self.files.read(digest, offset, length, whole)

    def read_local(self, digest: bytes, offset: int, length: int, whole: bool) -> bytes | None:
        data = self.lookup(digest)
        if data is not None:
            return cut(data, offset, length)
        return self.files.read_local(digest, offset, length, whole)


def read_range_sync(source: ChunkReader, chunks: list[list], start: int, end: int) -> bytes:
    """Bytes [start, end) of an object; for worker threads."""
    return b"".join(source.read_sync(*seg) for seg in segments(chunks, start, end))


def read_small_inline(
    source: ChunkReader, chunks: list[list], start: int, end: int
) -> bytes | None:
    """A small range read right in the event loop when every byte is on this node.

    For a few KiB from the page cache a worker-thread round trip costs more than the read
    itself (measured: the executor hand-off was the hottest frame of small GETs). None means
    "not all local": the caller takes the ordinary path.
    """
    parts = []
    for segment in segments(chunks, start, end):
        data = source.read_local(*segment)
        if data is None:
            return None
        parts.append(data)
    return b"".join(parts)


def _pieces(chunks: list[list], start: int, end: int) -> Iterator[tuple[bytes, int, int, bool]]:
    """Segments split so no single read exceeds PIECE bytes, unless a whole chunk is verified."""
    for digest, offset, length, whole in segments(chunks, start, end):
        if whole and length <= 16 * PIECE:
            yield digest, offset, length, True
            continue
        for piece_start in range(offset, offset + length, PIECE):
            yield digest, piece_start, min(PIECE, offset + length - piece_start), False


async def stream_range(
    source: ChunkReader, chunks: list[list], start: int, end: int
) -> AsyncIterator[bytes]:
    """Yield the bytes [start, end) reading one piece ahead of the consumer."""
    pending: asyncio.Task[bytes] | None = None
    try:
        for piece in _pieces(chunks, start, end):
            task = asyncio.ensure_future(source.read(*piece))
            if pending is not None:
                yield await pending
            pending = task
        if pending is not None:
            yield await pending
            pending = None
    finally:
        if pending is not None:
            pending.cancel()


class ObjectSource:
    """One object version as S3 Select's `RangeSource` (sync; used from worker threads)."""

    def __init__(self, source: ChunkReader, bucket: str, key: str, record: dict[str, Any]) -> None:
        self.source = source
        self.chunks = record["chunks"]
        self.size: int = record["size"]
        self.cache_key = f"{bucket}/{key}/{record['etag']}"

    def read_range(self, start: int, length: int) -> bytes:
        end = min(self.size, start + length)
        if start >= end:
            return b""
        return read_range_sync(self.source, self.chunks, start, end)
