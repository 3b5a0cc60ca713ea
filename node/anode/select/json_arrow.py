"""JSON lines input parsed by `pyarrow.json` into `Frame`s, block by block, where that is exact.

Arrow's JSON reader answers a different question than `json.loads` per line, so a block is
only taken from it when the two cannot differ: one object per line (the row count equals the
line count; Arrow would read ``{..} {..}`` as two), no duplicate keys, types that stay put (Arrow
errors on the others). What Arrow does not record is checked per column when a query reads it
(`Frame.exact` False): a null may be JSON null or a missing key (NULL or MISSING), and a double
may have been written as an integer (Arrow widens 1 next to 1.5), so such a column sends the
batch per record; a timestamp-looking string Arrow typed as a timestamp is not read vectorized.
``SELECT *`` replays the block per record (the row dicts keep each line's own keys and order).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.json as pajson

from .ast import PathStep
from .blocks import Rest, block_text, line_blocks
from .evaluate import lookup
from .inputs import BATCH_RECORDS, ByteCounters, RangeSource, _json_lines
from .request import SelectRequest
from .vector import Frame


def json_frames(
    request: SelectRequest, source: RangeSource, counters: ByteCounters
) -> Iterator[Frame | list[Any]] | None:
    """Frames for JSON LINES without a FROM path; None: use `json_batches`."""
    if request.json_type != "LINES" or request.query.from_path:
        return None
    return _frames(request, source, counters)


def _frames(
    request: SelectRequest, source: RangeSource, counters: ByteCounters
) -> Iterator[Frame | list[Any]]:
    for block in line_blocks(request, source, counters):
        if isinstance(block, Rest):
            yield from _batches(_json_lines(block.text()))
            return
        batch = _arrow(block)
        if batch is None:
            yield from _batches(_json_lines(block_text(block)))
        elif batch.num_rows:
            yield _frame(batch, block)


MAX_OPENINGS = 64  # brackets a line may open before it goes per record


def _shallow(data: bytes) -> bool:
    """No line opens more than MAX_OPENINGS objects or arrays (so none nests deeper).

    pyarrow's JSON parser recurses per level: 50,000 nested objects crash the process
    (a segmentation fault, found by test_select_hostile); json.loads answers RecursionError.
    """
    if data.count(b"{") + data.count(b"[") <= MAX_OPENINGS:
        return True
    return all(line.count(b"{") + line.count(b"[") <= MAX_OPENINGS for line in data.split(b"\n"))


def _arrow(data: bytes) -> pa.RecordBatch | None:
    if not _shallow(data):
        return None
    lines = data.count(b"\n") + (not data.endswith(b"\n"))
    try:
        table = pajson.read_json(
            io.BytesIO(data),
            read_options=pajson.ReadOptions(use_threads=False, block_size=len(data) + 1),
        )
    except (pa.ArrowInvalid, pa.ArrowException):  # not one object a line, types change...
        return None
    if table.num_rows != lines:  # blank lines, or two values on one line
        return None
    batches = table.combine_chunks().to_batches()
    return batches[0] if batches else None


def _frame(batch: pa.RecordBatch, data: bytes) -> Frame:
    names = batch.schema.names
    probe = dict(zip(names, range(len(names)), strict=True))

    def resolve(step: PathStep) -> Any:
        return lookup(probe, step)

    def replay() -> list[Any]:
        return list(_json_lines(block_text(data)))

    return Frame(batch, tuple(zip(names, batch.schema.types, strict=True)), resolve, None, replay,
                 exact=False)  # fmt: skip


def _batches(docs: Iterator[Any]) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for doc in docs:
        batch.append(doc)
        if len(batch) >= BATCH_RECORDS:
            yield batch
            batch = []
    if batch:
        yield batch
