"""Bucket operations: ListBuckets, CreateBucket, DeleteBucket, HeadBucket, GetBucketLocation."""

from __future__ import annotations

import time

from aiohttp import web

from ...meta.commands import CreateBucket, DeleteBucket
from ...meta.names import valid_bucket_name
from .. import tokens, xml
from ..context import Context
from ..errors import ErrorCode, Refused, S3Error
from .acl import new_bucket_acl, reset_bucket_acl
from .policy import parse_ownership


def validate_bucket_name(name: str) -> None:
    """S3's general-purpose bucket naming rules (`meta/names.py`), refused in S3's shape."""
    if not valid_bucket_name(name):
        raise S3Error(ErrorCode.InvalidBucketName, BucketName=name)


def owner_xml(user_id: str, name: str) -> list[tuple[str, str]]:
    return [("ID", user_id), ("DisplayName", name)]


MAX_BUCKETS = 10000


async def list_buckets(ctx: Context) -> web.Response:
    """Paged as on AWS since 2024: max-buckets (1-10000), continuation-token, prefix,
    bucket-region; a page ends with a ContinuationToken only when more buckets follow."""
    if ctx.user is None:
        raise S3Error(ErrorCode.AccessDenied)
    q = ctx.endpoint.q
    limit = _max_buckets(q("max-buckets"))
    prefix = q("prefix") or ""
    wanted_region = q("bucket-region")
    token = q("continuation-token")
    after = tokens.decode(token) if token else ""
    region = ctx.node.config.node.region
    entries: list[tuple[str, list[tuple[str, str]]]] = []
    next_token = None
    for name, record in ctx.node.meta.buckets():
        bucket_region = record.get("region") or region
        if (name <= after or not name.startswith(prefix) or not ctx.may_access(record)
                or (wanted_region and bucket_region != wanted_region)):
            continue
        if len(entries) == limit:
            next_token = tokens.encode(entries[-1][1][0][1])
            break
        entries.append(("Bucket", [("Name", name),
                                   ("CreationDate", xml.timestamp(record["created"])),
                                   ("BucketRegion", bucket_region)]))
    body = xml.document(
        "ListAllMyBucketsResult",
        [
            ("Owner", owner_xml(ctx.user.id, ctx.user.name)),
            ("Buckets", entries),
            ("ContinuationToken", next_token),
            ("Prefix", prefix or None),
        ],
    )
    return web.Response(body=body, content_type="application/xml")


def _max_buckets(value: str | None) -> int:
    if value is None:
        return MAX_BUCKETS
    if not value.isdigit() or not 1 <= int(value) <= MAX_BUCKETS:
        raise S3Error(
            ErrorCode.InvalidArgument,
            f"max-buckets must be an integer between 1 and {MAX_BUCKETS}",
            ArgumentName="max-buckets",
            ArgumentValue=value,
        )
    return int(value)


async def create_bucket(ctx: Context) -> web.Response:
    name = ctx.bucket_name
    validate_bucket_name(name)
    if ctx.user is None:
        raise S3Error(ErrorCode.AccessDenied)
    ownership = ctx.headers.get("x-amz-object-ownership")
    if ownership is not None:
        ownership = parse_ownership(ownership)
    acl = new_bucket_acl(ctx, ownership)
    region = ctx.node.config.node.region
    body = await ctx.read_small_body(xml.MAX_BODY)
    if body.strip():
        config = xml.parse(body, "CreateBucketConfiguration")
        constraint = xml.text(config, "LocationConstraint")
        if constraint:
            region = constraint
    lock = ctx.headers.get("x-amz-bucket-object-lock-enabled", "").lower() == "true"
    try:
        await ctx.node.propose(
            CreateBucket(bucket=name, owner=ctx.user.name, created=time.time(), region=region,
                         acl=acl, ownership=ownership, object_lock=lock)
        )
    except Refused as e:
        if e.code is not ErrorCode.BucketAlreadyOwnedByYou or region != "us-east-1":
            raise
        await reset_bucket_acl(ctx, acl)
    return web.Response(headers={"Location": f"/{name}"})


async def delete_bucket(ctx: Context) -> web.Response:
    ctx.bucket()
    await ctx.node.propose(DeleteBucket(bucket=ctx.bucket_name, drop_uploads=True))
    return web.Response(status=204)


async def head_bucket(ctx: Context) -> web.Response:
    record = ctx.bucket()
    region = record.get("region") or ctx.node.config.node.region
    return web.Response(
        headers={"x-amz-bucket-region": region, "x-amz-access-point-alias": "false"}
    )


async def get_bucket_location(ctx: Context) -> web.Response:
    record = ctx.bucket()
    region = record.get("region") or ctx.node.config.node.region
    body = (
        xml.HEADER
        + f'<LocationConstraint xmlns="{xml.NS}">'
        + ("" if region == "us-east-1" else region)
        + "</LocationConstraint>"
    ).encode()
    return web.Response(body=body, content_type="application/xml")
