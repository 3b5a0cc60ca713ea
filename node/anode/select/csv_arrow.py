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
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from . import ast
from .ast import MISSING, PathStep
from .blocks import Rest, block_text, line_blocks
from .evaluate import CsvHeader, CsvRow, lookup
from .inputs import ByteCounters, RangeSource, _csv_fields, _first_record_text
from .request import CsvInput, SelectRequest
from .vector import Frame

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
    reader = _BlockReader(opts, request.query)
    if opts.file_header_info in ("USE", "IGNORE") and request.scan_start:
        header_row = next(_csv_fields(_first_record_text(request, source, opts), opts), None)
        reader.want_header = False
        if header_row is not None and opts.file_header_info == "USE":
            reader.header = CsvHeader(header_row)
    for block in line_blocks(request, source, counters):
        if isinstance(block, Rest):  # a line longer than a block: the rest goes per record
            yield from reader._rows(_csv_fields(block.text(), opts))
        else:
            yield from reader.block(block)


class _BlockReader:
    def __init__(self, opts: CsvInput, query: ast.Query) -> None:
        self.opts = opts
        self.query = query
        self.want_header = opts.file_header_info in ("USE", "IGNORE")
        self.header: CsvHeader | None = None
        self.layouts: dict[Any, tuple[Any, Any, Any]] = {}
        self.wanted: dict[int, list[int] | None] = {}
        self._width = 0
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
            yield self._frame(batch, data, self._width)

    def _arrow(self, data: bytes) -> pa.RecordBatch | None:
        if any(b in data for b in self.refuse) or data.startswith(_BOM):
            return None
        if b"\r" in data and data.count(b"\r") != data.count(b"\r\n"):
            return None  # a lone CR: Arrow ends the record there, the per-record parser doesn't
        start = len(data) - len(data.lstrip(b"\r\n"))
        end = data.find(b"\n", start)
        width = data[start : end if end >= 0 else len(data)].count(self.fd) + 1
        self._width = width
        columns = self._columns(width)
        if columns is not None and not data.isascii():
            try:  # Arrow checks only the columns it converts
                data.decode("utf-8")
            except UnicodeDecodeError:
                return None
        try:
            table = pacsv.read_csv(
                io.BytesIO(data),
                read_options=pacsv.ReadOptions(
                    use_threads=False, autogenerate_column_names=True, block_size=len(data) + 1
                ),
                parse_options=self.parse,
                convert_options=pacsv.ConvertOptions(
                    column_types=_string_types(width),
                    strings_can_be_null=False,
                    include_columns=[] if columns is None else [f"f{i}" for i in columns],
                ),
            )
        except (pa.ArrowInvalid, pa.ArrowException):  # ragged rows, bad UTF-8: per record
            return None
        if table.num_columns != (width if columns is None else len(columns)):
            return None
        batches = table.combine_chunks().to_batches()
        if not batches:
            return pa.RecordBatch.from_pylist([])
        return batches[0]

    def _python(self, data: bytes) -> Iterator[list[CsvRow]]:
        yield from self._rows(_csv_fields(block_text(data), self.opts))

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

    def _columns(self, width: int) -> list[int] | None:
        """The columns the query names (None: all of them), so Arrow converts only those."""
        if width not in self.wanted:
            self.wanted[width] = needed_columns(self.query, CsvRow(list(range(width)), self.header))
        return self.wanted[width]

    def _frame(self, batch: pa.RecordBatch, data: bytes, width: int) -> Frame:
        columns = self._columns(width)
        key = (width, None if columns is None else tuple(columns))
        if key not in self.layouts:
            header = self.header
            probe = CsvRow(
                list(range(width)) if columns is None else _positions(columns, width), header
            )

            def resolve(step: PathStep) -> Any:
                index = lookup(probe, step)
                return MISSING if index is None else index

            def rows(b: pa.RecordBatch) -> list[Any]:
                fields = [c.to_pylist() for c in b.columns]
                return [CsvRow(list(record), header) for record in zip(*fields, strict=True)]

            self.layouts[key] = ((id(header), key), resolve, rows if columns is None else None)
        layout, resolve, rows = self.layouts[key]
        return Frame(batch, layout, resolve, rows, lambda: self._replay(data))

    def _replay(self, data: bytes) -> list[CsvRow]:
        return [row for batch in self._python(data) for row in batch]


def needed_columns(query: ast.Query, probe: CsvRow) -> list[int] | None:
    """Indexes of the fields ``query`` names in records like ``probe`` (fields 0..n-1)."""
    if not query.items:
        return None
    roots = [item.expr for item in query.items]
    if query.where is not None:
        roots.append(query.where)
    wanted: set[int] = set()
    for root in roots:
        for node in ast.walk(root):
            if isinstance(node, ast.Path):
                if not node.steps:
                    return None
                index = lookup(probe, node.steps[0])
                if index is not MISSING:
                    wanted.add(index)
    return sorted(wanted) or [0]  # Arrow reads every column when it is asked for none


def _positions(columns: list[int], width: int) -> list[Any]:
    """Field i of a record -> its column in a batch holding only ``columns`` (else None)."""
    where = {c: pos for pos, c in enumerate(columns)}
    return [where.get(i) for i in range(width)]


_TYPES: dict[int, dict[str, pa.DataType]] = {}


def _string_types(width: int) -> dict[str, pa.DataType]:
    types = _TYPES.get(width)
    if types is None:
        types = _TYPES[width] = {f"f{i}": pa.string() for i in range(width)}
    return types
