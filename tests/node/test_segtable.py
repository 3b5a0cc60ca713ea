"""The segment table of a chunk: what a partial read verifies against (the logic, then the
store's table files on a real directory)."""

from __future__ import annotations

import hashlib
import os

import pytest

from anode.chunks.segtable import SEGMENT, build, parse
from anode.chunks.store import ChunkCorrupt, ChunkStore


def test_a_table_verifies_exactly_the_segments_it_was_made_from():
    data = os.urandom(3 * SEGMENT + 100)
    digest = hashlib.sha256(data).digest()
    blob = build(digest, data)
    assert blob is not None and build(hashlib.sha256(b"x").digest(), data) is None
    table = parse(digest, blob)
    assert table is not None and table.size == len(data)
    for offset, length in (
        (0, 1),
        (SEGMENT - 1, 2),
        (2 * SEGMENT + 5, SEGMENT + 95),
        (0, len(data)),
    ):
        start, end = table.span(offset, length)
        assert start % SEGMENT == 0 and start <= offset and offset + length <= end <= len(data)
        assert table.verifies(start, data[start:end])
        damaged = bytearray(data[start:end])
        damaged[offset - start] ^= 1
        assert not table.verifies(start, bytes(damaged))
        assert not table.verifies(start, data[start : end - 1])  # truncated
    assert not table.verifies(1, data[1:SEGMENT])  # not at a segment boundary


@pytest.mark.parametrize("size", [1, SEGMENT - 1, SEGMENT, SEGMENT + 1])
def test_a_damaged_or_foreign_table_is_refused(size):
    data = os.urandom(size)
    digest = hashlib.sha256(data).digest()
    blob = build(digest, data)
    assert blob is not None and parse(digest, blob) is not None
    assert parse(hashlib.sha256(b"other").digest(), blob) is None  # another chunk's
    for i in (0, 35, len(blob) // 2, len(blob) - 1):
        damaged = bytearray(blob)
        damaged[i] ^= 0x40
        assert parse(digest, bytes(damaged)) is None
    assert parse(digest, blob[:-1]) is None and parse(digest, b"") is None


def test_the_store_makes_remakes_and_drops_tables(tmp_path):
    store = ChunkStore(tmp_path / "chunks")
    data = os.urandom(5 * SEGMENT + 3)
    digest = hashlib.sha256(data).digest()
    store.write(digest, data)
    table = store.table_path(digest)
    assert not table.exists()
    assert store.read_part(digest, SEGMENT + 7, 100) == data[SEGMENT + 7 : SEGMENT + 107]
    assert table.exists()  # made by the first partial read
    store.tables.drop(digest)
    table.write_bytes(b"\x00" + table.read_bytes()[1:])  # damaged: ignored and remade
    assert store.read_part(digest, 4 * SEGMENT, -1) == data[4 * SEGMENT :]
    assert parse(digest, table.read_bytes()) is not None
    assert store.read_part(digest, 0, 10, quick=True) == data[:10]
    other = ChunkStore(tmp_path / "chunks")  # a restarted node: no table in memory
    with open(store.path(digest), "r+b") as f:
        f.seek(2 * SEGMENT)
        f.write(b"X")
    found: list[bytes] = []
    other.on_corrupt = found.append
    assert other.read_part(digest, 0, 100) == data[:100]  # other segments still verify
    with pytest.raises(ChunkCorrupt):
        other.read_part(digest, 2 * SEGMENT - 1, 2)
    assert found == [digest]
    store.path(digest).unlink()  # as if the collector won a race with a reader
    assert store.drop_stray_tables() == 1 and not table.exists()
