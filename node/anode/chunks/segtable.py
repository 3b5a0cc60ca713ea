"""A chunk's segment table: the SHA-256 of each 64 KiB segment, so that a partial read verifies
only the segments it covers instead of re-hashing the whole chunk (or trusting the disk).

    digest (32 B) || size (8 B, big-endian) || sha256(segment 0) || ... || check (32 B)

where `check` is the SHA-256 of everything before it. A table is made only from bytes that
hashed to the chunk's id (a whole, verified read), so it is a function of the id: it never goes
stale, every node may make its own, and a lost one is made again on the next partial read.
`check` (which covers the id) catches a damaged table or one lying next to the wrong chunk; a
table that fails it is ignored and remade. Pure logic: the files are `store.py`'s.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

SEGMENT = 64 * 1024
_HASH = 32
_HEAD = _HASH + 8


@dataclass(frozen=True)
class SegmentTable:
    size: int  # the chunk's size in bytes
    hashes: bytes  # the segments' SHA-256 digests, concatenated

    def span(self, offset: int, length: int) -> tuple[int, int]:
        """The segment-aligned byte range [start, end) that covers [offset, offset + length)."""
        start = offset - offset % SEGMENT
        end = min(self.size, -(-(offset + length) // SEGMENT) * SEGMENT)
        return start, end

    def verifies(self, start: int, data: bytes) -> bool:
        """Whether `data`, read at the segment boundary `start`, is exactly those segments."""
        if start % SEGMENT or len(data) != self.span(start, len(data))[1] - start:
            return False
        first = start // SEGMENT
        for i in range(0, len(data), SEGMENT):
            index = first + i // SEGMENT
            expected = self.hashes[index * _HASH : (index + 1) * _HASH]
            if hashlib.sha256(data[i : i + SEGMENT]).digest() != expected:
                return False
        return True


class Builder:
    """A chunk's SHA-256 and segment table in one pass over its bytes, in pieces of any size
    that is a multiple of SEGMENT (the last one excepted): bounded memory for any chunk size."""

    def __init__(self) -> None:
        self.whole = hashlib.sha256()
        self.hashes: list[bytes] = []
        self.size = 0

    def update(self, piece: bytes) -> None:
        if self.size % SEGMENT:
            raise ValueError("only the last piece may end inside a segment")
        self.whole.update(piece)
        view = memoryview(piece)
        self.hashes += [
            hashlib.sha256(view[i : i + SEGMENT]).digest() for i in range(0, len(piece), SEGMENT)
        ]
        self.size += len(piece)

    def table(self, digest: bytes) -> bytes | None:
        """The table, if the bytes seen hash to `digest`; None if they do not (damage)."""
        if self.whole.digest() != digest:
            return None
        body = b"".join([digest, self.size.to_bytes(8, "big"), *self.hashes])
        return body + hashlib.sha256(body).digest()


def build(digest: bytes, data: bytes) -> bytes | None:
    """The table of a chunk's bytes, None if they are not the chunk `digest`."""
    builder = Builder()
    builder.update(data)
    return builder.table(digest)


def parse(digest: bytes, blob: bytes) -> SegmentTable | None:
    """The table in `blob` if it is intact and belongs to `digest`, else None."""
    body, check = blob[:-_HASH], blob[-_HASH:]
    if len(blob) < _HEAD + _HASH or hashlib.sha256(body).digest() != check:
        return None
    if body[:_HASH] != digest:
        return None
    size = int.from_bytes(body[_HASH:_HEAD], "big")
    hashes = body[_HEAD:]
    if len(hashes) != -(-size // SEGMENT) * _HASH:
        return None
    return SegmentTable(size, hashes)
