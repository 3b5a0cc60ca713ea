"""CopyObject: a new version sharing the source's chunks (no bytes move), metadata COPY/REPLACE."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from ...chunks.ingest import pinned
from ...meta.commands import PutObject
from .. import xml
from ..conditions import check_read_conditions
from ..context import Context
from ..errors import ErrorCode, S3Error
from ..objectmeta import metadata_from_headers, validate_key
from .put import write_conditions


def copy_source(ctx: Context) -> tuple[str, str, dict[str, Any]]:
    """(bucket, key, record) of `x-amz-copy-source`, checked for access and copy conditions."""
    raw = ctx.headers["x-amz-copy-source"]
    source, _, version = unquote(raw).partition("?versionId=")
    bucket, sep, key = source.lstrip("/").partition("/")
    if not sep or not bucket or not key:
        raise S3Error(
            ErrorCode.InvalidArgument,
            "Copy Source must mention the source bucket and key",
            ArgumentName="x-amz-copy-source",
            ArgumentValue=raw,
        )
    if version and version != "null":
        raise S3Error(ErrorCode.InvalidArgument, "Invalid version id specified")
    ctx.bucket(bucket)
    record = ctx.node.meta.object(bucket, key)
    if record is None:
        raise S3Error(ErrorCode.NoSuchKey, Key=key)
    check_read_conditions(
        ctx.headers,
        record["etag"],
        record["mtime"],
        prefix="x-amz-copy-source-",
        not_modified=ErrorCode.PreconditionFailed,
    )
    return bucket, key, record


async def copy_object(ctx: Context) -> web.Response:
    ctx.bucket()
    validate_key(ctx.key)
    src_bucket, src_key, source = copy_source(ctx)
    directive = ctx.headers.get("x-amz-metadata-directive", "COPY").upper()
    if directive not in ("COPY", "REPLACE"):
        raise S3Error(
            ErrorCode.InvalidArgument,
            "Unknown metadata directive.",
            ArgumentName="x-amz-metadata-directive",
            ArgumentValue=directive,
        )
    record = {k: v for k, v in source.items() if k != "upload_id"}
    if directive == "REPLACE":
        record.update(metadata_from_headers(ctx.headers))
    elif "x-amz-storage-class" in ctx.headers:
        record["class"] = metadata_from_headers(ctx.headers)["class"]
    same = (src_bucket, src_key) == (ctx.bucket_name, ctx.key)
    if same and directive == "COPY" and record.get("class") == source.get("class"):
        raise S3Error(
            ErrorCode.InvalidRequest,
            "This copy request is illegal because it is trying to copy an object to "
            "itself without changing the object's metadata, storage class, website "
            "redirect location or encryption attributes.",
        )
    record.update(mtime=time.time(), owner=ctx.user.name)
    if_match, if_none_match = write_conditions(ctx)
    async with pinned(ctx.node.chunks, record["chunks"]):
        # Re-read under the pin: the source may have been replaced since we looked.
        latest = ctx.node.meta.object(src_bucket, src_key)
        if (
            latest is None
            or latest["etag"] != source["etag"]
            or latest["chunks"] != source["chunks"]
        ):
            raise S3Error(ErrorCode.ConditionalRequestConflict if latest else ErrorCode.NoSuchKey)
        await ctx.node.propose(
            PutObject(
                bucket=ctx.bucket_name,
                key=ctx.key,
                record=record,
                if_match=if_match,
                if_none_match=if_none_match,
            )
        )
    children = [("LastModified", xml.timestamp(record["mtime"])), ("ETag", record["etag"])]
    for algorithm, value in record.get("cks", {}).items():
        children.append((f"Checksum{algorithm}", value))
    body = xml.document("CopyObjectResult", children)
    return web.Response(body=body, content_type="application/xml")
