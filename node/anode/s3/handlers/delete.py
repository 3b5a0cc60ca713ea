"""DeleteObject and DeleteObjects (quiet mode included), with versioning: deleting the current
version of a versioning bucket leaves a delete marker; naming a version deletes it for good."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from ...meta.commands import DeleteObjects
from .. import xml
from ..context import Context
from ..errors import ErrorCode, S3Error
from ..objectmeta import validate_key
from ..versions import is_version_id, is_versioned, new_version_id, requested_version
from .objectlock import may_bypass

MAX_DELETE_KEYS = 1000


def _delete_command(ctx: Context, items: list[tuple[str, str | None, str | None]],
                    bucket: dict[str, Any]) -> DeleteObjects:
    """Marker ids and time are chosen here (the proposer), used only if the bucket needs them.

    Items are (key, version id, If-Match ETag): AWS deletes conditionally (2025) on If-Match, and
    the state machine checks it against the current version when the delete applies."""
    return DeleteObjects(
        bucket=ctx.bucket_name,
        keys=tuple(key for key, _, _ in items),
        version_ids=tuple(version_id for _, version_id, _ in items),
        if_matches=tuple(if_match for _, _, if_match in items),
        marker_ids=tuple(new_version_id() for _ in items),
        mtime=time.time(),
        owner=ctx.owner_name,
        bypass=may_bypass(ctx, bucket),
    )


async def delete_object(ctx: Context) -> web.Response:
    bucket = ctx.bucket()
    validate_key(ctx.key)
    version_id = requested_version(ctx)
    if_match = ctx.headers.get("If-Match")
    (result,) = await ctx.node.propose(
        _delete_command(ctx, [(ctx.key, version_id, if_match)], bucket)
    )
    if result.get("error"):  # a locked version (object lock), or an If-Match that did not hold
        raise S3Error(ErrorCode[result["error"]])
    headers = {}
    if result.get("marker"):
        headers["x-amz-delete-marker"] = "true"
    shown = result.get("marker_vid") or result.get("vid")
    if shown is not None and (version_id is not None or is_versioned(bucket)):
        headers["x-amz-version-id"] = shown
    return web.Response(status=204, headers=headers)


def _deleted_entry(result: dict[str, Any]) -> tuple[str, list[tuple[str, Any]]]:
    entry: list[tuple[str, Any]] = [("Key", result["key"])]
    if result.get("vid") is not None:
        entry.append(("VersionId", result["vid"]))
    if result.get("marker"):
        entry += [("DeleteMarker", True), ("DeleteMarkerVersionId", result["marker_vid"])]
    return ("Deleted", entry)


async def delete_objects(ctx: Context) -> web.Response:
    bucket = ctx.bucket()
    request = xml.parse(await ctx.read_small_body(xml.MAX_BODY), "Delete")
    quiet = (xml.text(request, "Quiet") or "false").strip().lower() == "true"
    items: list[tuple[str, str | None, str | None]] = []
    errors: list[tuple[str, list[tuple[str, str]]]] = []
    for obj in xml.children(request, "Object"):
        key = xml.text(obj, "Key")
        version_id = xml.text(obj, "VersionId")
        etag = xml.text(obj, "ETag")
        if key is None:
            raise S3Error(ErrorCode.MalformedXML)
        try:
            validate_key(key)
            if version_id is not None and not is_version_id(version_id):
                raise S3Error(ErrorCode.NoSuchVersion)
            action = "s3:DeleteObjectVersion" if version_id is not None else "s3:DeleteObject"
            ctx.authorize(ctx.bucket_name, bucket, action, key)
        except S3Error as e:
            error = [("Key", key)]
            if version_id is not None:
                error.append(("VersionId", version_id))
            errors.append(("Error", [*error, ("Code", e.code.aws_name), ("Message", e.message)]))
            continue
        items.append((key, version_id, etag))
    if len(items) + len(errors) > MAX_DELETE_KEYS or (not items and not errors):
        raise S3Error(ErrorCode.MalformedXML)
    results = await ctx.node.propose(_delete_command(ctx, items, bucket)) if items else []
    entries = []
    for result in results:
        if result.get("error"):  # a locked version (object lock), or an ETag that did not hold
            refused = [("Key", result["key"])]
            if result.get("vid") is not None:
                refused.append(("VersionId", result["vid"]))
            errors.append(("Error", [*refused, ("Code", result["error"]),
                                     ("Message", ErrorCode[result["error"]].default_message)]))
        elif not quiet:
            entries.append(_deleted_entry(result))
    body = xml.document("DeleteResult", [*entries, *errors])
    return web.Response(body=body, content_type="application/xml")
