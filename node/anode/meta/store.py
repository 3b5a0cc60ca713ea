"""Read side of the metadata: typed lookups and range scans over the state machine's RocksDB.

Reads never write. They are linearizable once the caller has passed `Node.read_barrier`
(`s3/app.py` takes it before every request except those in `CHECKED_AT_APPLY`); on a single node
every acknowledged command is already applied.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from rocksdict import Options, Rdict

from . import layout as L
from . import quota
from .layout import scan
from .records import CodedRecord
from .state import StateMachine


def open_db(path: Path, *, reserve: int = 0) -> Rdict:
    """Open (or create) a RocksDB. With `reserve` (the volume's free-space reserve, space.py),
    memtables and level sizes are kept within it: a restart replays the WAL into a table file
    of memtable size, and compactions rewrite at most a few of them, both out of the reserve.
    The default 256 MiB reserve gives RocksDB's own defaults (64 MiB memtables)."""
    path.mkdir(parents=True, exist_ok=True)
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    if reserve:
        memtable = min(64 << 20, max(1 << 20, reserve // 4))
        options.set_write_buffer_size(memtable)
        options.set_max_total_wal_size(2 * memtable)
        options.set_target_file_size_base(memtable)
        options.set_max_bytes_for_level_base(4 * memtable)
    return Rdict(str(path), options)


# Buckets and users: read on every request, written rarely. Their decoded records are kept.
_CACHED = (L.BUCKET_PREFIX, b"K/", b"N/")


class MetaStore:
    def __init__(self, db: Rdict) -> None:
        self.db = db
        self.state_machine = StateMachine(db)
        self.state_machine.on_write = self._written
        self._cache: dict[bytes, Any] = {}
        self._generation = 0  # bumped by every write, after it is in the database

    def close(self) -> None:
        self.db.close()

    def _get(self, key: bytes) -> Any:
        raw = self.db.get(key)
        return None if raw is None else L.unpack(raw)

    def _get_cached(self, key: bytes) -> Any:
        """`_get` for `_CACHED` keys; the records returned are shared: never modify them.

        The state machine may write from another thread (Raft's): a value read while a write
        happened is dropped again, so the cache never keeps what a write has replaced.
        """
        try:
            return self._cache[key]
        except KeyError:
            pass
        generation = self._generation
        value = self._get(key)
        self._cache[key] = value
        if generation != self._generation:
            self._cache.pop(key, None)
        return value

    def _written(self, keys: Iterable[bytes] | None) -> None:
        self._generation += 1
        if keys is None:
            self._cache.clear()
            return
        for key in keys:
            if key.startswith(_CACHED):
                self._cache.pop(key, None)

    # buckets
    def bucket(self, name: str) -> dict[str, Any] | None:
        return self._get_cached(L.bucket_key(name))

    def buckets(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for key, raw in scan(self.db, L.BUCKET_PREFIX):
            yield key[len(L.BUCKET_PREFIX) :].decode(), L.unpack(raw)

    def usage(self, name: str) -> tuple[int, int]:
        """(object versions, bytes) the bucket's quota counts; scanned if it is not tracked."""
        counted = self._get(L.usage_key(name))
        if counted is None:
            return quota.scan_usage(self.db, name)
        return counted[0], counted[1]

    def bucket_is_empty(self, name: str) -> bool:
        for _ in scan(self.db, L.object_prefix(name)):
            return False
        for _ in scan(self.db, L.version_prefix(name)):
            return False
        return True

    # objects
    def object(self, bucket: str, key: str) -> dict[str, Any] | None:
        return self._get(L.object_key(bucket, key))

    def objects(
        self, bucket: str, *, prefix: str = "", start: bytes = b""
    ) -> Iterator[tuple[str, bytes]]:
        """(key, raw record) in key order for keys with `prefix`, from the encoded key `start`."""
        base = L.object_prefix(bucket)
        for raw_key, raw in scan(self.db, base + prefix.encode(), base + start):
            yield raw_key[len(base) :].decode(), raw

    # versions
    def key_versions(
        self, bucket: str, key: str, *, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Every version of one key (or the `limit` newest), newest first, delete markers
        included; a key written before its bucket had versioning has one, `null`, in O/."""
        entries = scan(self.db, L.key_versions_prefix(bucket, key))
        found = [L.unpack(raw) for _, raw in itertools.islice(entries, limit)]
        if not found:
            legacy = self.object(bucket, key)
            if legacy is not None:
                found = [{**legacy, "vid": legacy.get("vid", "null")}]
        return found

    def version(self, bucket: str, key: str, version_id: str) -> dict[str, Any] | None:
        return next((v for v in self.key_versions(bucket, key) if v["vid"] == version_id), None)

    def versions(
        self, bucket: str, *, prefix: str = "", start: bytes = b""
    ) -> Iterator[tuple[str, list[dict[str, Any]]]]:
        """(key, its versions newest first) in key order for keys with `prefix`, from the encoded
        key `start`: V/ entries merged with pre-versioning O/ records (the `null` versions)."""
        return _merge_versions(self._v_groups(bucket, prefix, start),
                               self._o_groups(bucket, prefix, start))

    def _v_groups(self, bucket: str, prefix: str, start: bytes
                  ) -> Iterator[tuple[str, list[dict[str, Any]]]]:
        base = L.version_prefix(bucket)
        entries = scan(self.db, base + prefix.encode(), base + start)
        for key, group in itertools.groupby(entries, key=lambda e: e[0][len(base) : -9]):
            yield key.decode(), [L.unpack(raw) for _, raw in group]

    def _o_groups(self, bucket: str, prefix: str, start: bytes
                  ) -> Iterator[tuple[str, list[dict[str, Any]]]]:
        for key, raw in self.objects(bucket, prefix=prefix, start=start):
            record = L.unpack(raw)
            if "vid" not in record:  # records with `vid` mirror a V/ entry
                yield key, [{**record, "vid": "null"}]

    # multipart
    def upload(self, bucket: str, key: str, upload_id: str) -> dict[str, Any] | None:
        return self._get(L.upload_key(bucket, key, upload_id))

    def uploads(
        self, bucket: str, *, prefix: str = ""
    ) -> Iterator[tuple[str, str, dict[str, Any]]]:
        base = L.upload_prefix(bucket)
        for raw_key, raw in scan(self.db, base + prefix.encode()):
            key, upload_id = L.split_upload_key(raw_key, base)
            yield key, upload_id, L.unpack(raw)

    def parts(self, upload_id: str, *, after: int = 0) -> Iterator[tuple[int, dict[str, Any]]]:
        base = L.part_prefix(upload_id)
        for raw_key, raw in scan(self.db, base, L.part_key(upload_id, after + 1)):
            yield int(raw_key[len(base) :]), L.unpack(raw)

    def part(self, upload_id: str, number: int) -> dict[str, Any] | None:
        return self._get(L.part_key(upload_id, number))

    # users
    def user(self, name: str) -> dict[str, Any] | None:
        return self._get_cached(L.user_key(name))

    def user_by_access_key(self, access_key: str) -> dict[str, Any] | None:
        name = self._get_cached(L.access_key_key(access_key))
        return None if name is None else self.user(name)

    def users(self) -> Iterator[dict[str, Any]]:
        for _, raw in scan(self.db, L.USER_PREFIX):
            yield L.unpack(raw)

    # cluster nodes
    def nodes(self) -> dict[str, dict[str, Any]]:
        return {key[len(L.NODE_PREFIX):].decode(): L.unpack(raw)
                for key, raw in scan(self.db, L.NODE_PREFIX)}

    def referenced_chunks(self) -> Iterator[bytes]:
        """Chunks stored as replicated files (inline ones live here, replicated by the log;
        coded ones as fragments: `coded_chunks`)."""
        for key, _ in scan(self.db, L.CHUNK_PREFIX):
            digest = key[len(L.CHUNK_PREFIX):]
            if (self.db.get(L.inline_key(digest)) is None
                    and self.db.get(L.coded_key(digest)) is None):
                yield digest

    def coded_chunks(self) -> Iterator[tuple[bytes, CodedRecord]]:
        """(chunk id, coded record) of every erasure-coded chunk a version refers to."""
        for key, raw in scan(self.db, L.CODED_PREFIX):
            digest = key[len(L.CODED_PREFIX):]
            if self.db.get(L.chunk_key(digest)) is not None:
                yield digest, L.unpack(raw)

    def coded(self, digest: bytes) -> CodedRecord | None:
        """The coded record of a chunk stored as fragments (`erasure.Coded.from_record`)."""
        return self._get(L.coded_key(digest))

    def fragment_owner(self, digest: bytes) -> bytes | None:
        """The chunk a fragment belongs to, if it is one."""
        return self._get(L.fragment_key(digest))

    def inline_chunk(self, digest: bytes) -> bytes | None:
        return self.db.get(L.inline_key(digest))

    # chunks and totals
    def chunk_refs(self, digest: bytes) -> int:
        """Versions and parts referring to a chunk; a fragment counts its chunk's."""
        entry = self._get(L.chunk_key(digest))
        if entry is None:
            owner = self.fragment_owner(digest)
            entry = self._get(L.chunk_key(owner)) if owner is not None else None
        return entry[0] if entry else 0

    def garbage(self) -> Iterator[bytes]:
        for digest, _ in self.garbage_markers():
            yield digest

    def garbage_markers(self) -> Iterator[tuple[bytes, bytes]]:
        """(chunk id, marker): b"" for a count that reached zero, `layout.CODED_MARKER` for a
        chunk coded by a write that has not committed (yet)."""
        for key, value in scan(self.db, L.GARBAGE_PREFIX):
            yield key[len(L.GARBAGE_PREFIX) :], value

    def stats(self) -> dict[str, int]:
        stats = self._get(L.STATS_KEY) or {}
        return {
            name: stats.get(name, 0)
            for name in ("buckets", "objects", "logical_bytes", "stored_bytes", "chunks",
                         "inline_chunks", "coded_chunks", "coded_bytes", "fragment_bytes")
        }

    def master_key(self) -> bytes | None:
        """The SSE-S3 master key the cluster agreed on (InitMasterKey), if any yet."""
        return self._get(L.MASTER_KEY)

    def kms_key(self, name: str) -> dict[str, Any] | None:
        """An SSE-KMS key's record (its material wrapped), if the cluster has one of that name."""
        return self._get(L.kms_key_key(name))

    def kms_keys(self) -> Iterator[dict[str, Any]]:
        for _, raw in scan(self.db, L.KMS_KEY_PREFIX):
            yield L.unpack(raw)

    def applied_index(self) -> int:
        return int(self.db.get(L.APPLIED_KEY) or b"0")


def _merge_versions(
    *streams: Iterator[tuple[str, list[dict[str, Any]]]],
) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Merge key-ordered (key, versions) streams; a key in both (never, by the layout's rule)
    would list its V/ versions first."""
    merged = heapq.merge(*streams, key=lambda group: group[0].encode())
    for key, groups in itertools.groupby(merged, key=lambda group: group[0]):
        yield key, [version for _, versions in groups for version in versions]
