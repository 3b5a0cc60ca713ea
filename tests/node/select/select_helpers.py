"""Shared helpers for the S3 Select unit tests: in-memory sources, request XML, and decoding
responses with botocore's own event-stream parser (what boto3's select_object_content uses)."""

from __future__ import annotations

import asyncio
import io
import threading
from typing import Any
from xml.sax.saxutils import escape

import botocore.session
import pyarrow as pa
import pyarrow.parquet as pq
from botocore.eventstream import EventStream
from botocore.parsers import EventStreamXMLParser

from anode.select import FooterCache, parse_request, run_select


class MemorySource:
    """A `RangeSource` over bytes that records every range read."""

    def __init__(self, data: bytes, cache_key: str = "bucket/key/etag") -> None:
        self.data = data
        self.size = len(data)
        self.cache_key = cache_key
        self.reads: list[tuple[int, int]] = []
        self._lock = threading.Lock()

    def read_range(self, start: int, length: int) -> bytes:
        with self._lock:
            self.reads.append((start, length))
        return self.data[start : start + length]

    @property
    def bytes_read(self) -> int:
        return sum(length for _, length in self.reads)


def request_xml(
    expression: str,
    input_xml: str = "<CSV/>",
    output_xml: str = "<CSV/>",
    *,
    compression: str | None = None,
    extra: str = "",
) -> bytes:
    comp = f"<CompressionType>{compression}</CompressionType>" if compression else ""
    return (
        '<SelectObjectContentRequest xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        f"<Expression>{escape(expression)}</Expression><ExpressionType>SQL</ExpressionType>"
        f"<InputSerialization>{comp}{input_xml}</InputSerialization>"
        f"<OutputSerialization>{output_xml}</OutputSerialization>{extra}"
        "</SelectObjectContentRequest>"
    ).encode()


async def _collect(request: Any, source: Any, **kwargs: Any) -> bytes:
    out = bytearray()
    async for message in run_select(request, source, **kwargs):
        out += message
    return bytes(out)


def raw_response(body: bytes, source: Any, **kwargs: Any) -> bytes:
    kwargs.setdefault("footer_cache", FooterCache())
    return asyncio.run(_collect(parse_request(body), source, **kwargs))


class _RawStream:
    def __init__(self, data: bytes, chunk: int = 7) -> None:
        self.data = data
        self.chunk = chunk

    def stream(self):
        for i in range(0, len(self.data), self.chunk):
            yield self.data[i : i + self.chunk]


_SESSION = botocore.session.get_session()
_MODEL = _SESSION.get_service_model("s3")
_PAYLOAD_SHAPE = _MODEL.operation_model("SelectObjectContent").output_shape.members["Payload"]


def botocore_events(raw: bytes) -> list[dict[str, Any]]:
    """Parse a response body exactly as boto3's select_object_content would."""
    stream = EventStream(
        _RawStream(raw), _PAYLOAD_SHAPE, EventStreamXMLParser(), "SelectObjectContent"
    )
    return list(stream)


def select(body: bytes, source: Any, **kwargs: Any) -> str:
    """Run a query and return the concatenated Records payloads (asserting Stats and End)."""
    events = botocore_events(raw_response(body, source, **kwargs))
    kinds = [next(iter(e)) for e in events]
    assert kinds[-2:] == ["Stats", "End"], kinds
    return b"".join(e["Records"]["Payload"] for e in events if "Records" in e).decode()


def parquet_bytes(table: pa.Table, **kwargs: Any) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, **kwargs)
    return buf.getvalue()


def error_code(body: bytes, source: Any, **kwargs: Any) -> tuple[str, bool]:
    """(code, streamed): the S3 Select error a query ends with, and whether it came as an
    event-stream error message (True) or was raised before the stream started (False)."""
    from botocore.exceptions import EventStreamError

    from anode.select import SelectError

    try:
        raw = raw_response(body, source, **kwargs)
    except SelectError as exc:
        return exc.code, False
    try:
        botocore_events(raw)
    except EventStreamError as exc:
        return exc.response["Error"]["Code"], True
    raise AssertionError("the query did not fail")
