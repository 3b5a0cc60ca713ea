"""The segment table of a chunk (pure logic): what a partial read verifies against."""

from __future__ import annotations

import hashlib
import os

import pytest

from anode.chunks.segtable import SEGMENT, build, parse


def test_a_table_verifies_exactly_the_segments_it_was_made_from():
    data = os.urandom(3 * SEGMENT + 100)
    digest = hashlib.sha256(data).digest()
    table = parse(digest, build(digest, data))
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
    assert parse(digest, blob) is not None
    assert parse(hashlib.sha256(b"other").digest(), blob) is None  # another chunk's
    for i in (0, 35, len(blob) // 2, len(blob) - 1):
        damaged = bytearray(blob)
        damaged[i] ^= 0x40
        assert parse(digest, bytes(damaged)) is None
    assert parse(digest, blob[:-1]) is None and parse(digest, b"") is None
