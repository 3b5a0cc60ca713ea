"""Runs a parsed SelectRequest against one object and yields the event-stream response.

The event loop only shuffles bytes: each step (read a batch, filter, project, serialize) runs in
a worker thread of the node's Select executor (its own, so queries never take the threads chunk
reads need), one bounded batch at a time, so a large scan neither blocks other requests nor
holds more than one batch in memory. A `CpuBudget` ends a query that computes too long with
BusyResources (hostile LIKE patterns, huge expressions over large records).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Executor
from typing import Any

import pyarrow as pa

from . import ast, eventstream
from .budget import CpuBudget
from .csv_arrow import csv_frames
from .errors import SelectError
from .evaluate import compile_expr
from .footer_cache import FooterCache
from .inputs import BATCH_RECORDS, ByteCounters, RangeSource, csv_batches, json_batches
from .json_arrow import json_frames
from .outputs import csv_columns_writer, make_writer
from .parquet_scan import ParquetScan
from .request import SelectRequest
from .values import is_absent, to_number, truthy
from .vector import Frame, NotVectorizable, Uncertain
from .vector_plan import Plan

PROGRESS_INTERVAL = 1.0  # seconds between Progress events (when requested)
KEEPALIVE_INTERVAL = 5.0  # seconds without output before a Cont event
DEFAULT_CPU_SECONDS = 120.0  # select.max_query_cpu
_CHECK_ROWS = 63  # records evaluated between budget checks, minus one (a mask)


async def run_select(
    request: SelectRequest,
    source: RangeSource,
    *,
    footer_cache: FooterCache,
    pushdown: bool = True,
    column_pruning: bool = True,
    executor: Executor | None = None,
    cpu_seconds: float = DEFAULT_CPU_SECONDS,
    vectorize: bool = True,
) -> AsyncIterator[bytes]:
    """Yield encoded event-stream messages: Records*, Cont*, Progress*, Stats, End.

    ``vectorize`` False evaluates every record in Python (the reference the vectorized path
    must agree with; tests compare the two).

    A `SelectError` raised before the first message is yielded propagates (so the handler can
    answer an XML error with its HTTP status); once messages have been yielded, errors become an
    event-stream error message and the stream ends.
    """
    counters = ByteCounters()
    budget = CpuBudget(cpu_seconds)
    loop = asyncio.get_running_loop()

    def run(fn: Callable[..., Any], *args: Any) -> Any:
        with budget.step():
            return fn(*args)

    started = False
    try:
        execution = await loop.run_in_executor(
            executor,
            run,
            _Execution,
            request,
            source,
            footer_cache,
            counters,
            pushdown,
            column_pruning,
            budget,
            vectorize,
        )
        last_output = last_progress = time.monotonic()
        while True:
            payload, done = await loop.run_in_executor(executor, run, execution.step)
            now = time.monotonic()
            if payload:
                started = True
                last_output = now
                yield eventstream.records_event(payload)
            elif now - last_output >= KEEPALIVE_INTERVAL:
                started = True
                last_output = now
                yield eventstream.continuation_event()
            if request.request_progress and (done or now - last_progress >= PROGRESS_INTERVAL):
                started = True
                last_progress = now
                yield eventstream.progress_event(
                    counters.scanned, counters.processed, execution.returned
                )
            if done:
                break
        yield eventstream.stats_event(counters.scanned, counters.processed, execution.returned)
        yield eventstream.end_event()
    except SelectError as exc:
        if not started:
            raise
        yield eventstream.error_event(exc.code, exc.message)
    except Exception as exc:  # a bug or an I/O failure: never leave the client hanging
        if not started:
            raise
        yield eventstream.error_event("InternalError", f"{type(exc).__name__}: {exc}")


class _Execution:
    """The synchronous state of one query: input batches in, serialized output out."""

    def __init__(
        self,
        request: SelectRequest,
        source: RangeSource,
        footer_cache: FooterCache,
        counters: ByteCounters,
        pushdown: bool,
        column_pruning: bool,
        budget: CpuBudget,
        vectorize: bool = True,
    ) -> None:
        query = request.query
        self.check = check = budget.check
        self.query = query
        self.returned = 0
        self.emitted = 0
        self.scan: ParquetScan | None = None
        if request.input_format == "PARQUET":
            metadata = footer_cache.metadata(source)
            self.scan = ParquetScan(
                query,
                source,
                metadata,
                counters,
                pushdown=pushdown,
                column_pruning=column_pruning,
            )
            self.batches: Iterator[Any] = self.scan.frames() if vectorize else self.scan.batches()
        elif request.input_format == "CSV":
            frames = csv_frames(request, source, counters) if vectorize else None
            self.batches = frames if frames is not None else csv_batches(request, source, counters)
        else:
            frames = json_frames(request, source, counters) if vectorize else None
            self.batches = frames if frames is not None else json_batches(request, source, counters)
        self.where = compile_expr(query.where, check=check) if query.where is not None else None
        self.write = make_writer(
            request.output_format, request.csv_output, request.json_record_delimiter
        )
        self.write_columns = (
            csv_columns_writer(request.csv_output) if request.output_format == "CSV" else None
        )
        self.aggregates: Aggregation | None = Aggregation(query, check) if query.aggregate else None
        self.project = None if query.aggregate else _projector(query, check)
        self.plans: dict[Any, Plan | None] = {}
        self.pending: deque[list[Any]] = deque()
        self.frames = self.fallbacks = 0  # batches vectorized / replayed per record
        self.vectorized = False
        if self.scan is not None and self.aggregates is not None and pushdown and vectorize:
            columns = self.scan.vectorizable(self.aggregates.nodes)
            if columns is not None:  # aggregates computed by pyarrow.compute per row group
                self.batches = self.scan.aggregate_partials(self.aggregates.nodes, columns)
                self.vectorized = True

    def step(self) -> tuple[bytes, bool]:
        """Process one input batch; returns (serialized records, finished)."""
        batch = self.pending.popleft() if self.pending else next(self.batches, None)
        if batch is None:
            return self._finish(), True
        if isinstance(batch, Frame):
            done = self._vector_step(batch)
            if done is not None:
                self.frames += 1
                return done
            self.fallbacks += 1
            rows = batch.replay()  # per record, in the batch sizes of the row readers
            batch = rows[:BATCH_RECORDS]
            self.pending.extend(
                rows[i : i + BATCH_RECORDS] for i in range(BATCH_RECORDS, len(rows), BATCH_RECORDS)
            )
        where, write, limit = self.where, self.write, self.query.limit
        if self.aggregates is not None:
            if self.vectorized:
                self.aggregates.merge(batch)
            else:
                self.aggregates.update(batch, where)
            return b"", False
        project, check = self.project, self.check
        assert project is not None
        out: list[str] = []
        for i, row in enumerate(batch):
            if not i & _CHECK_ROWS:
                check()
            if limit is not None and self.emitted >= limit:
                break
            if where is not None and not truthy(where(row)):
                continue
            out.append(write(project(row)))
            self.emitted += 1
        payload = "".join(out).encode()
        self.returned += len(payload)
        return payload, limit is not None and self.emitted >= limit

    def _vector_step(self, frame: Frame) -> tuple[bytes, bool] | None:
        """The batch evaluated by `Plan`; None when it must be replayed per record."""
        plan = self._plan(frame)
        if plan is None:
            return None
        self.check()
        limit = self.query.limit
        try:
            if self.aggregates is not None:
                self.aggregates.apply(plan.aggregate(frame.batch))
                return b"", False
            left = None if limit is None else max(0, limit - self.emitted)
            if self.write_columns is not None:
                count, columns = plan.columns(frame, left)
                text = self.write_columns(columns, count)
            else:
                records = plan.records(frame, left)
                count, write = len(records), self.write
                text = "".join([write(record) for record in records])
        except (Uncertain, pa.ArrowException):  # Arrow lacks a kernel: per record, exactly
            return None
        self.check()
        payload = text.encode()
        self.emitted += count
        self.returned += len(payload)
        return payload, limit is not None and self.emitted >= limit

    def _plan(self, frame: Frame) -> Plan | None:
        if frame.layout not in self.plans:
            names = [output_name(item, i) for i, item in enumerate(self.query.items)]
            nodes = self.aggregates.nodes if self.aggregates is not None else None
            try:
                plan: Plan | None = Plan(self.query, frame, names, nodes, self.check)
            except (NotVectorizable, SelectError):
                plan = None
            self.plans[frame.layout] = plan
        return self.plans[frame.layout]

    def _finish(self) -> bytes:
        if self.aggregates is None:
            return b""
        if self.query.limit == 0:
            return b""
        payload = self.write(self.aggregates.result()).encode()
        self.returned += len(payload)
        return payload


def output_name(item: ast.SelectItem, position: int) -> str:
    """JSON key of a projected column: alias, else the last path field, else ``_N``."""
    if item.alias is not None:
        return item.alias
    expr = item.expr
    if isinstance(expr, ast.Path) and expr.steps and expr.steps[-1].name is not None:
        return expr.steps[-1].name
    return f"_{position + 1}"


def _projector(query: ast.Query, check: Callable[[], None]) -> Callable[[Any], Any]:
    if not query.items:
        return lambda row: row
    columns = [
        (output_name(item, i), compile_expr(item.expr, check=check))
        for i, item in enumerate(query.items)
    ]
    return lambda row: [(name, fn(row)) for name, fn in columns]


class Aggregation:
    """Accumulators for the aggregate calls of a query without GROUP BY."""

    def __init__(self, query: ast.Query, check: Callable[[], None]) -> None:
        self.query = query
        self.check = check
        self.nodes: list[ast.Aggregate] = [
            node
            for item in query.items
            for node in ast.walk(item.expr)
            if isinstance(node, ast.Aggregate)
        ]
        self.args = [
            compile_expr(n.arg, check=check) if n.arg is not None else None for n in self.nodes
        ]
        self.count = [0] * len(self.nodes)
        self.acc: list[Any] = [None] * len(self.nodes)

    def update(self, batch: list[Any], where: Callable[[Any], Any] | None) -> None:
        check = self.check
        for n, row in enumerate(batch):
            if not n & _CHECK_ROWS:
                check()
            if where is not None and not truthy(where(row)):
                continue
            for i, node in enumerate(self.nodes):
                arg = self.args[i]
                if arg is None:
                    self.count[i] += 1
                    continue
                value = arg(row)
                if is_absent(value):
                    continue
                self.count[i] += 1
                if node.name != "COUNT":
                    self.acc[i] = _accumulate(node.name, self.acc[i], value)

    def apply(self, updates: list[tuple[int, Callable[[Any], Any] | None]]) -> None:
        """Fold in one batch's updates computed by `Plan.aggregate`."""
        for i, (count, fold) in enumerate(updates):
            self.count[i] += count
            if fold is not None:
                self.acc[i] = fold(self.acc[i])

    def merge(self, partials: list[tuple[int, int, Any]]) -> None:
        """Fold in per-row-group partial results computed by `ParquetScan.aggregate_partials`."""
        for i, count, value in partials:
            self.count[i] += count
            if value is not None:
                self.acc[i] = _accumulate(self.nodes[i].name, self.acc[i], value)

    def result(self) -> list[tuple[str, Any]]:
        values: dict[int, Any] = {}
        for i, node in enumerate(self.nodes):
            if node.name == "COUNT":
                values[id(node)] = self.count[i]
            elif node.name == "AVG":
                values[id(node)] = self.acc[i] / self.count[i] if self.count[i] else None
            else:
                values[id(node)] = self.acc[i]
        return [
            (output_name(item, i), compile_expr(item.expr, values)(None))
            for i, item in enumerate(self.query.items)
        ]


def _accumulate(name: str, acc: Any, value: Any) -> Any:
    if name in ("SUM", "AVG"):
        num = to_number(value)
        if num is None:
            raise SelectError(
                "IncorrectSqlFunctionArgumentType", f"{name} needs numbers, got {value!r}"
            )
        return num if acc is None else acc + num
    if isinstance(value, str):  # CSV fields: compare numerically when they are numbers
        num = to_number(value)
        if num is not None:
            value = num
    if acc is None:
        return value
    try:
        if name == "MIN":
            return value if value < acc else acc
        return value if value > acc else acc
    except TypeError as exc:
        raise SelectError(
            "IncorrectSqlFunctionArgumentType", f"{name} over mixed types {acc!r}, {value!r}"
        ) from exc
