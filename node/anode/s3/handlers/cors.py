"""Put/Get/DeleteBucketCors, the OPTIONS preflight, and CORS headers on ordinary responses.

The preflight is answered without authentication (browsers send none), from the bucket's rules
only; `cors_headers` is what the app adds to any response to a request that carries `Origin`.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from ...meta.commands import SetBucketConfig
from ...node import Node
from .. import cors
from ..context import Context
from ..errors import ErrorCode, S3Error

MAX_CORS_BODY = 64 * 1024


async def put_bucket_cors(ctx: Context) -> web.Response:
    ctx.bucket()
    rules = cors.parse_config(await ctx.read_small_body(MAX_CORS_BODY))
    await ctx.node.propose(SetBucketConfig(bucket=ctx.bucket_name, name="cors", value=rules))
    return web.Response()


async def get_bucket_cors(ctx: Context) -> web.Response:
    rules = ctx.bucket().get("cors")
    if not rules:
        raise S3Error(ErrorCode.NoSuchCORSConfiguration, BucketName=ctx.bucket_name)
    return web.Response(body=cors.to_xml(rules), content_type="application/xml")


async def delete_bucket_cors(ctx: Context) -> web.Response:
    ctx.bucket()
    await ctx.node.propose(SetBucketConfig(bucket=ctx.bucket_name, name="cors", value=None))
    return web.Response(status=204)


async def preflight(ctx: Context) -> web.Response:
    """OPTIONS: 200 with Access-Control-* headers if a rule allows the request, else 403."""
    origin = ctx.headers.get("Origin")
    if not origin:
        raise S3Error(ErrorCode.BadRequest,
                      "Insufficient information. Origin request header needed.")
    method = ctx.headers.get("Access-Control-Request-Method")
    if method is None or method not in cors.METHODS:
        raise S3Error(ErrorCode.BadRequest, f"Invalid Access-Control-Request-Method: {method}")
    if ctx.endpoint.bucket is None:
        raise S3Error(ErrorCode.CORSResponse, "CORS is not enabled for this bucket.")
    record = ctx.node.meta.bucket(ctx.bucket_name)
    if record is None:
        raise S3Error(ErrorCode.NoSuchBucket, BucketName=ctx.bucket_name)
    if not record.get("cors"):
        raise S3Error(ErrorCode.CORSResponse, "CORS is not enabled for this bucket.")
    rule = cors.find_rule(
        record["cors"], origin=origin, method=method,
        headers=cors.requested_headers(ctx.headers.get("Access-Control-Request-Headers")))
    if rule is None:
        raise S3Error(ErrorCode.CORSResponse)
    return web.Response(headers=cors.response_headers(rule, origin=origin, preflight=True,
                                                      request_headers=ctx.headers))


def cors_headers(node: Node, bucket: str | None, method: str,
                 headers: Mapping[str, str]) -> dict[str, str]:
    """Access-Control-* headers for an ordinary request with `Origin` to a bucket with CORS."""
    origin = headers.get("Origin")
    if not origin or bucket is None or method == "OPTIONS":
        return {}
    record = node.meta.bucket(bucket)
    if record is None or not record.get("cors"):
        return {}
    rule = cors.find_rule(record["cors"], origin=origin, method=method)
    if rule is None:
        return {}
    return cors.response_headers(rule, origin=origin, preflight=False, request_headers=headers)
