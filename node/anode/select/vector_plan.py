"""A query's WHERE, projections and aggregate arguments compiled for one batch layout.

`Plan` turns a `Frame` into output records (filter, LIMIT, project: in that order, so that
projections are only computed for the rows the per-record engine would project) or into
aggregate updates. Everything here is pure until the caller applies the result, so a batch that
raises `Uncertain` half-way can be replayed per record without double counting.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from . import ast
from .ast import MISSING
from .vector import (
    Compiler,
    Frame,
    NotVectorizable,
    Uncertain,
    V,
    read_numbers,
    to_numeric,
    to_python,
    truth,
)

# One aggregate's update: (rows counted, new accumulator from the old one, or None to keep it)
Update = tuple[int, Callable[[Any], Any] | None]


class Plan:
    def __init__(
        self,
        query: ast.Query,
        frame: Frame,
        names: list[str],
        aggregates: list[ast.Aggregate] | None,
        check: Callable[[], None],
    ) -> None:
        compiler = Compiler(frame, check)
        self.where = compiler.compile(query.where) if query.where is not None else None
        self.items: list[tuple[str, Callable[[pa.RecordBatch], Any]]] | None = None
        self.args: list[Callable[[pa.RecordBatch], V] | None] = []
        if aggregates is not None:
            self.args = [compiler.compile(n.arg) if n.arg is not None else None for n in aggregates]
            self.nodes = aggregates
        elif query.items:
            self.items = [
                (name, _column(compiler, frame, item.expr))
                for name, item in zip(names, query.items, strict=True)
            ]

    def selected(self, batch: pa.RecordBatch, limit: int | None) -> pa.RecordBatch:
        """The rows passing WHERE, at most ``limit`` of them."""
        if self.where is not None:
            keep = truth(self.where(batch))
            if isinstance(keep, pa.Scalar):
                if not keep.as_py():
                    return batch.slice(0, 0)
            else:
                batch = batch.filter(keep)
        if limit is not None and batch.num_rows > limit:
            batch = batch.slice(0, limit)
        return batch

    def records(self, frame: Frame, limit: int | None) -> list[Any]:
        """The output records, as the per-record engine builds them (for any writer)."""
        batch = self.selected(frame.batch, limit)
        if self.items is None:
            if frame.rows is None:
                raise Uncertain("SELECT * over some of the columns")
            return frame.rows(batch)
        columns = [_pylist(values(batch)) for _, values in self.items]
        names = [name for name, _ in self.items]
        return [list(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]

    def columns(self, frame: Frame, limit: int | None) -> tuple[int, list[Any]]:
        """(rows, output columns as Arrow arrays or lists), for the columnar CSV writer."""
        batch = self.selected(frame.batch, limit)
        if self.items is None:
            names = batch.schema.names
            if frame.rows is None or len(set(names)) != len(names):
                raise Uncertain("SELECT * over some (or same-named) columns")
            return batch.num_rows, batch.columns
        return batch.num_rows, [values(batch) for _, values in self.items]

    def aggregate(self, batch: pa.RecordBatch) -> list[Update]:
        batch = self.selected(batch, None)
        updates: list[Update] = []
        for node, arg in zip(self.nodes, self.args, strict=True):
            if arg is None:
                updates.append((batch.num_rows, None))
                continue
            v = arg(batch)
            if isinstance(v.data, pa.Scalar):  # a constant argument: rare, keep it per record
                raise Uncertain("constant aggregate argument")
            count = len(v.data) - v.data.null_count if v.kind != "null" else 0
            if node.name == "COUNT" or count == 0:
                updates.append((count, None))
            elif node.name in ("SUM", "AVG"):
                updates.append((count, _sum(v)))
            else:
                updates.append((count, _extreme(node.name, v)))
        return updates


def _pylist(column: Any) -> list[Any]:
    return column if isinstance(column, list) else column.to_pylist()


def _column(compiler: Compiler, frame: Frame, expr: ast.Node) -> Callable[..., Any]:
    """A projection: a bare column passes through whatever its type; others are compiled."""
    bare = isinstance(expr, ast.Path) and len(expr.steps) == 1 and expr.steps[0].name is not None
    if bare and frame.exact:
        index = frame.resolve(expr.steps[0])
        if index is MISSING:
            raise NotVectorizable("missing column")
        return lambda batch: batch.column(index)
    fn = compiler.compile(expr)

    def column(batch: pa.RecordBatch) -> Any:
        v = fn(batch)
        return to_python(v, batch.num_rows) if isinstance(v.data, pa.Scalar) else v.data

    return column


def _sum(v: V) -> Callable[[Any], Any]:
    v = to_numeric(v)  # text that is not a number: Uncertain (the per-record SUM raises)
    if v.kind not in ("int", "float"):
        raise Uncertain("SUM of non-numbers")
    if v.kind == "int":
        extremes = pc.min_max(v.data).as_py()
        bound = max(abs(extremes["min"]), abs(extremes["max"]))
        if bound * len(v.data) < 2**63:
            total = pc.sum(v.data).as_py()
            values = v.data

            def add(acc: Any) -> Any:
                if acc is None:
                    return total
                if type(acc) is int:
                    return acc + total
                return _fold(acc, values)  # a float so far: add one by one, as rows would

            return add
    values = v.data
    return lambda acc: _fold(acc, values)


def _fold(acc: Any, values: pa.Array) -> Any:
    """Left-to-right addition: float sums depend on the order (rows are added one by one)."""
    for x in values.to_pylist():
        if x is not None:
            acc = x if acc is None else acc + x
    return acc


def _extreme(name: str, v: V) -> Callable[[Any], Any]:
    """The batch's first minimal (maximal) value, merged as the per-record fold would."""
    from .engine import _accumulate  # the one definition of MIN/MAX over mixed values

    data = v.data
    if v.kind == "str":
        nums = read_numbers(data)
        valid = pc.is_valid(data)
        numbers = pc.sum(pc.cast(pc.is_valid(nums.value), pa.int64())).as_py() or 0
        if numbers == 0:  # only text: compared as text
            extremes = pc.min_max(data).as_py()
            best = extremes["min" if name == "MIN" else "max"]
            return lambda acc: _accumulate(name, acc, best)
        if numbers != pc.sum(pc.cast(valid, pa.int64())).as_py():
            raise Uncertain("numbers mixed with text")  # the per-record MIN raises
        floats = nums.value
    elif v.kind in ("int", "float"):
        floats = data
    else:
        raise Uncertain(f"{name} over {v.kind}")
    if v.kind != "int" and pc.any(pc.is_nan(floats)).as_py():
        raise Uncertain("NaN")  # unordered: the result depends on where it sits
    extremes = pc.min_max(floats).as_py()
    target = extremes["min" if name == "MIN" else "max"]
    index = pc.index(floats, target).as_py()  # the first: -0.0 and 0.0 tie
    best = data[index].as_py()
    return lambda acc: _accumulate(name, acc, best)
