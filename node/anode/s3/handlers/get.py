"""GetObject and HeadObject: conditions, ranges, part numbers, then the bytes."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from ...chunks.reader import ObjectSource, read_range_sync, read_small_inline, stream_range
from .. import sse
from ..conditions import check_read_conditions, parse_range
from ..context import Context
from ..errors import ErrorCode, S3Error
from ..objectmeta import RESPONSE_OVERRIDES, response_headers
from ..versions import find_version, requested_version
from .objectlock import lock_headers

SMALL = 256 * 1024  # read in one go and answer with a plain Response below this
PARQUET_SUFFIXES = (".parquet", ".parq")
INLINE = 64 * 1024  # read in the event loop itself when local (see read_small_inline)


def current_version(ctx: Context) -> dict[str, Any]:
    """The version the request reads: the current one, or the one `?versionId=` names."""
    bucket = ctx.bucket()
    return find_version(ctx, ctx.bucket_name, bucket, ctx.key, requested_version(ctx))


def _part_range(record: dict[str, Any], value: str) -> tuple[int, int]:
    if not value.isdigit() or not 1 <= int(value) <= 10000:
        raise S3Error(
            ErrorCode.InvalidArgument,
            "Part number must be an integer between 1 and 10000",
            ArgumentName="partNumber",
            ArgumentValue=value,
        )
    number = int(value)
    sizes = record.get("parts") or [record["size"]]
    if number > len(sizes):
        raise S3Error(ErrorCode.InvalidPartNumber)
    start = sum(sizes[: number - 1])
    return start, start + sizes[number - 1]


def _part_checksum_headers(record: dict[str, Any], number: int) -> dict[str, str]:
    """A part of a COMPOSITE multipart object answers that part's own checksum (as AWS does, so
    part-wise downloaders can check each part); a FULL_OBJECT one has none per part."""
    part_cks = record.get("part_cks") or []
    if record.get("cktype") != "COMPOSITE" or number > len(part_cks) or not part_cks[number - 1]:
        return {}
    headers = {f"x-amz-checksum-{name.lower()}": value
               for name, value in part_cks[number - 1].items()}
    headers["x-amz-checksum-type"] = "COMPOSITE"
    return headers


async def get_object(ctx: Context) -> web.StreamResponse:
    if "partNumber" in ctx.endpoint.query and "Range" in ctx.headers:  # AWS refuses the pair
        raise S3Error(
            ErrorCode.InvalidRequest,
            "Cannot specify both Range header and partNumber query parameter",
        )
    sse.refuse_write_headers(ctx.headers)
    if ctx.auth is None and any(param in ctx.endpoint.query for param in RESPONSE_OVERRIDES):
        # AWS: response-* overrides need a signed (or presigned) request
        raise S3Error(ErrorCode.InvalidRequest,
                      "Request specific response headers cannot be used for anonymous GET "
                      "requests.")
    record = current_version(ctx)
    chunk_source = sse.reader(
        ctx.node, await sse.for_read(ctx.node, ctx.headers, record.get("sse"))
    )
    check_read_conditions(ctx.headers, record["etag"], record["mtime"])
    size = record["size"]
    part_number = ctx.endpoint.q("partNumber")
    if part_number is not None:
        rng: tuple[int, int] | None = _part_range(record, part_number)
    else:
        rng = parse_range(ctx.headers.get("Range"), size)
    checksum_mode = ctx.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED"
    whole = rng is None or rng == (0, size)
    headers = response_headers(record, checksums=checksum_mode and whole)
    if checksum_mode and part_number is not None and not whole:
        headers.update(_part_checksum_headers(record, int(part_number)))
    headers.update(lock_headers(ctx, record))
    headers.update(sse.response_headers(record.get("sse")))
    for param, header in RESPONSE_OVERRIDES.items():
        value = ctx.endpoint.q(param)
        if value is not None:
            headers[header] = value
    start, end = rng if rng is not None else (0, size)
    status = 200
    if rng is not None and (part_number is None or record.get("parts")):
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    headers["Content-Length"] = str(end - start)
    if ctx.http.method == "HEAD":
        return web.Response(status=status, headers=headers)
    ctx.node.metrics.bytes_out.inc(end - start)
    chunks = record["chunks"]
    data = None
    if rng is not None and ctx.key.endswith(PARQUET_SUFFIXES):
        # Readers (pyarrow, DuckDB, Trino) open a Parquet file by range-reading its footer:
        # serve that from the footer cache instead of the disk.
        source = ObjectSource(chunk_source, ctx.bucket_name, ctx.key, record)
        data = await asyncio.to_thread(
            ctx.node.footer_cache.serve_tail_range, source, start, end - start
        )
    if data is None and end - start <= INLINE:
        data = read_small_inline(chunk_source, chunks, start, end)
    if data is None and end - start <= SMALL:
        data = await asyncio.get_running_loop().run_in_executor(
            None, read_range_sync, chunk_source, chunks, start, end
        )
    if data is not None:
        del headers["Content-Length"]
        return web.Response(status=status, body=data, headers=headers)
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = end - start
    pieces = stream_range(chunk_source, chunks, start, end)
    first = await anext(pieces)  # fail with an S3 error, not a cut connection, if we can
    await response.prepare(ctx.http)
    await response.write(first)
    try:
        async for piece in pieces:
            await response.write(piece)
    except Exception:
        # The status and Content-Length are out: the one honest answer left is a cut
        # connection (the client sees a short body), never an error document in the body.
        if ctx.http.transport is not None:
            ctx.http.transport.abort()
        raise
    await response.write_eof()
    return response


head_object = get_object
