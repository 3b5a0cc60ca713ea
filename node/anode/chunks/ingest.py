"""Turns a request body into durable chunks (cut, hash, write, fsync, rename), streaming.

The body arrives in network-sized buffers; they are grouped, without copying, into pieces of up
to 1 MiB and handed to two lanes of worker threads that run side by side with the receiving
event loop (hashlib and os.writev release the GIL):
- the object lane updates the object's MD5 (the ETag) and the requested checksum;
- the chunk lane updates the current chunk's SHA-256 and writes its temp file.
Each lane keeps its pieces in order and at most `DEPTH` of them queued, which bounds memory.
A full chunk is published (fsync, rename, fsync dir) and copied to its holders in the background
while the next one is received. Published chunks are pinned so the collector leaves them alone
until the metadata that references them is committed (or the write fails, after which they are
ordinary orphans the collector removes after its grace period).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..checksums import Checksummer
from .crypto import ChunkCipher
from .store import ChunkStore

PIECE = 1024 * 1024
DEPTH = 2  # pieces queued per lane
MAX_COPIES_IN_FLIGHT = 2  # chunks being published or copied to holders
IOV_MAX = 512  # buffers per writev (Linux allows 1024)

Piece = list[bytes | memoryview]


class BodyReader(Protocol):
    async def read_chunk(self) -> bytes: ...


class TooLarge(Exception):
    pass


@dataclass
class Ingested:
    size: int = 0
    md5: bytes = b""
    checksum: str | None = None  # base64 digest of the requested algorithm
    chunks: list[list] = field(default_factory=list)  # [[sha256 digest, size], ...]
    inline: bytes | None = None  # the one chunk's bytes, to be kept in the metadata

    @property
    def etag(self) -> str:
        return f'"{self.md5.hex()}"'


class _Lane:
    """Jobs run one after another in worker threads, in submission order, `DEPTH` at most queued."""

    def __init__(self) -> None:
        self._jobs: deque[asyncio.Future[Any]] = deque()

    async def submit(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        while len(self._jobs) >= DEPTH:
            await self._jobs.popleft()
        job = asyncio.ensure_future(self._after(self._jobs[-1] if self._jobs else None, fn, args))
        self._jobs.append(job)
        return job

    @staticmethod
    async def _after(previous: asyncio.Future[Any] | None, fn: Callable[..., Any],
                     args: tuple[Any, ...]) -> Any:
        if previous is not None:
            await asyncio.shield(previous)
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    async def drain(self) -> None:
        while self._jobs:
            await self._jobs.popleft()

    async def abandon(self) -> None:
        """Wait for whatever is running (the threads may hold our file), ignoring its outcome."""
        jobs, self._jobs = list(self._jobs), deque()
        await asyncio.gather(*jobs, return_exceptions=True)


class _ObjectHashes:
    """Thread side of the object lane."""

    def __init__(self, algorithm: str | None) -> None:
        self.md5 = hashlib.md5()
        self.checksum = Checksummer(algorithm) if algorithm else None

    def absorb(self, piece: Piece) -> None:
        for buf in piece:
            self.md5.update(buf)
            if self.checksum:
                self.checksum.update(buf)


class _ChunkWriter:
    """Thread side of the chunk lane: the chunk being written."""

    def __init__(self, store: ChunkStore, cipher: ChunkCipher | None) -> None:
        self.store = store
        # Encrypting: a chunk's plaintext is gathered and sealed whole (its id depends on all of
        # it), then written; without a cipher, pieces go to the temp file as they come.
        self.cipher = cipher
        self.plain = bytearray()
        self.temp: Path | None = None
        self.fd: int | None = None
        self.sha = hashlib.sha256()
        self.size = 0

    def absorb(self, piece: Piece) -> None:
        if self.cipher is not None:
            for buf in piece:
                self.plain += buf
            return
        if self.fd is None:
            self.temp, self.fd = self.store.new_temp()
            self.sha = hashlib.sha256()
            self.size = 0
        for buf in piece:
            self.sha.update(buf)
        _write_all(self.fd, piece)
        self.size += sum(len(buf) for buf in piece)

    def finish(self, piece: Piece) -> tuple[list, Path, int]:
        """Absorb the chunk's last piece; ([digest, size], temp, fd) to publish. Resets."""
        self.absorb(piece)
        if self.cipher is not None:
            size = len(self.plain)
            sealed = self.cipher.seal(bytes(self.plain))
            self.plain = bytearray()
            self.temp, self.fd = self.store.new_temp()
            _write_all(self.fd, [sealed])
            entry = [hashlib.sha256(sealed).digest(), size]  # the id of the stored bytes
        else:
            entry = [self.sha.digest(), self.size]
        assert self.temp is not None and self.fd is not None
        done = (entry, self.temp, self.fd)
        self.temp, self.fd = None, None
        return done

    def abandon(self) -> None:
        if self.temp is not None:
            self.store.discard(self.temp, self.fd)
            self.temp, self.fd = None, None


def _write_all(fd: int, piece: Piece) -> None:
    views = [memoryview(buf) for buf in piece if len(buf)]
    while views:
        written = os.writev(fd, views[:IOV_MAX])
        while views and written >= len(views[0]):
            written -= len(views[0])
            views.pop(0)
        if views and written:
            views[0] = views[0][written:]


class _Buffered:
    """Received bytes not yet handed to the lanes: whole buffers, cut without copying."""

    def __init__(self) -> None:
        self.bufs: deque[bytes | memoryview] = deque()
        self.size = 0

    def add(self, data: bytes) -> None:
        self.bufs.append(data)
        self.size += len(data)

    def take(self, n: int) -> Piece:
        piece: Piece = []
        while n:
            buf = self.bufs.popleft()
            if len(buf) > n:
                view = memoryview(buf)
                piece.append(view[:n])
                self.bufs.appendleft(view[n:])
                self.size -= n
                return piece
            piece.append(buf)
            n -= len(buf)
            self.size -= len(buf)
        return piece

    def join(self) -> bytes:
        return b"".join(self.bufs)


async def ingest(
    body: BodyReader,
    store: ChunkStore,
    *,
    chunk_size: int,
    algorithm: str | None = None,
    max_size: int | None = None,
    replicate: Callable[[bytes], Awaitable[None]] | None = None,
    cipher: ChunkCipher | None = None,
    inline_max: int = 0,
) -> Ingested:
    """Store the body as chunks and return what the metadata needs. Caller unpins (`release`).

    With `replicate` (a cluster), each published chunk is also copied to its holders while the
    next one is being received; ingest returns only when every copy is durable.
    With `cipher`, chunks are stored encrypted (`crypto.py`); sizes and hashes stay plaintext's.
    A plaintext body of at most `inline_max` bytes is not written at all: it comes back as
    `inline`, for the metadata command to carry (one log entry and one RocksDB write instead of
    a file, its fsyncs and a copy to every holder).
    """
    loop = asyncio.get_running_loop()
    objects, chunks = _Lane(), _Lane()
    hashes, writer = _ObjectHashes(algorithm), _ChunkWriter(store, cipher)
    slots: list[list | None] = []  # each chunk's [digest, size] once pinned, in body order
    local: list[asyncio.Future[None]] = []  # publishing: never cancelled (a thread has the fd)
    remote: list[asyncio.Future[None]] = []  # copies to holders: cancelled if the write fails
    in_flight: deque[asyncio.Future[None]] = deque()
    result = Ingested()
    buffered = _Buffered()
    in_chunk = 0  # bytes of the current chunk already handed to the chunk lane

    async def publish(job: asyncio.Future[tuple[list, Path, int]], slot: int) -> None:
        entry, temp, fd = await asyncio.shield(job)
        # Pin before the rename makes the chunk visible: the collector skips pinned chunks and
        # unlinks only from the event loop, so it can never delete a chunk we are about to use.
        store.pins[entry[0]] += 1
        slots[slot] = entry
        try:
            await asyncio.shield(loop.run_in_executor(None, store.publish, temp, fd, entry[0]))
        except Exception:
            store.discard(temp, None)  # publish closed the fd
            raise

    async def copy_out(published: asyncio.Future[None], slot: int) -> None:
        await asyncio.shield(published)
        entry = slots[slot]
        assert replicate is not None and entry is not None
        await replicate(entry[0])

    async def finish_chunk(piece: Piece) -> None:
        slots.append(None)
        job = await chunks.submit(writer.finish, piece)
        published = asyncio.ensure_future(publish(job, len(slots) - 1))
        local.append(published)
        last = published
        if replicate is not None:
            last = asyncio.ensure_future(copy_out(published, len(slots) - 1))
            remote.append(last)
        in_flight.append(last)
        if len(in_flight) > MAX_COPIES_IN_FLIGHT:  # bounded: a copy holds a chunk in memory
            await in_flight.popleft()

    try:
        ended = False
        while not ended:
            data = await body.read_chunk()
            if data:
                buffered.add(data)
                result.size += len(data)
                if max_size is not None and result.size > max_size:
                    raise TooLarge()
            else:
                ended = True
                if 0 < result.size == buffered.size <= inline_max and cipher is None:
                    return _inline(store, buffered.join(), algorithm)
            while buffered.size and (
                buffered.size >= PIECE or in_chunk + buffered.size >= chunk_size or ended
            ):
                n = min(buffered.size, chunk_size - in_chunk, PIECE)
                piece = buffered.take(n)
                await objects.submit(hashes.absorb, piece)
                in_chunk += n
                if in_chunk == chunk_size or (ended and not buffered.size):
                    await finish_chunk(piece)
                    in_chunk = 0
                else:
                    await chunks.submit(writer.absorb, piece)
        if in_chunk:  # the body ended right after a piece that did not end its chunk
            await finish_chunk([])
        await objects.drain()
        await chunks.drain()
        await asyncio.gather(*local, *remote)
    except BaseException:
        for task in remote:
            task.cancel()
        await objects.abandon()
        await chunks.abandon()  # the threads must be done with the file before it goes
        await asyncio.gather(*local, *remote, return_exceptions=True)
        await loop.run_in_executor(None, writer.abandon)
        release(store, [entry for entry in slots if entry is not None], abandoned=True)
        raise
    result.chunks = [entry for entry in slots if entry is not None]
    result.md5 = hashes.md5.digest()
    result.checksum = hashes.checksum.b64digest() if hashes.checksum else None
    return result


def _inline(store: ChunkStore, body: bytes, algorithm: str | None) -> Ingested:
    """A small body's hashes, computed right here: a worker-thread hop costs more."""
    checksum = Checksummer(algorithm) if algorithm else None
    if checksum:
        checksum.update(body)
    digest = hashlib.sha256(body).digest()
    store.pins[digest] += 1  # like any ingested chunk, so `release` needs no special case
    return Ingested(size=len(body), md5=hashlib.md5(body).digest(),
                    checksum=checksum.b64digest() if checksum else None,
                    chunks=[[digest, len(body)]], inline=body)


def release(store: ChunkStore, chunks: list[list], *, abandoned: bool = False) -> None:
    """Unpin chunks once their metadata is committed, or the write abandoned. Event loop only.

    An abandoned write deletes at once the chunks it wrote that nobody else uses (unpinned and
    unreferenced), so failed uploads do not hold disk space until the collector's grace period.
    """
    for digest, _ in chunks:
        store.pins[digest] -= 1
        if store.pins[digest] <= 0:
            del store.pins[digest]
            if abandoned and not store.is_referenced(digest):
                store.delete(digest)


@contextlib.asynccontextmanager
async def pinned(store: ChunkStore, chunks: list[list]) -> AsyncIterator[None]:
    """Pin existing chunks (a copy's source) for the duration of the block."""
    for digest, _ in chunks:
        store.pins[digest] += 1
    try:
        yield
    finally:
        release(store, chunks)
