"""Streaming record readers for CSV and JSON objects read through a `RangeSource`.

Everything here is synchronous and meant to run in a worker thread: a reader is a generator of
record batches, pulled one batch at a time by the engine, so memory stays bounded by one read
chunk plus one batch whatever the object size. Byte counters feed the Stats/Progress events.
"""

from __future__ import annotations

import bz2
import codecs
import json
import zlib
from collections.abc import Iterator
from typing import Any, Protocol

from . import ast
from .ast import MISSING
from .errors import SelectError
from .evaluate import CsvHeader, CsvRow, lookup
from .request import CsvInput, SelectRequest

READ_CHUNK = 1 << 20  # bytes per range read
BATCH_RECORDS = 4096
BATCH_BYTES = 4 << 20  # ...or fewer records when they are wide: bounds memory per batch
MAX_RECORD_CHARS = 1 << 20  # AWS: a record may be at most 1 MB


class RangeSource(Protocol):
    """Random access to one object version's bytes (sync, thread-safe)."""

    size: int
    cache_key: str

    def read_range(self, start: int, length: int) -> bytes: ...


class ByteCounters:
    """BytesScanned (as stored) and BytesProcessed (after decompression)."""

    def __init__(self) -> None:
        self.scanned = 0
        self.processed = 0


# -- bytes ------------------------------------------------------------------------------------
def iter_raw(source: RangeSource, start: int, end: int, counters: ByteCounters) -> Iterator[bytes]:
    """The stored bytes of ``[start, end)`` in READ_CHUNK pieces."""
    pos = start
    while pos < end:
        length = min(READ_CHUNK, end - pos)
        data = source.read_range(pos, length)
        if not data:
            raise SelectError("InternalError", "object shorter than its recorded size")
        counters.scanned += len(data)
        pos += len(data)
        yield data


def decompress(chunks: Iterator[bytes], compression: str) -> Iterator[bytes]:
    """Undo GZIP/BZIP2 (multi-member streams included) incrementally."""
    if compression == "NONE":
        yield from chunks
        return

    def new() -> Any:
        return (
            zlib.decompressobj(16 + zlib.MAX_WBITS)
            if compression == "GZIP"
            else (bz2.BZ2Decompressor())
        )

    dec = new()
    in_member = False  # inside a gzip member / bzip2 stream that has not ended yet
    for chunk in chunks:
        data = chunk
        while data:
            try:
                out = dec.decompress(data)
            except (zlib.error, OSError, ValueError) as exc:
                raise SelectError(
                    "InvalidCompressionFormat", f"the object is not valid {compression}: {exc}"
                ) from exc
            in_member = True
            if out:
                yield out
            if dec.eof:  # a member ended; another may follow (concatenated .gz files)
                data = dec.unused_data
                dec = new()
                in_member = False
            else:
                data = b""
    if in_member:
        raise SelectError("TruncatedInput", "the compressed object ends unexpectedly")


def decode_utf8(
    chunks: Iterator[bytes], counters: ByteCounters, *, bom: bool = True
) -> Iterator[str]:
    """UTF-8 text; a byte-order mark starting the first chunk is dropped when ``bom``."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        first = bom
        for chunk in chunks:
            counters.processed += len(chunk)
            if first and chunk.startswith(codecs.BOM_UTF8):
                chunk = chunk[len(codecs.BOM_UTF8) :]
            first = False
            text = decoder.decode(chunk)
            if text:
                yield text
        tail = decoder.decode(b"", final=True)
        if tail:
            yield tail
    except UnicodeDecodeError as exc:
        raise SelectError("InvalidTextEncoding", f"the object is not valid UTF-8: {exc}") from exc


def scan_window(
    source: RangeSource, start: int | None, end: int | None, delim: bytes
) -> tuple[int, int]:
    """Byte window ``[lo, hi)`` holding exactly the records that *start* inside ScanRange.

    AWS semantics: a record belongs to the range that holds its first byte, and is processed to
    its end even past the range's End (which is inclusive).
    """
    size = source.size
    if start is None and end is None:
        return 0, size
    if start is None:  # only End: the last End bytes
        start, end = max(0, size - (end or 0)), size - 1
    if end is None or end >= size:
        end = size - 1
    lo = start
    if start > 0:
        found = _find_delim(source, max(0, start - len(delim)), delim)
        lo = size if found is None else found + len(delim)
    if lo > end:
        return lo, lo
    found = _find_delim(source, max(lo, end - len(delim) + 1), delim)
    hi = size if found is None else found + len(delim)
    return lo, hi


def _find_delim(source: RangeSource, pos: int, delim: bytes) -> int | None:
    carry = b""
    base = pos
    while pos < source.size:
        data = source.read_range(pos, min(64 * 1024, source.size - pos))
        if not data:
            return None
        buf = carry + data
        idx = buf.find(delim)
        if idx >= 0:
            return base + idx
        keep = len(delim) - 1
        carry = buf[len(buf) - keep :] if keep else b""
        base = pos + len(data) - len(carry)
        pos += len(data)
    return None


def text_stream(
    request: SelectRequest, source: RangeSource, counters: ByteCounters, delim: str
) -> Iterator[str]:
    lo, hi = scan_window(source, request.scan_start, request.scan_end, delim.encode())
    raw = iter_raw(source, lo, hi, counters)
    return decode_utf8(decompress(raw, request.compression), counters)


# -- CSV --------------------------------------------------------------------------------------
def csv_batches(
    request: SelectRequest, source: RangeSource, counters: ByteCounters
) -> Iterator[list[CsvRow]]:
    """Batches of `CsvRow`s, honouring every CSV input option."""
    opts = request.csv_input
    header: CsvHeader | None = None
    want_header = opts.file_header_info in ("USE", "IGNORE")
    if want_header and request.scan_start:  # header comes from the object's first record
        header_row = next(_csv_fields(_first_record_text(request, source, opts), opts), None)
        if header_row is not None and opts.file_header_info == "USE":
            header = CsvHeader(header_row)
        want_header = False
    batch: list[CsvRow] = []
    mark = counters.processed
    stream = text_stream(request, source, counters, opts.record_delimiter)
    for fields in _csv_fields(stream, opts):
        if want_header:
            want_header = False
            if opts.file_header_info == "USE":
                header = CsvHeader(fields)
            continue
        batch.append(CsvRow(fields, header))
        if len(batch) >= BATCH_RECORDS or counters.processed - mark >= BATCH_BYTES:
            yield batch
            batch, mark = [], counters.processed
    if batch:
        yield batch


def _first_record_text(
    request: SelectRequest, source: RangeSource, opts: CsvInput
) -> Iterator[str]:
    counters = ByteCounters()
    end = _find_delim(source, 0, opts.record_delimiter.encode())
    hi = source.size if end is None else end
    return decode_utf8(iter_raw(source, 0, hi, counters), counters)


def _csv_fields(stream: Iterator[str], opts: CsvInput) -> Iterator[list[str]]:
    fd, q, esc = opts.field_delimiter, opts.quote_character, opts.quote_escape_character
    comment = opts.comments
    strip_cr = opts.record_delimiter == "\n"
    split = _split_quoted if opts.allow_quoted_record_delimiter else _split_plain
    for record in split(stream, opts):
        if strip_cr and record.endswith("\r"):
            record = record[:-1]
        if not record or (comment is not None and record.startswith(comment)):
            continue
        if len(record) > MAX_RECORD_CHARS:
            raise SelectError("OverMaxRecordSize")
        if q not in record:
            yield record.split(fd)
        else:
            yield _split_fields(record, fd, q, esc)


def _split_plain(stream: Iterator[str], opts: CsvInput) -> Iterator[str]:
    rd = opts.record_delimiter
    carry = ""
    for text in stream:
        parts = (carry + text).split(rd)
        carry = parts.pop()
        if len(carry) > MAX_RECORD_CHARS:
            raise SelectError("OverMaxRecordSize")
        yield from parts
    if carry:
        yield carry


def _split_quoted(stream: Iterator[str], opts: CsvInput) -> Iterator[str]:
    """Split records on the record delimiter except inside quoted fields."""
    rd, q, esc = opts.record_delimiter, opts.quote_character, opts.quote_escape_character
    buf = ""
    for text in _with_final(stream):
        final = text is None
        if not final:
            buf += text
        start = i = 0
        in_quote = False
        while True:
            if in_quote:
                j = buf.find(q, i)
                if j < 0:
                    break
                if esc != q and j > 0 and buf[j - 1] == esc:
                    i = j + 1
                    continue
                if esc == q and j + 1 >= len(buf) and not final:
                    break  # can't tell yet whether this quote is doubled
                if esc == q and buf.startswith(q, j + 1):
                    i = j + 2
                    continue
                in_quote = False
                i = j + 1
            else:
                jd = buf.find(rd, i)
                jq = buf.find(q, i, jd if jd >= 0 else len(buf))
                if jq >= 0:
                    in_quote = True
                    i = jq + 1
                elif jd >= 0:
                    yield buf[start:jd]
                    start = i = jd + len(rd)
                else:
                    break
        buf = buf[start:]
        if len(buf) > MAX_RECORD_CHARS:
            raise SelectError("OverMaxRecordSize")
        if final and buf:
            yield buf


def _with_final(stream: Iterator[str]) -> Iterator[str | None]:
    yield from stream
    yield None


def _split_fields(record: str, fd: str, q: str, esc: str) -> list[str]:
    fields: list[str] = []
    cur: list[str] = []
    in_quote = False
    i, n = 0, len(record)
    while i < n:
        ch = record[i]
        if in_quote:
            if ch == esc and i + 1 < n and record[i + 1] == q:
                cur.append(q)
                i += 2
                continue
            if ch == q:
                in_quote = False
            else:
                cur.append(ch)
        elif ch == fd:
            fields.append("".join(cur))
            cur = []
        elif ch == q and not cur:  # quotes only open at the start of a field
            in_quote = True
        else:
            cur.append(ch)
        i += 1
    if in_quote:
        raise SelectError("CSVUnescapedQuote", "a quoted field is not terminated")
    fields.append("".join(cur))
    return fields


# -- JSON -------------------------------------------------------------------------------------
def json_batches(
    request: SelectRequest, source: RangeSource, counters: ByteCounters
) -> Iterator[list[Any]]:
    """Batches of records: each JSON value, navigated by the query's FROM path."""
    from_path = request.query.from_path
    stream = text_stream(request, source, counters, "\n")
    docs = _json_lines(stream) if request.json_type == "LINES" else _json_documents(stream)
    batch: list[Any] = []
    mark = counters.processed
    for doc in docs:
        batch.extend(navigate(doc, from_path, top=request.json_type == "DOCUMENT"))
        if len(batch) >= BATCH_RECORDS or counters.processed - mark >= BATCH_BYTES:
            yield batch
            batch, mark = [], counters.processed
    if batch:
        yield batch


def navigate(doc: Any, steps: tuple[ast.PathStep, ...], *, top: bool = False) -> Iterator[Any]:
    """Records selected by ``FROM S3Object[*]<steps>`` within one document."""
    if top and isinstance(doc, list) and not steps:
        yield from doc
        return
    values = [doc]
    for step in steps:
        nxt: list[Any] = []
        for value in values:
            if step.wildcard:
                if isinstance(value, list):
                    nxt.extend(value)
            else:
                item = lookup(value, step)
                if item is not MISSING:
                    nxt.append(item)
        values = nxt
    yield from values


def _json_lines(stream: Iterator[str]) -> Iterator[Any]:
    carry = ""
    for text in _with_final(stream):
        if text is None:
            lines, carry = [carry], ""
        else:
            lines = (carry + text).split("\n")
            carry = lines.pop()
            if len(carry) > MAX_RECORD_CHARS:
                raise SelectError("OverMaxRecordSize")
        for line in lines:
            if line.strip():
                try:
                    yield json.loads(line)
                except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
                    raise SelectError("JSONParsingError", f"invalid JSON line: {exc}") from exc


_WS = " \t\r\n"


def _json_documents(stream: Iterator[str]) -> Iterator[Any]:
    """Concatenated (possibly pretty-printed) JSON values, decoded as they complete."""
    decoder = json.JSONDecoder()
    limit = MAX_RECORD_CHARS * 64
    buf = ""
    # An incomplete value is parsed again only once twice as much text is buffered: re-parsing
    # it after every 1 MiB chunk cost O(size^2) in C, holding the GIL for seconds at a time.
    retry_at = 0
    for text in _with_final(stream):
        final = text is None
        if not final:
            buf += text
        pos = 0
        while True:
            while pos < len(buf) and buf[pos] in _WS:
                pos += 1
            if pos >= len(buf) or (not final and len(buf) - pos < retry_at):
                break
            try:
                value, end = decoder.raw_decode(buf, pos)
            except RecursionError as exc:
                raise SelectError("JSONParsingError", "JSON nested too deep") from exc
            except ValueError as exc:
                if final or len(buf) - pos > limit:
                    raise SelectError("JSONParsingError", f"invalid JSON: {exc}") from exc
                retry_at = min(2 * (len(buf) - pos), limit + 1)
                break
            if end >= len(buf) and not final and not isinstance(value, (dict, list, str)):
                break  # a bare number at the buffer's end may continue in the next chunk
            retry_at = 0
            yield value
            pos = end
        buf = buf[pos:]
