"""CSV input parsed by `pyarrow.csv` into `Frame`s, block by block, where that is exact.

The object is cut into blocks of whole lines (at most `BLOCK` bytes, so no record in a block can
exceed the 1 MB record limit). A block goes to Arrow's C parser only when its bytes leave no
room for Arrow and the per-record parser (`inputs._csv_fields`) to differ: no quote character,
no comment character, no lone carriage return, no byte-order mark, every record as wide as the
first, valid UTF-8. Any other block is parsed per record by the same code as before, and the
engine evaluates it per record; the header always is. Options Arrow has no equivalent for (a
record delimiter other than newline, a multi-character or non-ASCII field delimiter, quoted
record delimiters) keep the whole object on the per-record reader (`csv_frames` returns None).
"""

from __future__ import annotations

import codecs
import io
import itertools
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from .ast import PathStep
from .evaluate import CsvHeader, CsvRow, lookup
from .inputs import (
    MAX_RECORD_CHARS,
    ByteCounters,
    RangeSource,
    _csv_fields,
    _first_record_text,
    decode_utf8,
    decompress,
    iter_raw,
    scan_window,
)
from .request import CsvInput, SelectRequest
from .vector import Frame

BLOCK = MAX_RECORD_CHARS  # bytes per block: a line that fits is within the record limit
_BOM = codecs.BOM_UTF8


def fast_options(opts: CsvInput) -> bool:
    fd = opts.field_delimiter
    return (
        opts.record_delimiter == "\n"
        and len(fd) == 1
        and fd.isascii()
        and fd not in "\r\n"
        and fd != opts.quote_character
        and not opts.allow_quoted_record_delimiter
        and len(opts.quote_character) <= 1
        and (opts.comments is None or len(opts.comments) == 1)
    )


def csv_frames(
    request: SelectRequest, source: RangeSource, counters: ByteCounters
) -> Iterator[Frame | list[CsvRow]] | None:
    """Frames (or per-record batches for blocks Arrow must not parse); None: use `csv_batches`."""
    opts = request.csv_input
    if not fast_options(opts):
        return None
    return _frames(request, source, counters, opts)


def _frames(
    request: SelectRequest, source: RangeSource, counters: ByteCounters, opts: CsvInput
) -> Iterator[Frame | list[CsvRow]]:
    reader = _BlockReader(opts)
    if opts.file_header_info in ("USE", "IGNORE") and request.scan_start:
        header_row = next(_csv_fields(_first_record_text(request, source, opts), opts), None)
        reader.want_header = False
        if header_row is not None and opts.file_header_info == "USE":
            reader.header = CsvHeader(header_row)
    lo, hi = scan_window(source, request.scan_start, request.scan_end, b"\n")
    raw = decompress(iter_raw(source, lo, hi, counters), request.compression)
    buf = b""
    first = True
    for chunk in raw:
        counters.processed += len(chunk)
        if first:
            first = False
            if chunk.startswith(_BOM):
                chunk = chunk[len(_BOM) :]
        buf += chunk
        while len(buf) >= BLOCK:
            cut = buf.rfind(b"\n", 0, BLOCK) + 1
            if cut == 0:  # a line longer than a block: the rest goes per record
                yield from reader.rest(itertools.chain([buf], raw), counters)
                return
            yield from reader.block(buf[:cut])
            buf = buf[cut:]
    if buf:
        yield from reader.block(buf)


class _BlockReader:
    def __init__(self, opts: CsvInput) -> None:
        self.opts = opts
        self.want_header = opts.file_header_info in ("USE", "IGNORE")
        self.header: CsvHeader | None = None
        self.layouts: dict[int, tuple[Any, Any, Any]] = {}
        fd, q = opts.field_delimiter.encode(), opts.quote_character.encode()
        self.fd = fd
        self.refuse = [b for b in (q, (opts.comments or "").encode()) if b]
        self.parse = pacsv.ParseOptions(
            delimiter=opts.field_delimiter,
            quote_char=False,
            double_quote=False,
            escape_char=False,
            newlines_in_values=False,
            ignore_empty_lines=True,
        )

    def block(self, data: bytes) -> Iterator[Frame | list[CsvRow]]:
        while self.want_header:  # the header line (and blank lines before it) per record
            cut = data.find(b"\n") + 1 or len(data)
            yield from self._python(data[:cut])
            data = data[cut:]
            if not data:
                return
        batch = self._arrow(data)
        if batch is None:
            yield from self._python(data)
        elif batch.num_rows:
            yield self._frame(batch)

    def _arrow(self, data: bytes) -> pa.RecordBatch | None:
        if any(b in data for b in self.refuse) or data.startswith(_BOM):
            return None
        if b"\r" in data and data.count(b"\r") != data.count(b"\r\n"):
            return None  # a lone CR: Arrow ends the record there, the per-record parser doesn't
        start = len(data) - len(data.lstrip(b"\r\n"))
        end = data.find(b"\n", start)
        width = data[start : end if end >= 0 else len(data)].count(self.fd) + 1
        try:
            table = pacsv.read_csv(
                io.BytesIO(data),
                read_options=pacsv.ReadOptions(
                    use_threads=False, autogenerate_column_names=True, block_size=len(data) + 1
                ),
                parse_options=self.parse,
                convert_options=pacsv.ConvertOptions(
                    column_types=_string_types(width), strings_can_be_null=False
                ),
            )
        except (pa.ArrowInvalid, pa.ArrowException):  # ragged rows, bad UTF-8: per record
            return None
        if table.num_columns != width:
            return None
        batches = table.combine_chunks().to_batches()
        if not batches:
            return pa.RecordBatch.from_pylist([])
        return batches[0]

    def _python(self, data: bytes) -> Iterator[list[CsvRow]]:
        text = decode_utf8(iter([data]), ByteCounters(), bom=False)
        yield from self._rows(_csv_fields(text, self.opts))

    def rest(self, chunks: Iterator[bytes], counters: ByteCounters) -> Iterator[list[CsvRow]]:
        def counted() -> Iterator[bytes]:
            first = True
            for chunk in chunks:
                if not first:
                    counters.processed += len(chunk)
                first = False
                yield chunk

        text = decode_utf8(counted(), ByteCounters(), bom=False)
        yield from self._rows(_csv_fields(text, self.opts))

    def _rows(self, records: Iterator[list[str]]) -> Iterator[list[CsvRow]]:
        from .inputs import BATCH_RECORDS

        batch: list[CsvRow] = []
        for fields in records:
            if self.want_header:
                self.want_header = False
                if self.opts.file_header_info == "USE":
                    self.header = CsvHeader(fields)
                continue
            batch.append(CsvRow(fields, self.header))
            if len(batch) >= BATCH_RECORDS:
                yield batch
                batch = []
        if batch:
            yield batch

    def _frame(self, batch: pa.RecordBatch) -> Frame:
        width = batch.num_columns
        if width not in self.layouts:
            header = self.header
            probe = CsvRow(list(range(width)), header)

            def resolve(step: PathStep) -> Any:
                return lookup(probe, step)

            def rows(b: pa.RecordBatch) -> list[Any]:
                columns = [c.to_pylist() for c in b.columns]
                return [CsvRow(list(fields), header) for fields in zip(*columns, strict=True)]

            self.layouts[width] = ((id(header), width), resolve, rows)
        layout, resolve, rows = self.layouts[width]
        return Frame(batch, layout, resolve, rows)


_TYPES: dict[int, dict[str, pa.DataType]] = {}


def _string_types(width: int) -> dict[str, pa.DataType]:
    types = _TYPES.get(width)
    if types is None:
        types = _TYPES[width] = {f"f{i}": pa.string() for i in range(width)}
    return types
