"""Parquet execution: column pruning, row-group skipping by statistics, vectorized prefilter.

Three layers of pushdown, each conservative (it may keep rows the WHERE clause rejects, never the
reverse), because the exact WHERE is always re-evaluated per record by `evaluate` afterwards:

1. only the top-level columns the query names are read (column chunks of others are never
   fetched);
2. a row group whose min/max/null-count statistics prove the WHERE clause false for every row is
   skipped without reading any of its bytes;
3. inside a kept row group, the translatable part of WHERE runs as a `pyarrow.compute` filter so
   that only surviving rows are converted to Python.

Page-level skipping is not done: pyarrow (26) does not expose the page index to its readers.
"""

from __future__ import annotations

import datetime as dt
import decimal
import io
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.acero  # Table.filter imports it at first use: ~70 ms of a query
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import ast
from .errors import SelectError
from .evaluate import like_pattern, lookup
from .inputs import BATCH_RECORDS, ByteCounters, RangeSource, navigate
from .vector import Frame

FRAME_ROWS = 1 << 16  # rows per vectorized batch


class SourceFile(io.RawIOBase):
    """A read-only, seekable file over a `RangeSource`, counting the bytes it reads."""

    def __init__(self, source: RangeSource, counters: ByteCounters) -> None:
        self.source = source
        self.counters = counters
        self.pos = 0
        self.reads: list[tuple[int, int]] = []

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.source.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = self.source.size - self.pos
        size = min(size, max(0, self.source.size - self.pos))
        if size == 0:
            return b""
        data = self.source.read_range(self.pos, size)
        self.reads.append((self.pos, len(data)))
        self.counters.scanned += len(data)
        self.pos += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def resolve_column(step: ast.PathStep, names: list[str]) -> str | None:
    if step.name is None:
        return None
    if step.name in names:
        return step.name
    if not step.quoted:
        low = step.name.lower()
        for name in names:
            if name.lower() == low:
                return name
    return None


def needed_columns(query: ast.Query, names: list[str]) -> list[str] | None:
    """Top-level columns the query touches, or None for all (``SELECT *``, whole records)."""
    if not query.items or query.from_path:
        return None
    nodes: list[ast.Node] = [item.expr for item in query.items]
    if query.where is not None:
        nodes.append(query.where)
    wanted: set[str] = set()
    for root in nodes:
        for node in ast.walk(root):
            if isinstance(node, ast.Path):
                if not node.steps:
                    return None
                name = resolve_column(node.steps[0], names)
                if name is not None:
                    wanted.add(name)
    return [name for name in names if name in wanted]


# -- row-group statistics ---------------------------------------------------------------------
class _Stats:
    __slots__ = ("max", "min", "null_count", "num_rows")

    def __init__(self, mn: Any, mx: Any, null_count: int | None, num_rows: int) -> None:
        self.min, self.max, self.null_count, self.num_rows = mn, mx, null_count, num_rows


def row_group_stats(metadata: pq.FileMetaData, index: int) -> dict[str, _Stats]:
    rg = metadata.row_group(index)
    out: dict[str, _Stats] = {}
    for j in range(rg.num_columns):
        col = rg.column(j)
        path = col.path_in_schema
        if "." in path:
            continue  # nested leaves: no pruning on them
        stats = col.statistics
        if stats is None:
            continue
        null_count = stats.null_count if stats.has_null_count else None
        mn = mx = None
        if stats.has_min_max:
            mn, mx = _normalize(stats.min), _normalize(stats.max)
        out[path] = _Stats(mn, mx, null_count, rg.num_rows)
    return out


def _normalize(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return None
    return value


def _family(value: Any) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "num"
    if isinstance(value, str):
        return "str"
    if isinstance(value, dt.datetime):
        return "ts"
    return None


_FLIP = {"=": "=", "<>": "<>", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


def _column_literal(node: ast.Binary, names: list[str]) -> tuple[str, str, Any] | None:
    """``(column, op, literal)`` for ``col op lit`` or ``lit op col``, else None."""
    left, right, op = node.left, node.right, node.op
    if isinstance(left, ast.Literal) and isinstance(right, ast.Path):
        left, right, op = right, left, _FLIP[op]
    if isinstance(left, ast.Path) and isinstance(right, ast.Literal) and len(left.steps) == 1:
        column = resolve_column(left.steps[0], names)
        if column is not None and _family(right.value) is not None:
            return column, op, right.value
    return None


def may_match(node: ast.Node | None, stats: dict[str, _Stats], names: list[str]) -> bool:
    """False only when the statistics prove that no row of the row group satisfies ``node``."""
    if node is None:
        return True
    if isinstance(node, ast.Binary):
        if node.op == "AND":
            return may_match(node.left, stats, names) and may_match(node.right, stats, names)
        if node.op == "OR":
            return may_match(node.left, stats, names) or may_match(node.right, stats, names)
        if node.op in _FLIP:
            hit = _column_literal(node, names)
            if hit is None:
                return True
            column, op, value = hit
            st = stats.get(column)
            if st is None:
                return True
            if st.null_count is not None and st.null_count == st.num_rows:
                return False  # all NULL: no comparison can be true
            if not _comparable(st, value):
                return True
            return _range_may_satisfy(st.min, st.max, op, value)
        return True
    if isinstance(node, ast.Between) and not node.negated:
        lo = ast.Binary(">=", node.operand, node.low)
        hi = ast.Binary("<=", node.operand, node.high)
        return may_match(lo, stats, names) and may_match(hi, stats, names)
    if isinstance(node, ast.InList) and not node.negated:
        return any(
            may_match(ast.Binary("=", node.operand, item), stats, names) for item in node.items
        )
    if isinstance(node, ast.IsCheck) and node.kind == "NULL" and isinstance(node.operand, ast.Path):
        if len(node.operand.steps) != 1:
            return True
        column = resolve_column(node.operand.steps[0], names)
        st = stats.get(column) if column else None
        if st is None or st.null_count is None:
            return True
        return st.null_count < st.num_rows if node.negated else st.null_count > 0
    if isinstance(node, ast.Like) and not node.negated:
        return _like_may_match(node, stats, names)
    return True


def _comparable(st: _Stats, value: Any) -> bool:
    fam = _family(value)
    return (
        st.min is not None
        and st.max is not None
        and _family(st.min) == fam
        and _family(st.max) == fam
        and fam not in (None, "bool")
    )


def _range_may_satisfy(mn: Any, mx: Any, op: str, v: Any) -> bool:
    try:
        if op == "=":
            return mn <= v <= mx
        if op == "<>":
            return not (mn == mx == v)
        if op == "<":
            return mn < v
        if op == "<=":
            return mn <= v
        if op == ">":
            return mx > v
        if op == ">=":
            return mx >= v
    except TypeError:
        return True
    return True


def _like_may_match(node: ast.Like, stats: dict[str, _Stats], names: list[str]) -> bool:
    if not (isinstance(node.operand, ast.Path) and isinstance(node.pattern, ast.Literal)):
        return True
    if node.escape is not None or len(node.operand.steps) != 1:
        return True
    pattern = node.pattern.value
    if not isinstance(pattern, str):
        return True
    prefix = ""
    for ch in pattern:
        if ch in "%_":
            break
        prefix += ch
    column = resolve_column(node.operand.steps[0], names)
    st = stats.get(column) if column else None
    if not prefix or st is None or not isinstance(st.min, str) or not isinstance(st.max, str):
        return True
    # some value v with v.startswith(prefix) must fit in [min, max]
    return st.max >= prefix and st.min[: len(prefix)] <= prefix


# -- vectorized prefilter ---------------------------------------------------------------------
def arrow_filter(
    node: ast.Node | None, schema: pa.Schema, *, exact: bool = False
) -> pc.Expression | None:
    """A `pyarrow.compute` expression keeping a superset of the rows ``node`` accepts.

    With ``exact``, the expression must keep exactly those rows (None if it cannot), which lets
    aggregates run vectorized without a per-record re-check.
    """
    if node is None:
        return None
    names = schema.names

    def sub(child: ast.Node) -> pc.Expression | None:
        return arrow_filter(child, schema, exact=exact)

    if isinstance(node, ast.Binary):
        if node.op == "AND":
            a, b = sub(node.left), sub(node.right)
            if a is None or b is None:  # dropping a conjunct widens: fine unless exact
                return None if exact else (a if b is None else b)
            return a & b
        if node.op == "OR":
            a, b = sub(node.left), sub(node.right)
            return None if a is None or b is None else a | b
        if node.op in _FLIP:
            hit = _column_literal(node, names)
            if hit is None:
                return None
            column, op, value = hit
            arrow_type = schema.field(column).type
            if not _arrow_type_matches(arrow_type, value):
                return None
            if op == "<>" and pa.types.is_floating(arrow_type):
                return None  # NaN <> x is true in Arrow, unknown in SQL
            field = pc.field(column)
            return {
                "=": field == value,
                "<>": field != value,
                "<": field < value,
                "<=": field <= value,
                ">": field > value,
                ">=": field >= value,
            }[op]
        return None
    if isinstance(node, ast.Between) and not node.negated:
        a = sub(ast.Binary(">=", node.operand, node.low))
        b = sub(ast.Binary("<=", node.operand, node.high))
        return None if a is None or b is None else a & b
    if isinstance(node, ast.InList) and not node.negated:
        parts = [sub(ast.Binary("=", node.operand, item)) for item in node.items]
        if any(p is None for p in parts):
            return None
        out = parts[0]
        for p in parts[1:]:
            out = out | p
        return out
    if (
        isinstance(node, ast.IsCheck)
        and node.kind == "NULL"
        and isinstance(node.operand, ast.Path)
        and len(node.operand.steps) == 1
    ):
        column = resolve_column(node.operand.steps[0], names)
        if column is not None:
            field = pc.field(column)
            return field.is_valid() if node.negated else field.is_null()
    if (
        isinstance(node, ast.Like)
        and not node.negated
        and node.escape is None
        and isinstance(node.operand, ast.Path)
        and isinstance(node.pattern, ast.Literal)
        and len(node.operand.steps) == 1
        and isinstance(node.pattern.value, str)
        and "\\" not in node.pattern.value  # Arrow's LIKE escapes with a backslash; SQL's doesn't
    ):
        column = resolve_column(node.operand.steps[0], names)
        if column is not None and pa.types.is_string(schema.field(column).type):
            like_pattern(node.pattern.value, None)  # validates the pattern
            return pc.match_like(pc.field(column), node.pattern.value)
    return None


def _arrow_type_matches(arrow_type: pa.DataType, value: Any) -> bool:
    fam = _family(value)
    if fam == "num":
        return pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type)
    if fam == "str":
        return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)
    return False


# -- the scan -----------------------------------------------------------------------------------
class ParquetScan:
    """Plans and runs the read of one Parquet object; `batches` yields lists of row dicts."""

    def __init__(
        self,
        query: ast.Query,
        source: RangeSource,
        metadata: pq.FileMetaData,
        counters: ByteCounters,
        *,
        pushdown: bool = True,
        column_pruning: bool = True,
    ) -> None:
        self.query = query
        self.metadata = metadata
        self.counters = counters
        self.file = SourceFile(source, counters)
        try:
            self.schema = metadata.schema.to_arrow_schema()
        except (pa.ArrowException, ValueError) as exc:
            raise SelectError("UnsupportedParquetType", str(exc)) from exc
        names = self.schema.names
        self.columns = needed_columns(query, names) if column_pruning else None
        self.row_groups = [
            i
            for i in range(metadata.num_row_groups)
            if not pushdown or may_match(query.where, row_group_stats(metadata, i), names)
        ]
        self.skipped_row_groups = metadata.num_row_groups - len(self.row_groups)
        read_schema = (
            self.schema
            if self.columns is None
            else pa.schema([self.schema.field(c) for c in self.columns])
        )
        self.filter = arrow_filter(query.where, read_schema) if pushdown else None
        self.exact_filter = arrow_filter(query.where, read_schema, exact=True) if pushdown else None

    def vectorizable(self, nodes: list[ast.Aggregate]) -> list[str | None] | None:
        """Columns of ``nodes`` (None for COUNT(*)) when the aggregates and WHERE can run in
        `pyarrow.compute` exactly; None when some part needs the per-record evaluator."""
        if self.query.from_path or (self.query.where is not None and self.exact_filter is None):
            return None
        columns: list[str | None] = []
        for node in nodes:
            if node.arg is None:
                columns.append(None)
                continue
            if not isinstance(node.arg, ast.Path) or len(node.arg.steps) != 1:
                return None
            name = resolve_column(node.arg.steps[0], self.schema.names)
            if name is None:
                return None
            kind = self.schema.field(name).type
            # floats are left to the vectorized evaluator, which sums them in row order (as
            # the per-record fold does) and knows NaN and -0.0; pc.sum adds pairwise
            integer = pa.types.is_integer(kind) and kind != pa.uint64()
            if node.name in ("SUM", "AVG") and not integer:
                return None
            if node.name in ("MIN", "MAX") and not (
                integer or pa.types.is_string(kind) or pa.types.is_timestamp(kind)
            ):
                return None
            columns.append(name)
        return columns

    def aggregate_partials(
        self, nodes: list[ast.Aggregate], columns: list[str | None]
    ) -> Iterator[list[tuple[int, int, Any]]]:
        """Per row group: ``(aggregate index, non-null count, partial value)`` triples."""
        pf = pq.ParquetFile(self.file, metadata=self.metadata, pre_buffer=True)
        for index in self.row_groups:
            try:
                table = pf.read_row_group(index, columns=self.columns)
            except (OSError, pa.ArrowException) as exc:
                raise SelectError("ParquetParsingError", str(exc)) from exc
            if self.exact_filter is not None:
                table = table.filter(self.exact_filter)
            table = _utc_timestamps(table)
            out: list[tuple[int, int, Any]] = []
            for i, (node, column) in enumerate(zip(nodes, columns, strict=True)):
                if column is None:
                    out.append((i, table.num_rows, None))
                    continue
                values = table.column(column)
                count = len(values) - values.null_count
                if node.name in ("SUM", "AVG"):
                    out.append((i, count, _exact_sum(values)))
                elif node.name in ("MIN", "MAX"):
                    extremes = pc.min_max(values).as_py()
                    out.append((i, count, extremes["min" if node.name == "MIN" else "max"]))
                else:
                    out.append((i, count, None))
            yield out

    def _tables(self) -> Iterator[pa.Table]:
        """The kept row groups, read, prefiltered and with UTC timestamps."""
        try:
            pf = pq.ParquetFile(self.file, metadata=self.metadata, pre_buffer=True)
        except (OSError, pa.ArrowException) as exc:
            raise SelectError("ParquetParsingError", str(exc)) from exc
        for index in self.row_groups:
            try:
                table = pf.read_row_group(index, columns=self.columns)
            except (OSError, pa.ArrowException) as exc:
                raise SelectError("ParquetParsingError", str(exc)) from exc
            rg = self.metadata.row_group(index)
            self.counters.processed += sum(
                rg.column(j).total_uncompressed_size
                for j in range(rg.num_columns)
                if self.columns is None or rg.column(j).path_in_schema.split(".")[0] in self.columns
            )
            if self.filter is not None:
                table = table.filter(self.filter)
            yield _utc_timestamps(table)

    def batches(self) -> Iterator[list[Any]]:
        """Lists of row dicts, for the per-record evaluator."""
        for table in self._tables():
            for batch in table.to_batches(max_chunksize=BATCH_RECORDS):
                rows = batch.to_pylist()
                if self.query.from_path:
                    rows = [r for row in rows for r in navigate(row, self.query.from_path)]
                yield rows

    def frames(self) -> Iterator[Frame | list[Any]]:
        """Record batches for the vectorized evaluator (row dicts when FROM has a path)."""
        if self.query.from_path:
            yield from self.batches()
            return
        for table in self._tables():
            names = table.schema.names
            probe = dict(zip(names, range(len(names)), strict=True))

            def resolve(step: ast.PathStep, probe: dict[str, int] = probe) -> Any:
                return lookup(probe, step)

            for batch in table.to_batches(max_chunksize=FRAME_ROWS):
                yield Frame(batch, tuple(names), resolve, _batch_rows, batch.to_pylist)


def _batch_rows(batch: pa.RecordBatch) -> list[Any]:
    return batch.to_pylist()


def _exact_sum(values: pa.ChunkedArray) -> int | None:
    """The sum of integers as Python adds them: pc.sum wraps around past 64 bits."""
    extremes = pc.min_max(values).as_py()
    if extremes["min"] is None:
        return None
    if max(abs(extremes["min"]), abs(extremes["max"])) * len(values) < 2**63:
        return pc.sum(values).as_py()
    return sum(v for v in values.to_pylist() if v is not None)


def _utc_timestamps(table: pa.Table) -> pa.Table:
    """Label naive timestamps as UTC so that they compare with ION timestamp literals."""
    for i, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type) and field.type.tz is None:
            utc = pa.timestamp(field.type.unit, tz="UTC")
            table = table.set_column(i, field.name, table.column(i).cast(utc))
    return table
