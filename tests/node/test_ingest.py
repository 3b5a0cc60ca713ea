"""`chunks.ingest` on a real chunk store: cutting, hashing and writing at every boundary."""

from __future__ import annotations

import asyncio
import hashlib
import os

import pytest

from anode.chunks.crypto import ChunkCipher
from anode.chunks.ingest import PIECE, ingest
from anode.chunks.store import ChunkStore
from anode.s3.checksums import Checksummer

CHUNK = 256 * 1024  # small chunks, so bodies cross many chunk and piece boundaries


class Body:
    """A request body arriving `step` bytes at a time, optionally failing after `fail_at`."""

    def __init__(self, data: bytes, step: int, fail_at: int | None = None) -> None:
        self.data, self.step, self.fail_at, self.pos = data, step, fail_at, 0

    async def read_chunk(self) -> bytes:
        if self.fail_at is not None and self.pos >= self.fail_at:
            raise ConnectionResetError("client went away")
        piece = self.data[self.pos : self.pos + self.step]
        self.pos += len(piece)
        await asyncio.sleep(0)
        return piece


def files(store: ChunkStore) -> list[str]:
    return [p.name for p in store.root.rglob("*") if p.is_file()]


@pytest.mark.parametrize(("size", "step"), [
    (CHUNK, 4096),                # exactly one chunk
    (CHUNK * 3, CHUNK),           # body ends right after a piece that ends a chunk
    (CHUNK * 2 + 1, 1000),        # one byte into a third chunk
    (PIECE + CHUNK + 17, 65536),  # pieces larger than chunks
    (CHUNK + 5, 7),               # tiny network reads
    (1, 1),
])
async def test_chunks_concatenate_to_the_body_and_hashes_match(tmp_path, size, step):
    store = ChunkStore(tmp_path / "chunks")
    data = os.urandom(size)
    result = await ingest(Body(data, step), store, chunk_size=CHUNK, algorithm="CRC32")
    assert b"".join(store.read_verified(d) for d, _ in result.chunks) == data
    assert [s for _, s in result.chunks] == [len(data[i:i + CHUNK])
                                             for i in range(0, len(data), CHUNK)]
    assert result.size == size and result.md5 == hashlib.md5(data).digest()
    expected = Checksummer("CRC32")
    expected.update(data)
    assert result.checksum == expected.b64digest()
    assert all(store.pins[d] >= 1 for d, _ in result.chunks)  # pinned until committed
    assert not list(store.temp_files())


async def test_small_body_comes_back_inline_and_writes_nothing(tmp_path):
    store = ChunkStore(tmp_path / "chunks")
    result = await ingest(Body(b"tiny body", 4), store, chunk_size=CHUNK, inline_max=64)
    assert result.inline == b"tiny body" and result.chunks == [
        [hashlib.sha256(b"tiny body").digest(), 9]]
    assert not [f for f in files(store) if len(f) == 64]


async def test_encrypted_chunks_are_sealed_and_named_by_their_sealed_bytes(tmp_path):
    store = ChunkStore(tmp_path / "chunks")
    cipher = ChunkCipher(os.urandom(32))
    data = os.urandom(CHUNK + 100)
    result = await ingest(Body(data, 50_000), store, chunk_size=CHUNK, cipher=cipher,
                          inline_max=1 << 20)  # never inline: encrypted bodies stay files
    assert result.inline is None and [s for _, s in result.chunks] == [CHUNK, 100]
    sealed = [store.read_verified(d) for d, _ in result.chunks]
    assert b"".join(cipher.open(s) for s in sealed) == data
    assert data[:1000] not in b"".join(sealed)


async def test_failed_body_leaves_no_file_behind(tmp_path):
    store = ChunkStore(tmp_path / "chunks")
    store.is_referenced = lambda digest: False
    data = os.urandom(CHUNK * 3)
    with pytest.raises(ConnectionResetError):
        await ingest(Body(data, 30_000, fail_at=CHUNK * 2 + 10), store, chunk_size=CHUNK)
    assert not [f for f in files(store) if len(f) == 64] and not list(store.temp_files())
    assert not store.pins


async def test_body_ending_on_a_piece_inside_a_chunk_finishes_that_chunk(tmp_path):
    store = ChunkStore(tmp_path / "chunks")
    data = os.urandom(5 * PIECE)  # one 4-piece chunk, then a last piece that ends nothing
    result = await ingest(Body(data, PIECE), store, chunk_size=4 * PIECE)
    assert [s for _, s in result.chunks] == [4 * PIECE, PIECE]
    assert b"".join(store.read_verified(d) for d, _ in result.chunks) == data
