"""PutObject, and the body intake that PutObject and UploadPart share."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from ...chunks.ingest import Ingested, TooLarge, ingest, release
from ...meta.commands import Command, PutObject
from ..checksums import header_name, requested_algorithm
from ..context import Context
from ..errors import ErrorCode, S3Error
from ..objectmeta import content_md5, metadata_from_headers, validate_key
from ..sse import for_write, response_headers
from ..versions import created_version_header, new_version_id
from .acl import new_object_owner, set_owner
from .objectlock import lock_fields, require_integrity_header
from .tagging import apply_tags, tags_from_header

MAX_PUT_SIZE = 5 * 1024**3


async def receive_body(ctx: Context, *, max_size: int = MAX_PUT_SIZE,
                       length_required: bool = True, whole_object: bool = True,
                       storage_class: str = "STANDARD") -> Ingested:
    """Store the request body as durable, pinned chunks and verify every digest the client sent.

    The caller must `release(store, result.chunks)` once it has committed (or given up).
    `length_required` False: a body whose length only its end tells (a POST form's file); a
    `Transfer-Encoding: chunked` body (curl -T -, clients streaming from a pipe) is one too.
    `whole_object` (not a multipart part): a small body may come back inline.
    `storage_class` decides how its chunks are stored (replicated or erasure-coded).
    """
    headers = ctx.headers
    chunked = "chunked" in headers.get("Transfer-Encoding", "").lower()
    if (length_required and not chunked and "Content-Length" not in headers
            and "x-amz-decoded-content-length" not in headers):
        raise S3Error(ErrorCode.MissingContentLength)
    declared = headers.get("x-amz-decoded-content-length") or headers.get("Content-Length", "0")
    if declared.isdigit() and int(declared) > max_size:
        raise S3Error(ErrorCode.EntityTooLarge, ProposedSize=declared, MaxSizeAllowed=str(max_size))
    algorithm = requested_algorithm(headers)
    md5 = content_md5(headers)
    reader = ctx.body()
    try:
        result = await ingest(
            reader,
            ctx.node.chunks,
            chunk_size=ctx.node.config.storage.chunk_size,
            algorithm=algorithm,
            max_size=max_size,
            replicate=ctx.node.replicate_for(storage_class),
            cipher=ctx.encryption.cipher if ctx.encryption is not None else None,
            inline_max=ctx.node.config.storage.inline_max if whole_object else 0,
        )
    except TooLarge:
        raise S3Error(ErrorCode.EntityTooLarge, MaxSizeAllowed=str(max_size)) from None
    ctx.node.metrics.bytes_in.inc(result.size)
    try:
        if md5 is not None and md5 != result.md5:
            raise S3Error(
                ErrorCode.BadDigest, ExpectedDigest=md5.hex(), CalculatedDigest=result.md5.hex()
            )
        if algorithm is not None:
            name = header_name(algorithm)
            sent = headers.get(name) or getattr(reader, "trailers", {}).get(name)
            if sent is not None and sent != result.checksum:
                raise S3Error(
                    ErrorCode.BadDigest,
                    f"The {algorithm} you specified did not match the calculated checksum.",
                )
            if sent is None and "x-amz-trailer" in headers:
                raise S3Error(ErrorCode.IncompleteBody, "The trailing checksum is missing")
    except BaseException:
        release(ctx.node.chunks, result.chunks, abandoned=True)
        raise
    return result


async def commit(ctx: Context, body: Ingested, command: Command) -> Any:
    """Commit the metadata for a received body; if that fails, the body's chunks are abandoned."""
    try:
        result = await ctx.node.propose(command)
    except BaseException:
        release(ctx.node.chunks, body.chunks, abandoned=True)
        raise
    release(ctx.node.chunks, body.chunks)
    return result


def version_record(
    ctx: Context, body: Ingested, algorithm: str | None, metadata: dict[str, Any]
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "size": body.size,
        "etag": body.etag,
        "mtime": time.time(),
        "chunks": body.chunks,
        "owner": ctx.owner_name,
        **metadata,
    }
    if algorithm and body.checksum:
        record["cks"] = {algorithm: body.checksum}
        record["cktype"] = "FULL_OBJECT"
    return record


def write_conditions(ctx: Context) -> tuple[str | None, bool]:
    if_none_match = ctx.headers.get("If-None-Match")
    if if_none_match is not None and if_none_match.strip() != "*":
        raise S3Error(ErrorCode.NotImplemented, "If-None-Match on writes supports only '*'")
    return ctx.headers.get("If-Match"), if_none_match is not None


async def put_object(ctx: Context) -> web.Response:
    bucket = ctx.bucket()
    owner, acl = new_object_owner(ctx, bucket)
    validate_key(ctx.key)
    metadata = metadata_from_headers(ctx.headers)
    metadata.update(lock_fields(ctx.headers, bucket, time.time()))
    require_integrity_header(ctx.headers, metadata)
    tags = tags_from_header(ctx.headers)
    if_match, if_none_match = write_conditions(ctx)
    algorithm = requested_algorithm(ctx.headers)
    ctx.encryption = await for_write(ctx.node, ctx.headers, bucket)
    body = await receive_body(ctx, storage_class=metadata["class"])
    record = version_record(ctx, body, algorithm, metadata)
    if ctx.encryption is not None:
        record.update(sse=ctx.encryption.record(), etag=ctx.encryption.etag(body.md5))
    set_owner(record, owner, acl)
    apply_tags(record, tags)
    result = await commit(ctx, body, PutObject(bucket=ctx.bucket_name, key=ctx.key, record=record,
                                               if_match=if_match, if_none_match=if_none_match,
                                               version_id=new_version_id(),
                                               inline=body.inline,
                                               bucket_created=bucket["created"]))
    headers = {"ETag": record["etag"], **created_version_header(result["version_id"]),
               **response_headers(record.get("sse"))}
    if algorithm and body.checksum:
        headers[header_name(algorithm)] = body.checksum
        headers["x-amz-checksum-type"] = "FULL_OBJECT"
    return web.Response(headers=headers)
