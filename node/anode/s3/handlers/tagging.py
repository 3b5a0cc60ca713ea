"""Object and bucket tags: Put/Get/DeleteObjectTagging (by version too),
Put/Get/DeleteBucketTagging, and the parsing and limits shared with PutObject, CopyObject and
CreateMultipartUpload (`x-amz-tagging`, `x-amz-tagging-directive`).

Tags are stored on the version record (`tags`: [[key, value], ...], absent when none) and on the
bucket record, through the SetObjectTagging / SetBucketTagging commands.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from ...meta.commands import SetBucketTagging, SetObjectTagging
from .. import xml
from ..context import Context
from ..errors import ErrorCode, S3Error
from ..versions import find_version, requested_version, version_header

Tags = tuple[tuple[str, str], ...]

MAX_OBJECT_TAGS = 10
MAX_BUCKET_TAGS = 50
MAX_KEY_CHARS = 128
MAX_VALUE_CHARS = 256


def validate_tags(tags: Tags, *, limit: int) -> Tags:
    """S3's limits: count, unique keys, key/value length in Unicode characters, no `aws:`.

    The tags come back sorted by key: S3 keeps a tag set as a map and answers it in key order."""
    if len(tags) > limit:
        what = "Object tags" if limit == MAX_OBJECT_TAGS else "Bucket tag count"
        raise S3Error(ErrorCode.InvalidTag, f"{what} cannot be greater than {limit}")
    seen: set[str] = set()
    for key, value in tags:
        if not key:
            raise S3Error(ErrorCode.InvalidTag, "The TagKey you have provided is invalid")
        if len(key) > MAX_KEY_CHARS:
            raise S3Error(ErrorCode.InvalidTag, "The TagKey you have provided is too long, max 128",
                          TagKey=key)
        if len(value) > MAX_VALUE_CHARS:
            raise S3Error(ErrorCode.InvalidTag,
                          "The TagValue you have provided is too long, max 256", TagKey=key)
        if key.lower().startswith("aws:"):
            raise S3Error(ErrorCode.InvalidTag, "Your TagKey cannot be prefixed with aws:",
                          TagKey=key)
        if key in seen:
            raise S3Error(ErrorCode.InvalidTag, "Cannot provide multiple Tags with the same key",
                          TagKey=key)
        seen.add(key)
    return tuple(sorted(tags))


def tags_from_header(headers: Mapping[str, str]) -> Tags | None:
    """`x-amz-tagging: k1=v1&k2=v2` (URL-encoded), validated; None when the header is absent."""
    value = headers.get("x-amz-tagging")
    if value is None:
        return None
    pairs = tuple(parse_qsl(value, keep_blank_values=True))
    return validate_tags(pairs, limit=MAX_OBJECT_TAGS)


def apply_tags(record: dict[str, Any], tags: Tags | None) -> None:
    """Set a new version's tags in place (None or empty: none)."""
    record.pop("tags", None)
    if tags:
        record["tags"] = [list(tag) for tag in tags]


def parse_tagging(body: bytes, *, limit: int) -> Tags:
    """A `<Tagging><TagSet><Tag><Key/><Value/></Tag>...</TagSet></Tagging>` request body."""
    doc = xml.parse(body, "Tagging")
    tag_sets = xml.children(doc, "TagSet")
    if len(tag_sets) != 1:
        raise S3Error(ErrorCode.MalformedXML)
    tags = []
    for tag in xml.children(tag_sets[0], "Tag"):
        key, value = xml.text(tag, "Key"), xml.text(tag, "Value")
        if key is None or value is None:
            raise S3Error(ErrorCode.MalformedXML)
        tags.append((key, value))
    return validate_tags(tuple(tags), limit=limit)


def tagging_document(tags: list[list[str]]) -> bytes:
    tag_set = [("Tag", [("Key", key), ("Value", value)]) for key, value in tags]
    return xml.document("Tagging", [("TagSet", tag_set)])


# ---- object tags ------------------------------------------------------------------------------


async def get_object_tagging(ctx: Context) -> web.Response:
    bucket = ctx.bucket()
    record = find_version(ctx, ctx.bucket_name, bucket, ctx.key, requested_version(ctx))
    return web.Response(body=tagging_document(record.get("tags", [])),
                        content_type="application/xml", headers=version_header(record.get("vid")))


async def _set_object_tags(ctx: Context, tags: Tags) -> dict[str, str]:
    bucket = ctx.bucket()
    version_id = requested_version(ctx)
    result = await ctx.node.propose(SetObjectTagging(
        bucket=ctx.bucket_name, key=ctx.key, version_id=version_id, tags=tags))
    vid = result["version_id"]
    if vid is None and (version_id is not None or bucket.get("versioning")):
        vid = "null"
    return version_header(vid)


async def put_object_tagging(ctx: Context) -> web.Response:
    tags = parse_tagging(await ctx.read_small_body(xml.MAX_BODY), limit=MAX_OBJECT_TAGS)
    return web.Response(headers=await _set_object_tags(ctx, tags))


async def delete_object_tagging(ctx: Context) -> web.Response:
    return web.Response(status=204, headers=await _set_object_tags(ctx, ()))


# ---- bucket tags ------------------------------------------------------------------------------


async def get_bucket_tagging(ctx: Context) -> web.Response:
    bucket = ctx.bucket()
    if bucket.get("tags") is None:
        raise S3Error(ErrorCode.NoSuchTagSet, BucketName=ctx.bucket_name)
    return web.Response(body=tagging_document(bucket["tags"]), content_type="application/xml")


async def put_bucket_tagging(ctx: Context) -> web.Response:
    ctx.bucket()
    tags = parse_tagging(await ctx.read_small_body(xml.MAX_BODY), limit=MAX_BUCKET_TAGS)
    # An empty tag set removes the tags, as in S3 (GetBucketTagging then answers NoSuchTagSet).
    await ctx.node.propose(SetBucketTagging(bucket=ctx.bucket_name, tags=tags or None))
    return web.Response(status=204)


async def delete_bucket_tagging(ctx: Context) -> web.Response:
    ctx.bucket()
    await ctx.node.propose(SetBucketTagging(bucket=ctx.bucket_name, tags=None))
    return web.Response(status=204)
