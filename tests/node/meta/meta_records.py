"""Record builders for direct tests of the metadata state machine (the `meta` fixture, a store on
a real RocksDB, is shared from `tests/node/conftest.py`)."""

from __future__ import annotations

import hashlib
from typing import Any


def digest(n: int) -> bytes:
    return hashlib.sha256(n.to_bytes(4, "big")).digest()


def version(*chunks: tuple[bytes, int], etag: str = '"e"', mtime: float = 1.0) -> dict[str, Any]:
    """An object version record as the S3 layer proposes it (chunks: (sha256, size) pairs)."""
    return {
        "size": sum(size for _, size in chunks),
        "etag": etag,
        "mtime": mtime,
        "chunks": [list(ch) for ch in chunks],
        "owner": "root",
    }
