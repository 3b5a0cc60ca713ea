"""Turns a request body into durable chunks (cut, hash, write, fsync, rename), streaming.

The body arrives in network-sized pieces; they are gathered into pieces of up to 1 MiB and handed
to a worker thread that updates the object's MD5 (ETag) and requested checksum, the chunk's
SHA-256, and writes the temp file (hashlib releases the GIL). A chunk is published (fsync, rename,
fsync dir) once it is full or the body ends. Published chunks are pinned so the collector leaves
them alone until the metadata that references them is committed (or the write fails, after which
they are ordinary orphans the collector removes after its grace period).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..s3.checksums import Checksummer
from .crypto import ChunkCipher
from .store import ChunkStore

PIECE = 1024 * 1024
MAX_COPIES_IN_FLIGHT = 2


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


class _Writer:
    """Thread-side state of one ingest: the object hashes and the chunk being written."""

    def __init__(self, store: ChunkStore, algorithm: str | None,
                 cipher: ChunkCipher | None = None) -> None:
        self.store = store
        # Encrypting: a chunk's plaintext is gathered and sealed whole (its id depends on all of
        # it), then written; without a cipher, pieces go to the temp file as they come.
        self.cipher = cipher
        self.plain = bytearray()
        self.md5 = hashlib.md5()
        self.checksum = Checksummer(algorithm) if algorithm else None
        self.temp = None
        self.fd: int | None = None
        self.sha = hashlib.sha256()
        self.chunk_bytes = 0

    def absorb(self, piece: bytes) -> None:
        self.absorb_object(piece)
        self.absorb_chunk(piece)

    def absorb_object(self, piece: bytes) -> None:
        """The whole object's hashes (MD5 for the ETag, the requested checksum)."""
        self.md5.update(piece)
        if self.checksum:
            self.checksum.update(piece)

    def absorb_chunk(self, piece: bytes) -> None:
        """The current chunk: its SHA-256 and its temp file. Touches no state absorb_object
        touches, so the two run in parallel threads (hashlib releases the GIL)."""
        if not piece:
            return
        if self.cipher is not None:
            self.plain += piece
            return
        if self.fd is None:
            self.temp, self.fd = self.store.new_temp()
            self.sha = hashlib.sha256()
            self.chunk_bytes = 0
        self.sha.update(piece)
        view = memoryview(piece)
        while view:
            view = view[os.write(self.fd, view) :]
        self.chunk_bytes += len(piece)

    def finish_chunk(self, piece: bytes) -> list:
        """Absorb the chunk's last piece and return its [digest, size] (not yet published)."""
        self.absorb(piece)
        if self.cipher is not None:
            size = len(self.plain)
            sealed = self.cipher.seal(bytes(self.plain))
            self.plain = bytearray()
            self.temp, self.fd = self.store.new_temp()
            view = memoryview(sealed)
            while view:
                view = view[os.write(self.fd, view) :]
            return [hashlib.sha256(sealed).digest(), size]  # the id of the stored bytes
        return [self.sha.digest(), self.chunk_bytes]

    def publish(self, digest: bytes) -> None:
        fd, self.fd = self.fd, None
        self.store.publish(self.temp, fd, digest)

    def abandon(self) -> None:
        if self.temp is not None and self.fd is not None:
            self.store.discard(self.temp, self.fd)
            self.fd = None


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
    copies: list[asyncio.Task[None]] = []
    writer = _Writer(store, algorithm, cipher)
    result = Ingested()
    pending = bytearray()
    in_chunk = 0  # bytes of the current chunk already handed to the writer
    ended = False

    absorbing: asyncio.Future[Any] | None = None  # the piece the writer threads are on

    async def settle() -> None:
        nonlocal absorbing
        if absorbing is not None:
            pending_work, absorbing = absorbing, None
            await pending_work

    async def flush(n: int, publish: bool) -> None:
        nonlocal in_chunk, absorbing
        piece = bytes(pending[:n])
        del pending[:n]
        await settle()  # one piece in the threads while the next one is being received
        if not publish:
            absorbing = asyncio.gather(
                loop.run_in_executor(None, writer.absorb_object, piece),
                loop.run_in_executor(None, writer.absorb_chunk, piece))
            in_chunk += n
            return
        entry = await loop.run_in_executor(None, writer.finish_chunk, piece)
        # Pin before the rename makes the chunk visible: the collector skips pinned chunks and
        # unlinks only from the event loop, so it can never delete a chunk we are about to use.
        store.pins[entry[0]] += 1
        result.chunks.append(entry)
        in_chunk = 0
        await loop.run_in_executor(None, writer.publish, entry[0])
        if replicate is not None:
            copies.append(asyncio.ensure_future(replicate(entry[0])))
            if len(copies) >= MAX_COPIES_IN_FLIGHT:
                await copies[-MAX_COPIES_IN_FLIGHT]  # bounded: each holds a chunk in memory

    try:
        while not ended:
            data = await body.read_chunk()
            if data:
                pending += data
                result.size += len(data)
                if max_size is not None and result.size > max_size:
                    raise TooLarge()
            else:
                ended = True
                if 0 < result.size == len(pending) <= inline_max and cipher is None:
                    return _inline(store, bytes(pending), algorithm)
            while pending and (
                len(pending) >= PIECE or in_chunk + len(pending) >= chunk_size or ended
            ):
                room = chunk_size - in_chunk
                n = min(len(pending), room, PIECE)
                full = n == room
                await flush(n, publish=full or (ended and len(pending) == n))
        if in_chunk:  # body ended exactly after an unpublished piece
            await flush(0, publish=True)
        await settle()
        await asyncio.gather(*copies)
    except BaseException:
        for task in copies:
            task.cancel()
        await asyncio.gather(*copies, return_exceptions=True)
        if absorbing is not None:  # the threads must be done with the file before it goes
            await asyncio.gather(absorbing, return_exceptions=True)
        await loop.run_in_executor(None, writer.abandon)
        release(store, result.chunks, abandoned=True)
        raise
    result.md5 = writer.md5.digest()
    result.checksum = writer.checksum.b64digest() if writer.checksum else None
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
