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


def build(digest: bytes, data: bytes) -> bytes:
    """The table of a chunk whose bytes `data` were verified against `digest`."""
    view = memoryview(data)
    parts = [digest, len(data).to_bytes(8, "big")]
    parts += [hashlib.sha256(view[i : i + SEGMENT]).digest() for i in range(0, len(data), SEGMENT)]
    body = b"".join(parts)
    return body + hashlib.sha256(body).digest()


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
