"""Put/Get/DeleteBucketLifecycleConfiguration. The rules are stored in the bucket record
(`lifecycle`, through SetBucketConfig); `anode.lifecycle` carries them out on the leader."""

from __future__ import annotations

from aiohttp import web

from ...meta.commands import SetBucketConfig
from .. import lifecycle
from ..context import Context
from ..errors import ErrorCode, S3Error

MAX_LIFECYCLE_BODY = 1024 * 1024
# S3 answers this on Put and Get since 2024; Anode has one storage class, so it is informative.
_MINIMUM_SIZE = {"x-amz-transition-default-minimum-object-size": "all_storage_classes_128K"}


async def put_bucket_lifecycle(ctx: Context) -> web.Response:
    ctx.bucket()
    rules = lifecycle.parse_config(await ctx.read_small_body(MAX_LIFECYCLE_BODY))
    await ctx.node.propose(SetBucketConfig(bucket=ctx.bucket_name, name="lifecycle", value=rules))
    return web.Response(headers=_MINIMUM_SIZE)


async def get_bucket_lifecycle(ctx: Context) -> web.Response:
    rules = ctx.bucket().get("lifecycle")
    if not rules:
        raise S3Error(ErrorCode.NoSuchLifecycleConfiguration, BucketName=ctx.bucket_name)
    return web.Response(body=lifecycle.to_xml(rules), content_type="application/xml",
                        headers=_MINIMUM_SIZE)


async def delete_bucket_lifecycle(ctx: Context) -> web.Response:
    ctx.bucket()
    await ctx.node.propose(SetBucketConfig(bucket=ctx.bucket_name, name="lifecycle", value=None))
    return web.Response(status=204)
