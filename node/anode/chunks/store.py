"""Content-addressed chunk files on this node's volume: the one place that knows their layout.

    <data_dir>/chunks/<first 2 hex digits>/<sha256 hex>       a chunk, named by its SHA-256
    <data_dir>/chunks/<first 2 hex digits>/<sha256 hex>.seg   its segment table (`segtable.py`)
    <data_dir>/chunks/tmp/<random>.tmp                        a chunk being written

Nothing is served unverified: a whole chunk is checked against its id, a part of one against the
segment table, which the first partial read makes from a whole verified read (so chunks written
before tables existed need no upgrade step). A failed check calls `on_corrupt`, which the node
wires to an immediate repair (a cluster) or to the list of damaged chunks `anode admin` shows.

A chunk becomes visible only by an atomic rename of a fully written, fsynced temp file, followed
by an fsync of its directory, so a crash leaves either no file or a complete one. A rename onto an
existing chunk replaces identical bytes, which keeps dedup race-free against the collector (see
`gc.py`). All methods are synchronous and meant for worker threads, except pin bookkeeping, which
belongs to the event loop.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import threading
import uuid
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path

from . import segtable

SMALL_CHUNK = 64 * 1024
TABLE_CACHE = 8 * 1024 * 1024  # ~4000 tables of 4 MiB chunks
TABLE_PIECE = 1024 * 1024  # a multiple of segtable.SEGMENT


class SmallChunkCache:
    """LRU of small, verified chunks (thread-safe: worker threads read chunks too)."""

    def __init__(self, *, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.used = 0
        self._items: OrderedDict[bytes, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, digest: bytes) -> bytes | None:
        with self._lock:
            data = self._items.get(digest)
            if data is not None:
                self._items.move_to_end(digest)
            return data

    def put(self, digest: bytes, data: bytes) -> None:
        with self._lock:
            if digest in self._items:
                return
            self._items[digest] = data
            self.used += len(data)
            while self.used > self.max_bytes:
                _, old = self._items.popitem(last=False)
                self.used -= len(old)

    def drop(self, digest: bytes) -> None:
        with self._lock:
            data = self._items.pop(digest, None)
            if data is not None:
                self.used -= len(data)


def cut(data: bytes, offset: int, length: int) -> bytes:
    """`data[offset:offset + length]`, where a negative length means "to the end" (a plain
    slice would drop the last byte: issue 11's unreadable encrypted objects)."""
    return data[offset:] if length < 0 else data[offset : offset + length]


class ChunkMissing(Exception):
    pass


class ChunkCorrupt(Exception):
    pass


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ChunkStore:
    def __init__(self, root: Path, *, cache_bytes: int = 32 * 1024 * 1024) -> None:
        self.root = root
        self.tmp = root / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)
        for i in range(256):
            (root / f"{i:02x}").mkdir(exist_ok=True)
        # Chunks an unfinished write depends on; the collector skips them. Event loop only.
        self.pins: Counter[bytes] = Counter()
        self.small_cache = SmallChunkCache(max_bytes=cache_bytes)
        self.tables = SmallChunkCache(max_bytes=TABLE_CACHE)  # digest -> verified table bytes
        # Told of every chunk that failed verification here (from worker threads).
        self.on_corrupt: Callable[[bytes], None] = lambda digest: None
        # Whether committed metadata refers to a chunk; the node wires in the metadata's answer.
        # The default never lets an abandoned write delete anything.
        self.is_referenced: Callable[[bytes], bool] = lambda digest: True
        # Whether the volume has room for this many more bytes outside its reserve (space.py):
        # copies from peers and repairs must not eat the room deletes and the metadata need.
        self.room_for: Callable[[int], bool] = lambda size: True

    def path(self, digest: bytes) -> Path:
        hexdigest = digest.hex()
        return self.root / hexdigest[:2] / hexdigest

    def table_path(self, digest: bytes) -> Path:
        return self.path(digest).with_suffix(".seg")

    # ---- writing (worker threads) ----------------------------------------------------------

    def new_temp(self) -> tuple[Path, int]:
        path = self.tmp / f"{uuid.uuid4().hex}.tmp"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        return path, fd

    def publish(self, temp: Path, fd: int, digest: bytes) -> None:
        """Make a fully written temp file the durable chunk `digest`."""
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        final = self.path(digest)
        os.rename(temp, final)
        _fsync_dir(final.parent)

    def write(self, digest: bytes, data: bytes) -> None:
        """Store a whole chunk received from elsewhere (a peer or a repair), durably."""
        if not self.room_for(len(data)):
            raise OSError(errno.ENOSPC, "data volume at its reserve (storage.reserve)")
        temp, fd = self.new_temp()
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        except BaseException:
            self.discard(temp, fd)
            raise
        self.publish(temp, fd, digest)

    def discard(self, temp: Path, fd: int | None) -> None:
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)
        temp.unlink(missing_ok=True)

    # ---- reading (worker threads) ----------------------------------------------------------

    def read(self, digest: bytes, offset: int = 0, length: int = -1) -> bytes:
        try:
            with open(self.path(digest), "rb") as f:
                if offset:
                    f.seek(offset)
                return f.read(length)
        except FileNotFoundError:
            raise ChunkMissing(digest.hex()) from None

    def read_verified(self, digest: bytes, *, cached: bool = True) -> bytes:
        """The whole chunk, checked against its id. Small chunks are kept in a bounded cache:
        content-addressed bytes never change, so a cached copy is always the right answer (the
        scrubber passes `cached=False` to look at the disk itself)."""
        if cached:
            hit = self.small_cache.get(digest)
            if hit is not None:
                return hit
        data = self.read(digest)
        if hashlib.sha256(data).digest() != digest:
            self._corrupt(digest)
        if len(data) <= SMALL_CHUNK:
            self.small_cache.put(digest, data)
        return data

    def read_part(
        self, digest: bytes, offset: int, length: int, *, quick: bool = False
    ) -> bytes | None:
        """Bytes [offset, offset + length) of a chunk (a negative length: to its end), verified.

        Reads and hashes only the 64 KiB segments the range covers, against the chunk's segment
        table; the first partial read of a chunk without a table verifies it whole and makes
        one, unless `quick` (the event loop's reads), which then answers None. Raises
        ChunkCorrupt (a damaged or truncated file) or ChunkMissing."""
        cached = self.small_cache.get(digest)
        if cached is not None:
            return cut(cached, offset, length)
        table = self._table(digest)
        if table is None:
            return None if quick else self._first_part(digest, offset, length)
        if not 0 <= offset <= table.size:
            raise ChunkCorrupt(f"{digest.hex()}: offset beyond the chunk's {table.size} bytes")
        # Like a file read, a range past the end is cut at the (verified) end of the chunk.
        length = table.size - offset if length < 0 else min(length, table.size - offset)
        if not length:
            return b""
        start, end = table.span(offset, length)
        data = self.read(digest, start, end - start)
        if not table.verifies(start, data):
            self._corrupt(digest)
        return data[offset - start : offset - start + length]

    def _corrupt(self, digest: bytes) -> None:
        self.on_corrupt(digest)
        raise ChunkCorrupt(digest.hex())

    def _table(self, digest: bytes) -> segtable.SegmentTable | None:
        blob = self.tables.get(digest)
        if blob is None:
            try:
                blob = self.table_path(digest).read_bytes()
            except FileNotFoundError:
                return None
        table = segtable.parse(digest, blob)
        if table is not None:
            self.tables.put(digest, blob)
        return table

    def _first_part(self, digest: bytes, offset: int, length: int) -> bytes:
        """A partial read of a chunk without a table: verify it whole, a piece at a time
        (bounded memory whatever the chunk size), make its table, keep only the range."""
        builder = segtable.Builder()
        end = None if length < 0 else offset + length
        kept: list[bytes] = []
        first = b""
        try:
            with open(self.path(digest), "rb") as f:
                while piece := f.read(TABLE_PIECE):
                    first = first or piece
                    lo = builder.size
                    if offset < lo + len(piece) and (end is None or end > lo):
                        kept.append(piece[max(offset - lo, 0) : None if end is None else end - lo])
                    builder.update(piece)
        except FileNotFoundError:
            raise ChunkMissing(digest.hex()) from None
        blob = builder.table(digest)
        if blob is None:
            self._corrupt(digest)
        assert blob is not None
        if builder.size <= SMALL_CHUNK:  # one piece, the whole chunk: cached like any read
            self.small_cache.put(digest, first)
        self._save_table(digest, blob)
        return b"".join(kept)

    def _save_table(self, digest: bytes, blob: bytes) -> None:
        """Keep a table. Not fsynced: a lost or torn table is remade by the next read."""
        self.tables.put(digest, blob)
        temp = self.tmp / f"{uuid.uuid4().hex}.seg"
        try:
            temp.write_bytes(blob)
            os.rename(temp, self.table_path(digest))
        except OSError:  # a full disk, say: the next read verifies the whole chunk again
            temp.unlink(missing_ok=True)

    def exists(self, digest: bytes) -> bool:
        return self.path(digest).exists()

    # ---- collection ------------------------------------------------------------------------

    def delete(self, digest: bytes) -> None:
        self.small_cache.drop(digest)
        self.table_path(digest).unlink(missing_ok=True)  # first: never a table without a chunk
        self.path(digest).unlink(missing_ok=True)

    def _chunk_entries(self) -> Iterator[os.DirEntry[str]]:
        for i in range(256):
            with os.scandir(self.root / f"{i:02x}") as entries:
                yield from (entry for entry in entries if len(entry.name) == 64)

    def drop_stray_tables(self) -> int:
        """Delete segment tables whose chunk is gone (a read made one while the collector
        removed the chunk). Harmless meanwhile: a table is a function of the chunk id."""
        dropped = 0
        for i in range(256):
            with os.scandir(self.root / f"{i:02x}") as entries:
                for entry in entries:
                    if entry.name.endswith(".seg") and not os.path.exists(entry.path[:-4]):
                        Path(entry.path).unlink(missing_ok=True)
                        dropped += 1
        return dropped

    def all_chunks(self) -> Iterator[tuple[bytes, float]]:
        """(digest, mtime) of every chunk file; for the orphan sweep."""
        for entry in self._chunk_entries():
            try:
                yield bytes.fromhex(entry.name), entry.stat().st_mtime
            except (ValueError, FileNotFoundError):
                continue

    def temp_files(self) -> Iterator[tuple[Path, float]]:
        with os.scandir(self.tmp) as entries:
            for entry in entries:
                try:
                    yield Path(entry.path), entry.stat().st_mtime
                except FileNotFoundError:
                    continue

    def local_stats(self) -> dict[str, int]:
        """Chunk files here and their bytes (a directory walk: for status, not hot paths)."""
        count = size = 0
        for entry in self._chunk_entries():
            try:
                size += entry.stat().st_size
                count += 1
            except FileNotFoundError:
                continue
        return {"chunks": count, "bytes": size}

    def disk_usage(self) -> tuple[int, int]:
        st = os.statvfs(self.root)
        return st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize
