"""Serializes result records to the requested OutputSerialization (CSV or JSON lines)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from .ast import MISSING
from .evaluate import CsvRow
from .request import CsvOutput
from .values import format_timestamp, to_text

# A projected record: (column name, value) pairs; SELECT * passes the source record itself.
Projected = list[tuple[str, Any]]


def make_writer(output_format: str, csv_output: CsvOutput, json_delimiter: str) -> Callable:
    """Return ``write(record) -> str`` for the requested output format."""
    if output_format == "JSON":
        return lambda record: _json_record(record) + json_delimiter
    return _csv_writer(csv_output)


def _csv_writer(opts: CsvOutput) -> Callable[[Any], str]:
    fd, rd, q, esc = (
        opts.field_delimiter,
        opts.record_delimiter,
        opts.quote_character,
        opts.quote_escape_character,
    )
    always = opts.quote_fields == "ALWAYS"
    specials = {fd, q, "\n", "\r", *rd}

    def field(value: Any) -> str:
        text = "" if value is None or value is MISSING else to_text(value)
        if always or any(ch in text for ch in specials):
            return q + text.replace(q, esc + q) + q
        return text

    def write(record: Any) -> str:
        if type(record) is CsvRow:
            values: list[Any] = record.fields
        elif isinstance(record, dict):
            values = list(record.values())
        elif _projected(record):
            values = [value for _, value in record]
        elif isinstance(record, list):  # SELECT * over a JSON array: its items
            values = record
        else:
            values = [record]
        return fd.join(field(v) for v in values) + rd

    return write


def csv_columns_writer(opts: CsvOutput) -> Callable[[list[Any], int], str]:
    """Return ``write(columns, rows) -> str``: the CSV of whole columns (Arrow arrays or lists)
    at once, byte for byte what `_csv_writer` gives for the same records."""
    fd, rd, q, esc = (
        opts.field_delimiter,
        opts.record_delimiter,
        opts.quote_character,
        opts.quote_escape_character,
    )
    always = opts.quote_fields == "ALWAYS"
    specials = sorted({fd, q, "\n", "\r", *rd})

    def quote(text: str) -> str:
        if always or any(ch in text for ch in specials):
            return q + text.replace(q, esc + q) + q
        return text

    def texts(column: Any) -> pa.Array:
        if isinstance(column, (pa.Array, pa.ChunkedArray)):
            kind = column.type
            if pa.types.is_string(kind) or pa.types.is_large_string(kind):
                text = pc.cast(column, pa.string())
            elif pa.types.is_integer(kind) or pa.types.is_boolean(kind):
                text = pc.cast(column, pa.string())  # what str() and to_text() write
            else:  # floats (repr), timestamps, decimals...: Python's own formatting
                text = pa.array([_text(v) for v in column.to_pylist()], pa.string())
            text = pc.fill_null(text, "")
        else:
            text = pa.array([_text(v) for v in column], pa.string())
        if always or any(pc.any(pc.match_substring(text, ch)).as_py() for ch in specials):
            text = pa.array([quote(t) for t in text.to_pylist()], pa.string())
        return text

    def write(columns: list[Any], rows: int) -> str:
        if rows == 0:
            return ""
        arrays = [texts(c) for c in columns]
        lines = arrays[0] if len(arrays) == 1 else pc.binary_join_element_wise(*arrays, fd)
        return rd.join(lines.to_pylist()) + rd

    return write


def _text(value: Any) -> str:
    return "" if value is None or value is MISSING else to_text(value)


def _projected(record: Any) -> bool:
    """A projection's (name, value) pairs, as opposed to a JSON array record (never tuples)."""
    return isinstance(record, list) and bool(record) and type(record[0]) is tuple


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return format_timestamp(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def _json_record(record: Any) -> str:
    if type(record) is CsvRow:
        header = record.header
        names = header.names if header is not None else []
        obj = {
            (names[i] if i < len(names) else f"_{i + 1}"): value
            for i, value in enumerate(record.fields)
        }
    elif isinstance(record, dict):
        obj = record
    elif _projected(record):
        obj = {name: value for name, value in record if value is not MISSING}
    else:
        obj = {"_1": record}
    return json.dumps(obj, default=_json_default, ensure_ascii=False, separators=(",", ":"))
