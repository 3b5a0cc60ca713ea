"""Put/Get/DeleteBucketLifecycleConfiguration. The rules are stored in the bucket record
(`lifecycle`, through SetBucketConfig); `anode.lifecycle` carries them out on the leader."""

from __future__ import annotations

import hashlib
from urllib.parse import quote

from aiohttp import web

from ...meta.commands import SetBucketConfig
from .. import lifecycle
from ..conditions import http_date
from ..context import Context
from ..errors import ErrorCode, S3Error
from ..objectmeta import content_md5

MAX_LIFECYCLE_BODY = 1024 * 1024
# S3 answers this on Put and Get since 2024; Anode has one storage class, so it is informative.
_MINIMUM_SIZE = {"x-amz-transition-default-minimum-object-size": "all_storage_classes_128K"}


async def put_bucket_lifecycle(ctx: Context) -> web.Response:
    ctx.bucket()
    body = await ctx.read_small_body(MAX_LIFECYCLE_BODY)
    md5 = content_md5(ctx.headers)
    if md5 is not None and md5 != hashlib.md5(body).digest():
        raise S3Error(ErrorCode.BadDigest)  # rules that are not what the client wrote
    rules = lifecycle.parse_config(body)
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


# Operations whose answer names the current version's expiration (`x-amz-expiration`).
EXPIRATION_OPERATIONS = frozenset({"PutObject", "CopyObject", "CompleteMultipartUpload",
                                   "GetObject", "HeadObject"})


def expiration_header(ctx: Context) -> dict[str, str]:
    """`x-amz-expiration: expiry-date="<HTTP date>", rule-id="<id>"` for the key's current
    version, when an Expiration Days/Date rule selects it (the earliest such rule)."""
    bucket = ctx.node.meta.bucket(ctx.bucket_name)
    rules = (bucket or {}).get("lifecycle")
    if not rules or ctx.endpoint.key is None:
        return {}
    record = ctx.node.meta.object(ctx.bucket_name, ctx.key)
    version_id = ctx.endpoint.q("versionId")
    if record is None or (version_id is not None and record.get("vid", "null") != version_id):
        return {}
    day = ctx.node.config.storage.lifecycle_day_seconds
    due = []
    for rule in rules:
        exp = rule.get("expiration", {})
        if ("days" in exp or "date" in exp) and lifecycle.applies_to(
                rule, ctx.key, size=record["size"], tags=record.get("tags") or []):
            when = (lifecycle.after_days(record["mtime"], exp["days"], day) if "days" in exp
                    else exp["date"])
            due.append((when, rule["id"]))
    if not due:
        return {}
    when, rule_id = min(due)
    return {"x-amz-expiration": f'expiry-date="{http_date(when)}", rule-id="{quote(rule_id)}"'}
