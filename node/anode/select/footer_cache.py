"""A byte-bounded LRU of parsed Parquet footers, keyed by object version (bucket/key/etag).

Parsing a footer (schema, row-group statistics) costs two range reads and a Thrift decode; an
analytics client touches the same footers again and again. The cache keeps, per object version,
the parsed `FileMetaData` *and* the raw tail bytes of the object, so that plain range GETs of the
footer (how pyarrow, DuckDB and Trino open a Parquet file) are answered from memory too.
"""

from __future__ import annotations

import struct
import threading
from collections import OrderedDict
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from .errors import SelectError
from .inputs import RangeSource

MAGIC = b"PAR1"
# Readers fetch the last 64 KiB first (pyarrow's default footer read size): keep at least that.
TAIL_WINDOW = 64 * 1024
# FileMetaData lives in C++ objects whose size pyarrow does not expose; parsed metadata takes a
# few times its serialized size, so charge this multiple of the footer length against the bound.
PARSED_OVERHEAD = 3


@dataclass(frozen=True)
class FooterEntry:
    metadata: pq.FileMetaData
    object_size: int
    tail: bytes  # the last len(tail) bytes of the object (footer, length, magic, and more)
    charge: int

    @property
    def tail_start(self) -> int:
        return self.object_size - len(self.tail)


class FooterCache:
    """Thread-safe LRU bounded by ``max_bytes`` (the ``[parquet] cache_size`` setting)."""

    def __init__(self, max_bytes: int = 64 << 20) -> None:
        self.max_bytes = max_bytes
        self.used_bytes = 0
        self.hits = 0  # footer lookups answered from memory
        self.misses = 0  # footer lookups that read and parsed the footer
        self.range_hits = 0  # plain range GETs answered from a cached tail
        self._entries: OrderedDict[str, FooterEntry] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def _get(self, cache_key: str) -> FooterEntry | None:
        with self._lock:
            entry = self._entries.get(cache_key)
            if entry is not None:
                self._entries.move_to_end(cache_key)
                self.hits += 1
            else:
                self.misses += 1
            return entry

    def entry(self, source: RangeSource) -> FooterEntry:
        """The footer of ``source``, read and parsed on a miss (call from a worker thread)."""
        entry = self._get(source.cache_key)
        if entry is None:
            entry = load_footer(source)
            self._put(source.cache_key, entry)
        return entry

    def metadata(self, source: RangeSource) -> pq.FileMetaData:
        return self.entry(source).metadata

    def cached_range(self, cache_key: str, start: int, length: int) -> bytes | None:
        """Bytes ``[start, start+length)`` if they lie in a cached tail, else None (no I/O)."""
        with self._lock:
            entry = self._entries.get(cache_key)
            if entry is None or start < entry.tail_start or length < 0:
                return None
            if start + length > entry.object_size:
                return None
            self._entries.move_to_end(cache_key)
            self.range_hits += 1
        offset = start - entry.tail_start
        return entry.tail[offset : offset + length]

    def serve_tail_range(self, source: RangeSource, start: int, length: int) -> bytes | None:
        """For plain range GETs: serve a range inside the last TAIL_WINDOW bytes of a Parquet
        object from memory, loading its footer on first use. None when not applicable (not in
        the tail window, or not a Parquet object)."""
        if start < max(0, source.size - TAIL_WINDOW) or start + length > source.size:
            return None
        data = self.cached_range(source.cache_key, start, length)
        if data is not None:
            return data
        try:
            self.entry(source)
        except SelectError:
            return None
        return self.cached_range(source.cache_key, start, length)

    def _put(self, cache_key: str, entry: FooterEntry) -> None:
        if entry.charge > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(cache_key, None)
            if old is not None:
                self.used_bytes -= old.charge
            self._entries[cache_key] = entry
            self.used_bytes += entry.charge
            while self.used_bytes > self.max_bytes and self._entries:
                _, evicted = self._entries.popitem(last=False)
                self.used_bytes -= evicted.charge


def load_footer(source: RangeSource) -> FooterEntry:
    """Read the object's tail (one read in the common case) and parse its footer."""
    size = source.size
    if size < 12:
        raise SelectError("ParquetParsingError", "the object is too small to be Parquet")
    window = min(size, TAIL_WINDOW)
    tail = source.read_range(size - window, window)
    if tail[-4:] != MAGIC:
        raise SelectError("ParquetParsingError", "the object is not a Parquet file")
    footer_len = struct.unpack("<I", tail[-8:-4])[0]
    if footer_len + 12 > size:
        raise SelectError("ParquetParsingError", "the Parquet footer length is invalid")
    if footer_len + 8 > len(tail):
        tail = source.read_range(size - footer_len - 8, footer_len + 8)
    try:
        metadata = pq.read_metadata(pa.BufferReader(MAGIC + tail[-(footer_len + 8) :]))
    except (OSError, pa.ArrowException) as exc:
        raise SelectError("ParquetParsingError", f"invalid Parquet footer: {exc}") from exc
    charge = len(tail) + PARSED_OVERHEAD * footer_len
    return FooterEntry(metadata=metadata, object_size=size, tail=tail, charge=charge)
