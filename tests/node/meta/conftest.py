"""Fixtures for the pure metadata state machine, on a real RocksDB in a temporary directory."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from anode.meta.store import MetaStore, open_db


@pytest.fixture
def meta(tmp_path):
    store = MetaStore(open_db(tmp_path / "meta"))
    yield store
    store.close()


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
