"""CopyObject: a new version sharing the source's chunks (no bytes move), metadata and tagging
COPY/REPLACE, from the current source version or the one `?versionId=` names."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from ...chunks.ingest import Ingested, ingest, pinned, release
from ...chunks.reader import stream_range
from ...meta.commands import PutObject
from .. import sse, xml
from ..checksums import ALGORITHMS, Checksummer
from ..conditions import check_read_conditions
from ..context import Context
from ..errors import ErrorCode, S3Error
from ..objectmeta import metadata_from_headers, validate_key
from ..versions import check_version_id, created_version_header, is_versioned, new_version_id
from .acl import new_object_owner, set_owner
from .objectlock import lock_fields
from .put import write_conditions
from .tagging import apply_tags, tags_from_header


def _source_version(ctx: Context, bucket: str, key: str, version: str | None) -> dict[str, Any]:
    """The source record; a source that names a delete marker is an invalid request."""
    record = ctx.node.meta.object(bucket, key) if version is None else (
        ctx.node.meta.version(bucket, key, version))
    if record is None:
        if version is None:
            raise S3Error(ErrorCode.NoSuchKey, Key=key)
        raise S3Error(ErrorCode.NoSuchVersion, Key=key, VersionId=version)
    if record.get("marker"):
        raise S3Error(
            ErrorCode.InvalidRequest,
            "The source of a copy request may not specifically refer to a delete marker by "
            "version id.",
        )
    return record


def copy_source(ctx: Context) -> tuple[str, str, dict[str, Any]]:
    """(bucket, key, record) of `x-amz-copy-source`, checked for access and copy conditions.

    In a versioning source bucket the record carries its `vid` (`null` for pre-versioning keys),
    and `source_version` (the id the request named, or None)."""
    raw = ctx.headers["x-amz-copy-source"]
    raw_source, _, raw_version = raw.partition("?versionId=")
    source, version = unquote(raw_source), unquote(raw_version) or None
    bucket, sep, key = source.lstrip("/").partition("/")
    if not sep or not bucket or not key:
        raise S3Error(
            ErrorCode.InvalidArgument,
            "Copy Source must mention the source bucket and key",
            ArgumentName="x-amz-copy-source",
            ArgumentValue=raw,
        )
    if version is not None:
        check_version_id(version, argument="x-amz-copy-source")
    bucket_record = ctx.bucket(bucket, key=key, action="s3:GetObjectVersion" if version
                               else "s3:GetObject")
    record = _source_version(ctx, bucket, key, version)
    if is_versioned(bucket_record) or version is not None:
        record = {**record, "vid": record.get("vid", "null")}
    record["source_version"] = version
    check_read_conditions(
        ctx.headers,
        record["etag"],
        record["mtime"],
        prefix="x-amz-copy-source-",
        not_modified=ErrorCode.PreconditionFailed,
    )
    return bucket, key, record


def _same_domain(source: sse.Encryption | None, target: sse.Encryption | None) -> bool:
    """Whether a copy can share the source's chunks: both in the clear, or sealed alike."""
    if target is None:
        return source is None
    return target.same_domain(source)


class _Pieces:
    """A BodyReader over an async iterator of byte pieces."""

    def __init__(self, pieces: Any) -> None:
        self._pieces = pieces

    async def read_chunk(self) -> bytes:
        return await anext(self._pieces, b"")


async def _reseal(ctx: Context, source: dict[str, Any], source_encryption: sse.Encryption | None,
                  encryption: sse.Encryption | None, storage_class: str) -> Ingested:
    """The source's bytes stored anew across key domains (decrypted, sealed under the target's
    key); pinned like any ingested body."""
    async with pinned(ctx.node.chunks, source["chunks"]):
        pieces = stream_range(sse.reader(ctx.node, source_encryption), source["chunks"], 0,
                              source["size"])
        return await ingest(
            _Pieces(pieces), ctx.node.chunks, chunk_size=ctx.node.config.storage.chunk_size,
            replicate=ctx.node.replicate_for(storage_class),
            cipher=encryption.cipher if encryption is not None else None)


async def _checksum(ctx: Context, source: dict[str, Any],
                    source_encryption: sse.Encryption | None, algorithm: str) -> str:
    """The source's plaintext checksummed with `algorithm`: a copy asked for an algorithm the
    source does not carry gets that whole-object checksum, as on AWS."""
    summer = Checksummer(algorithm)
    async with pinned(ctx.node.chunks, source["chunks"]):
        pieces = stream_range(sse.reader(ctx.node, source_encryption), source["chunks"], 0,
                              source["size"])
        async for piece in pieces:
            await asyncio.to_thread(summer.update, piece)  # large copies: off the event loop
    return summer.b64digest()


def _requested_algorithm(ctx: Context) -> str | None:
    value = ctx.headers.get("x-amz-checksum-algorithm")
    if value is None:
        return None
    if value.strip().upper() not in ALGORITHMS:
        raise S3Error(ErrorCode.InvalidRequest, "Checksum algorithm provided is unsupported.")
    return value.strip().upper()


def _directive(ctx: Context, what: str) -> str:
    """x-amz-{what}-directive: COPY (the default) or REPLACE."""
    header = f"x-amz-{what}-directive"
    value = ctx.headers.get(header, "COPY").upper()
    if value not in ("COPY", "REPLACE"):
        raise S3Error(ErrorCode.InvalidArgument, f"Unknown {what} directive.",
                      ArgumentName=header, ArgumentValue=value)
    return value


async def copy_object(ctx: Context) -> web.Response:
    bucket = ctx.bucket()
    owner, acl = new_object_owner(ctx, bucket)
    validate_key(ctx.key)
    src_bucket, src_key, source = copy_source(ctx)
    tagging_directive = _directive(ctx, "tagging")
    directive = _directive(ctx, "metadata")
    source_version = source.pop("source_version")
    # A copy is a new version: it gets the lock the request (or the bucket default) asks for.
    record = {k: v for k, v in source.items() if k not in ("upload_id", "vid", "lock", "hold")}
    record.update(lock_fields(ctx.headers, bucket, time.time()))
    # Encryption is the request's (or the bucket default's), never inherited from the source.
    source_encryption = await sse.for_read(ctx.node, ctx.headers, source.get("sse"),
                                           prefix=sse.COPY_SOURCE_CUSTOMER)
    encryption = await sse.for_write(ctx.node, ctx.headers, bucket)
    record.pop("sse", None)
    if encryption is not None:
        record["sse"] = encryption.record()
    if tagging_directive == "REPLACE":
        apply_tags(record, tags_from_header(ctx.headers))
    if directive == "REPLACE":
        record.update(metadata_from_headers(ctx.headers))
    elif "x-amz-storage-class" in ctx.headers:
        record["class"] = metadata_from_headers(ctx.headers)["class"]
    same = (src_bucket, src_key) == (ctx.bucket_name, ctx.key)
    # Copying a named version onto its key is how a versioning bucket restores it.
    restores = source_version is not None and bucket.get("versioning") == "Enabled"
    if same and directive == "COPY" and record.get("class") == source.get("class") and (
        not restores and encryption is None and source_encryption is None
    ):
        raise S3Error(
            ErrorCode.InvalidRequest,
            "This copy request is illegal because it is trying to copy an object to "
            "itself without changing the object's metadata, storage class, website "
            "redirect location or encryption attributes.",
        )
    algorithm = _requested_algorithm(ctx)
    if algorithm is not None and not (
        record.get("cktype", "FULL_OBJECT") == "FULL_OBJECT" and algorithm in record.get("cks", {})
    ):
        value = await _checksum(ctx, source, source_encryption, algorithm)
        record.update(cks={algorithm: value}, cktype="FULL_OBJECT")
        record.pop("part_cks", None)
    record.update(mtime=time.time())
    set_owner(record, owner, acl)  # a copy gets the ACL the request asks for, not the source's
    if_match, if_none_match = write_conditions(ctx)
    if not _same_domain(source_encryption, encryption):
        body = await _reseal(ctx, source, source_encryption, encryption,
                             record.get("class", "STANDARD"))
        record.update(chunks=body.chunks,
                      etag=encryption.etag(body.md5) if encryption is not None else body.etag)
        for field in ("parts", "part_cks"):  # one new body: no parts any more
            record.pop(field, None)
        if record.get("cktype") == "COMPOSITE":
            record.pop("cks", None)
            record.pop("cktype", None)
        # Hand the new chunks' pins to the block below; no await between, so no collection.
        release(ctx.node.chunks, body.chunks)
    async with pinned(ctx.node.chunks, record["chunks"]):
        # Re-read under the pin: the source may have been replaced since we looked.
        try:
            latest = _source_version(ctx, src_bucket, src_key, source_version)
        except S3Error:
            latest = None
        if (
            latest is None
            or latest["etag"] != source["etag"]
            or latest["chunks"] != source["chunks"]
        ):
            raise S3Error(ErrorCode.ConditionalRequestConflict if latest else ErrorCode.NoSuchKey)
        result = await ctx.node.propose(
            PutObject(
                bucket=ctx.bucket_name,
                key=ctx.key,
                record=record,
                if_match=if_match,
                if_none_match=if_none_match,
                version_id=new_version_id(),
            )
        )
    children = [("LastModified", xml.timestamp(record["mtime"])), ("ETag", record["etag"])]
    if record.get("cks"):
        children.append(("ChecksumType", record.get("cktype", "FULL_OBJECT")))
    for name, value in record.get("cks", {}).items():
        children.append((f"Checksum{name}", value))
    body = xml.document("CopyObjectResult", children)
    headers = {**created_version_header(result["version_id"]),
               **sse.response_headers(record.get("sse"))}
    if "vid" in source:
        headers["x-amz-copy-source-version-id"] = source["vid"]
    return web.Response(body=body, content_type="application/xml", headers=headers)
