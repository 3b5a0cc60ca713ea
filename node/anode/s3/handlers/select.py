"""SelectObjectContent (``POST /{bucket}/{key}?select&select-type=2``): S3 Select.

The thin shell around `anode.select`: read and validate the request XML, bind the object's
current version as a `RangeSource` over its chunks, then stream the engine's event-stream
messages. Errors found before the first message answer a normal XML error with the S3 Select
code and status; later ones travel inside the stream (the engine does that).
"""

from __future__ import annotations

from aiohttp import web

from ...chunks.reader import ObjectSource
from ...select import SelectError, parse_request, run_select
from .. import sse, xml
from ..context import Context
from .get import current_version

MAX_REQUEST_XML = 1024 * 1024  # the expression may be 256 KB; leave room for the rest


def select_error_response(ctx: Context, error: SelectError) -> web.Response:
    body = xml.document(
        "Error",
        [
            ("Code", error.code),
            ("Message", error.message),
            ("Resource", ctx.http.path),
            ("RequestId", ctx.request_id),
        ],
        namespace=False,
    )
    return web.Response(status=error.status, body=body, headers={"Content-Type": "application/xml"})


async def select_object_content(ctx: Context) -> web.StreamResponse:
    record = current_version(ctx)
    body = await ctx.read_small_body(MAX_REQUEST_XML)
    parquet = ctx.node.config.parquet
    try:
        request = parse_request(body)
        encryption = await sse.for_read(ctx.node, ctx.headers, record.get("sse"))
        source = ObjectSource(sse.reader(ctx.node, encryption), ctx.bucket_name, ctx.key, record)
        messages = run_select(
            request,
            source,
            footer_cache=ctx.node.footer_cache,
            pushdown=parquet.enable_predicate_pushdown,
            column_pruning=parquet.enable_column_pruning,
            executor=ctx.node.select_executor,
            cpu_seconds=ctx.node.config.select.max_query_cpu,
        )
        first = await anext(messages)  # a failure here is still a plain XML error
    except SelectError as error:
        return select_error_response(ctx, error)
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/octet-stream"})
    response.headers["x-amz-request-id"] = ctx.request_id
    response.enable_chunked_encoding()
    await response.prepare(ctx.http)
    sent = len(first)
    await response.write(first)
    async for message in messages:
        sent += len(message)
        await response.write(message)
    await response.write_eof()
    ctx.node.metrics.bytes_out.inc(sent)
    return response
