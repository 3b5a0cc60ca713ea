"""One command's transaction: the writes of one command, applied as one RocksDB WriteBatch.

`Tx` gives the apply functions (`apply_*`, `version_steps`) a read-your-writes overlay over the
database, counts chunk references, per-bucket usage (quotas) and node totals as they go, and
settles them all in the same batch at `commit`, so a command is all-or-nothing on disk.
`meta/state.py` makes one `Tx` per command and commits it unless the command was rejected.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from rocksdict import Rdict, WriteBatch, WriteOptions

from . import commands as c
from . import layout as L
from . import quota
from .layout import scan

UNSYNCED = WriteOptions()
SYNCED = WriteOptions()
SYNCED.sync = True


class CommandRefused(Exception):
    """Raised by a shared step to turn the whole command into `rejected` (nothing written)."""

    def __init__(self, rejected: c.Rejected) -> None:
        super().__init__(rejected.code)
        self.rejected = rejected


class Tx:
    """One command's writes: a WriteBatch plus a read-your-writes overlay and pending deltas."""

    def __init__(self, db: Rdict) -> None:
        self.db = db
        self.batch = WriteBatch(raw_mode=True)
        self.overlay: dict[bytes, Any] = {}
        self.ref_deltas: dict[bytes, list[int]] = defaultdict(
            lambda: [0, 0]
        )  # digest -> [delta, size]
        self.stats: dict[str, int] = defaultdict(int)
        self.usage: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # bucket -> [objs, bytes]
        # V/ keys this command wrote, by their key's version prefix, so `versions` sees them
        self.version_writes: dict[bytes, set[bytes]] = defaultdict(set)

    def get(self, key: bytes) -> Any:
        if key in self.overlay:
            return self.overlay[key]
        raw = self.db.get(key)
        return None if raw is None else L.unpack(raw)

    def has(self, key: bytes) -> bool:
        if key in self.overlay:
            return self.overlay[key] is not None
        return self.db.get(key) is not None

    def put(self, key: bytes, value: Any) -> None:
        self.overlay[key] = value
        if key.startswith(b"V/"):
            self.version_writes[key[:-8]].add(key)

    def delete(self, key: bytes) -> None:
        self.overlay[key] = None
        if key.startswith(b"V/"):
            self.version_writes[key[:-8]].add(key)

    def versions(self, prefix: bytes) -> list[tuple[bytes, Any]]:
        """(V/ key, record) under one key's version prefix, newest first, with this command's
        own writes applied (a DeleteObjects may touch the same key twice)."""
        found = {raw_key: L.unpack(raw) for raw_key, raw in scan(self.db, prefix)}
        for raw_key in self.version_writes.get(prefix, ()):
            found[raw_key] = self.overlay[raw_key]
        return sorted((k, v) for k, v in found.items() if v is not None)

    def refs(self, chunks: list[list[Any]], delta: int) -> None:
        for digest, size in chunks:
            entry = self.ref_deltas[digest]
            entry[0] += delta
            entry[1] = size

    def stat(self, name: str, delta: int) -> None:
        self.stats[name] += delta

    def count(self, bucket: str, objects: int, size: int) -> None:
        """An object version came (+1, +size) or went: node totals and the bucket's usage."""
        self.stat("objects", objects)
        self.stat("logical_bytes", size)
        entry = self.usage[bucket]
        entry[0] += objects
        entry[1] += size

    def over_quota(self) -> str | None:
        """Why this command's growth breaks a bucket's quota, or None."""
        for bucket, (objects, size) in self.usage.items():
            if objects <= 0 and size <= 0:
                continue
            record = self.get(L.bucket_key(bucket))
            current = self.get(L.usage_key(bucket))
            if record is None or current is None:
                continue
            before = (current[0], current[1])
            why = quota.over_quota(
                record.get("quota"), before=before, after=(before[0] + objects, before[1] + size)
            )
            if why is not None:
                return why
        return None

    def _settle_usage(self) -> None:
        for bucket, (objects, size) in self.usage.items():
            if objects == 0 and size == 0:
                continue
            current = self.get(L.usage_key(bucket))
            if current is None or self.get(L.bucket_key(bucket)) is None:
                continue  # an untracked (pre-quota) bucket, or one this command deleted
            self.put(L.usage_key(bucket), [current[0] + objects, current[1] + size])

    def _settle_refs(self, now_marker: bytes) -> None:
        for digest, (delta, size) in self.ref_deltas.items():
            if delta == 0:
                continue
            current = self.get(L.chunk_key(digest))
            count = (current[0] if current else 0) + delta
            if count < 0:  # pragma: no cover - would mean a bookkeeping bug
                raise AssertionError(f"negative refcount for chunk {digest.hex()}")
            if count == 0:
                self.delete(L.chunk_key(digest))
                self.put(L.garbage_key(digest), now_marker)
                self.stat("chunks", -1)
                self.stat("stored_bytes", -size)
            else:
                if current is None:
                    self.stat("chunks", 1)
                    self.stat("stored_bytes", size)
                self.put(L.chunk_key(digest), [count, size])

    def commit(self) -> None:
        # The garbage marker is empty, not a wall time: deterministic on every replica; the
        # collector pairs it with its own clock when it first sees it (`chunks/gc.py`).
        self._settle_refs(b"")
        self._settle_usage()
        if any(self.stats.values()):
            stats = self.get(L.STATS_KEY) or {}
            for name, delta in self.stats.items():
                stats[name] = stats.get(name, 0) + delta
            self.overlay[L.STATS_KEY] = stats
        for key, value in self.overlay.items():
            if value is None:
                self.batch.delete(key)
            elif key.startswith((L.GARBAGE_PREFIX, L.INLINE_PREFIX)):
                self.batch.put(key, value if isinstance(value, bytes) else L.pack(value))
            else:
                self.batch.put(key, L.pack(value))
        self.db.write(self.batch, UNSYNCED)
