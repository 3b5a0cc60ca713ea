"""DeleteObject and DeleteObjects (quiet mode included)."""

from __future__ import annotations

from aiohttp import web

from ...meta.commands import DeleteObjects
from .. import xml
from ..context import Context
from ..errors import ErrorCode, S3Error
from ..objectmeta import validate_key

MAX_DELETE_KEYS = 1000


async def delete_object(ctx: Context) -> web.Response:
    ctx.bucket()
    validate_key(ctx.key)
    await ctx.node.propose(DeleteObjects(bucket=ctx.bucket_name, keys=(ctx.key,)))
    return web.Response(status=204)


async def delete_objects(ctx: Context) -> web.Response:
    ctx.bucket()
    request = xml.parse(await ctx.read_small_body(xml.MAX_BODY), "Delete")
    quiet = (xml.text(request, "Quiet") or "false").strip().lower() == "true"
    keys: list[str] = []
    errors: list[tuple[str, list[tuple[str, str]]]] = []
    for obj in xml.children(request, "Object"):
        key = xml.text(obj, "Key")
        if key is None:
            raise S3Error(ErrorCode.MalformedXML)
        try:
            validate_key(key)
        except S3Error as e:
            errors.append(("Error", [("Key", key), ("Code", e.code.name), ("Message", e.message)]))
            continue
        keys.append(key)
    if len(keys) + len(errors) > MAX_DELETE_KEYS or (not keys and not errors):
        raise S3Error(ErrorCode.MalformedXML)
    deleted = await ctx.node.propose(DeleteObjects(bucket=ctx.bucket_name, keys=tuple(keys)))
    entries = [] if quiet else [("Deleted", [("Key", key)]) for key in deleted]
    body = xml.document("DeleteResult", [*entries, *errors])
    return web.Response(body=body, content_type="application/xml")
