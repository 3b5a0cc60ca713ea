"""Multipart uploads: create, upload part (and part copy), complete, abort, list parts/uploads."""

from __future__ import annotations

import secrets
import time
from typing import Any

from aiohttp import web

from ...chunks.ingest import TooLarge, ingest, pinned, release
from ...chunks.reader import stream_range
from ...meta.commands import AbortUpload, CompleteUpload, CreateUpload, PutPart
from ...users import owner_id
from .. import xml
from ..checksums import (
    ALGORITHMS,
    check_whole_object,
    combine_full_object,
    combine_multipart,
    header_name,
    requested_algorithm,
)
from ..context import Context
from ..errors import ErrorCode, S3Error
from ..objectmeta import metadata_from_headers, validate_key
from ..sse import COPY_SOURCE_CUSTOMER, CUSTOMER, for_read, for_write, reader, response_headers
from ..versions import created_version_header, new_version_id
from .acl import new_object_owner, set_owner
from .bucket import owner_xml
from .copy import copy_source
from .objectlock import lock_fields, require_integrity_header
from .put import commit, receive_body, write_conditions
from .tagging import apply_tags, tags_from_header

MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PART_SIZE = 5 * 1024**3
MAX_PARTS = 10000


def _upload(ctx: Context) -> tuple[str, dict[str, Any]]:
    ctx.bucket()
    upload_id = ctx.endpoint.q("uploadId") or ""
    upload = ctx.node.meta.upload(ctx.bucket_name, ctx.key, upload_id)
    if upload is None:
        raise S3Error(ErrorCode.NoSuchUpload, UploadId=upload_id)
    return upload_id, upload


def _part_number(ctx: Context) -> int:
    value = ctx.endpoint.q("partNumber") or ""
    if not value.isdigit() or not 1 <= int(value) <= MAX_PARTS:
        raise S3Error(
            ErrorCode.InvalidArgument,
            "Part number must be an integer between 1 and 10000, inclusive",
            ArgumentName="partNumber",
            ArgumentValue=value,
        )
    return int(value)


async def create_multipart_upload(ctx: Context) -> web.Response:
    bucket = ctx.bucket()
    owner, acl = new_object_owner(ctx, bucket)
    validate_key(ctx.key)
    template = metadata_from_headers(ctx.headers)
    template.update(lock_fields(ctx.headers, bucket, time.time()))
    encryption = await for_write(ctx.node, ctx.headers, bucket)
    if encryption is not None:  # parts are sealed with it; an SSE-C key is checked per part
        template["sse"] = encryption.record()
    set_owner(template, owner, acl)
    apply_tags(template, tags_from_header(ctx.headers))
    algorithm = ctx.headers.get("x-amz-checksum-algorithm")
    checksum_type = ctx.headers.get("x-amz-checksum-type")
    if algorithm is not None:
        algorithm = algorithm.upper()
        if algorithm not in ALGORITHMS:
            raise S3Error(ErrorCode.InvalidRequest, "Checksum algorithm provided is unsupported.")
        default_type = "FULL_OBJECT" if algorithm == "CRC64NVME" else "COMPOSITE"
        checksum_type = (checksum_type or default_type).upper()
        if (
            checksum_type not in ("COMPOSITE", "FULL_OBJECT")
            or (checksum_type == "FULL_OBJECT" and algorithm.startswith("SHA"))
            or (checksum_type == "COMPOSITE" and algorithm == "CRC64NVME")
        ):
            raise S3Error(
                ErrorCode.InvalidRequest,
                f"The {checksum_type} checksum type cannot be used with {algorithm}.",
            )
    upload_id = secrets.token_urlsafe(32)
    record = {
        "initiated": time.time(),
        "owner": ctx.owner_name,
        "record": template,
        "algorithm": algorithm,
        "cktype": checksum_type,
    }
    await ctx.node.propose(
        CreateUpload(bucket=ctx.bucket_name, key=ctx.key, upload_id=upload_id, record=record)
    )
    headers = response_headers(template.get("sse"))
    if algorithm:
        headers.update({"x-amz-checksum-algorithm": algorithm,
                        "x-amz-checksum-type": checksum_type})
    body = xml.document(
        "InitiateMultipartUploadResult",
        [("Bucket", ctx.bucket_name), ("Key", ctx.key), ("UploadId", upload_id)],
    )
    return web.Response(body=body, content_type="application/xml", headers=headers)


async def _commit_part(
    ctx: Context, upload_id: str, number: int, body: Any, algorithm: str | None
) -> dict[str, Any]:
    record = {
        "size": body.size,
        "etag": ctx.encryption.etag(body.md5) if ctx.encryption is not None else body.etag,
        "mtime": time.time(),
        "chunks": body.chunks,
        "cks": {algorithm: body.checksum} if algorithm and body.checksum else {},
    }
    await commit(ctx, body, PutPart(bucket=ctx.bucket_name, key=ctx.key, upload_id=upload_id,
                                    part_number=number, record=record))
    return record


async def upload_part(ctx: Context) -> web.Response:
    number = _part_number(ctx)
    upload_id, upload = _upload(ctx)
    algorithm = requested_algorithm(ctx.headers) or upload.get("algorithm")
    ctx.encryption = await for_read(ctx.node, ctx.headers, upload["record"].get("sse"))
    require_integrity_header(ctx.headers, upload["record"])
    body = await receive_body(ctx, max_size=MAX_PART_SIZE, whole_object=False,
                              storage_class=upload["record"].get("class", "STANDARD"))
    if upload.get("algorithm") and algorithm != upload["algorithm"]:
        release(ctx.node.chunks, body.chunks, abandoned=True)
        raise S3Error(
            ErrorCode.InvalidRequest,
            "Checksum Type mismatch occurred, expected "
            f"checksum Type: {upload['algorithm'].lower()}, actual checksum Type: "
            f"{(algorithm or 'null').lower()}",
        )
    record = await _commit_part(ctx, upload_id, number, body, algorithm)
    headers = {"ETag": record["etag"], **response_headers(upload["record"].get("sse"))}
    for name, value in record["cks"].items():
        headers[header_name(name)] = value
    return web.Response(headers=headers)


class _RangeBody:
    """A BodyReader over a byte range of an existing object (UploadPartCopy's source)."""

    def __init__(self, pieces: Any) -> None:
        self._pieces = pieces

    async def read_chunk(self) -> bytes:
        return await anext(self._pieces, b"")


def _copy_range(ctx: Context, size: int) -> tuple[int, int]:
    value = ctx.headers.get("x-amz-copy-source-range")
    if value is None:
        return 0, size
    unit, _, spec = value.strip().partition("=")
    first, sep, last = spec.partition("-")
    if (unit != "bytes" or not sep or not first.isdigit() or not last.isdigit()
            or int(first) > int(last)):
        raise S3Error(
            ErrorCode.InvalidArgument,
            "The x-amz-copy-source-range value must be of the "
            "form bytes=first-last where first and last are the zero-based offsets of "
            "the first and last bytes to copy",
            ArgumentName="x-amz-copy-source-range",
            ArgumentValue=value,
        )
    if int(last) >= size:
        raise S3Error(ErrorCode.InvalidRange, ActualObjectSize=str(size), RangeRequested=value)
    return int(first), int(last) + 1


async def upload_part_copy(ctx: Context) -> web.Response:
    number = _part_number(ctx)
    upload_id, upload = _upload(ctx)
    _, _, source = copy_source(ctx)
    start, end = _copy_range(ctx, source["size"])
    if end - start > MAX_PART_SIZE:
        raise S3Error(ErrorCode.EntityTooLarge)
    algorithm = upload.get("algorithm")
    source_encryption = await for_read(ctx.node, ctx.headers, source.get("sse"),
                                       prefix=COPY_SOURCE_CUSTOMER)
    ctx.encryption = await for_read(ctx.node, ctx.headers, upload["record"].get("sse"))
    async with pinned(ctx.node.chunks, source["chunks"]):
        pieces = stream_range(reader(ctx.node, source_encryption), source["chunks"], start, end)
        try:
            body = await ingest(
                _RangeBody(pieces),
                ctx.node.chunks,
                chunk_size=ctx.node.config.storage.chunk_size,
                algorithm=algorithm,
                max_size=MAX_PART_SIZE,
                replicate=ctx.node.replicate_for(upload["record"].get("class", "STANDARD")),
                cipher=ctx.encryption.cipher if ctx.encryption is not None else None,
            )
        except TooLarge:
            raise S3Error(ErrorCode.EntityTooLarge) from None
    record = await _commit_part(ctx, upload_id, number, body, algorithm)
    children = [("LastModified", xml.timestamp(record["mtime"])), ("ETag", record["etag"])]
    for name, value in record["cks"].items():
        children.append((f"Checksum{name}", value))
    body_xml = xml.document("CopyPartResult", children)
    headers = {"x-amz-copy-source-version-id": source["vid"]} if "vid" in source else {}
    headers.update(response_headers(upload["record"].get("sse")))
    return web.Response(body=body_xml, content_type="application/xml", headers=headers)


async def complete_multipart_upload(ctx: Context) -> web.Response:
    upload_id = ctx.endpoint.q("uploadId") or ""
    ctx.bucket()
    request = xml.parse(await ctx.read_small_body(4 * xml.MAX_BODY), "CompleteMultipartUpload")
    parts: list[tuple[int, str]] = []
    for part in xml.children(request, "Part"):
        number, etag = xml.text(part, "PartNumber"), xml.text(part, "ETag")
        if number is None or etag is None or not number.strip().isdigit():
            raise S3Error(ErrorCode.MalformedXML)
        parts.append((int(number), etag.strip()))
    if_match, if_none_match = write_conditions(ctx)
    object_size = ctx.headers.get("x-amz-mp-object-size")
    if object_size is not None and not object_size.strip().isdigit():
        raise S3Error(ErrorCode.InvalidArgument, "x-amz-mp-object-size must be a number",
                      ArgumentName="x-amz-mp-object-size", ArgumentValue=object_size)
    upload = ctx.node.meta.upload(ctx.bucket_name, ctx.key, upload_id)
    if upload is not None and any(h.lower().startswith(CUSTOMER) for h in ctx.headers):
        await for_read(ctx.node, ctx.headers, upload["record"].get("sse"))  # a key: the right one
    checksums: dict[str, str] = {}
    if upload is not None and upload.get("algorithm"):
        algorithm = upload["algorithm"]
        stored = {n: p for n, p in ctx.node.meta.parts(upload_id)}
        listed = [stored.get(n) for n, _ in parts]
        if all(p is not None and p["cks"].get(algorithm) for p in listed):
            if upload.get("cktype") == "FULL_OBJECT":
                checksums[algorithm] = combine_full_object(
                    algorithm, [(p["cks"][algorithm], p["size"]) for p in listed]
                )
            else:
                checksums[algorithm] = combine_multipart(
                    algorithm, [p["cks"][algorithm] for p in listed]
                )
    if upload is not None:
        check_whole_object(ctx.headers, checksums)
        wanted_type = ctx.headers.get("x-amz-checksum-type")
        if wanted_type is not None and wanted_type.strip().upper() != upload.get("cktype"):
            # AWS: a type other than the one CreateMultipartUpload chose is a BadDigest
            raise S3Error(ErrorCode.BadDigest, f"The checksum type {wanted_type} does not match "
                          "the checksum type of the multipart upload.")
    result = await ctx.node.propose(
        CompleteUpload(
            bucket=ctx.bucket_name,
            key=ctx.key,
            upload_id=upload_id,
            parts=tuple(parts),
            mtime=time.time(),
            min_part_size=MIN_PART_SIZE,
            if_match=if_match,
            if_none_match=if_none_match,
            checksums=checksums,
            version_id=new_version_id(),
            object_size=int(object_size) if object_size is not None else None,
        )
    )
    record = result["record"]
    children: list[tuple[str, Any]] = [
        ("Location", f"http://{ctx.http.host}/{ctx.bucket_name}/{ctx.key}"),
        ("Bucket", ctx.bucket_name),
        ("Key", ctx.key),
        ("ETag", record["etag"]),
    ]
    for name, value in record.get("cks", {}).items():
        children.append((f"Checksum{name}", value))
    if record.get("cks"):
        children.append(("ChecksumType", record.get("cktype", "COMPOSITE")))
    body = xml.document("CompleteMultipartUploadResult", children)
    return web.Response(body=body, content_type="application/xml",
                        headers={**created_version_header(result.get("version_id")),
                                 **_complete_sse_headers(record.get("sse"))})


def _complete_sse_headers(sse: dict[str, Any] | None) -> dict[str, str]:
    """CompleteMultipartUpload names SSE-S3 but, unlike the other writes, never the SSE-C key."""
    return {} if not sse or sse.get("type") == "C" else response_headers(sse)


async def abort_multipart_upload(ctx: Context) -> web.Response:
    upload_id, _ = _upload(ctx)
    await ctx.node.propose(AbortUpload(bucket=ctx.bucket_name, key=ctx.key, upload_id=upload_id))
    return web.Response(status=204)


def _int_param(ctx: Context, name: str, default: int, maximum: int) -> int:
    value = ctx.endpoint.q(name)
    if value is None:
        return default
    if not value.isdigit():
        raise S3Error(
            ErrorCode.InvalidArgument,
            f"Provided {name} not an integer or within integer range",
            ArgumentName=name,
            ArgumentValue=value,
        )
    return min(int(value), maximum)


async def list_parts(ctx: Context) -> web.Response:
    upload_id, upload = _upload(ctx)
    max_parts = _int_param(ctx, "max-parts", 1000, 1000)
    marker = _int_param(ctx, "part-number-marker", 0, MAX_PARTS)
    entries: list[tuple[str, Any]] = []
    truncated = False
    last = marker
    for number, part in ctx.node.meta.parts(upload_id, after=marker):
        if len(entries) == max_parts:
            truncated = True
            break
        entry: list[tuple[str, Any]] = [
            ("PartNumber", number),
            ("LastModified", xml.timestamp(part["mtime"])),
            ("ETag", part["etag"]),
            ("Size", part["size"]),
        ]
        for name, value in part.get("cks", {}).items():
            entry.append((f"Checksum{name}", value))
        entries.append(("Part", entry))
        last = number
    owner = owner_xml(owner_id(upload["owner"]), upload["owner"])
    body = xml.document(
        "ListPartsResult",
        [
            ("Bucket", ctx.bucket_name),
            ("Key", ctx.key),
            ("UploadId", upload_id),
            ("PartNumberMarker", marker),
            ("NextPartNumberMarker", last if truncated else None),
            ("MaxParts", max_parts),
            ("IsTruncated", truncated),
            *entries,
            ("Initiator", owner),
            ("Owner", owner),
            ("StorageClass", upload["record"].get("class", "STANDARD")),
            ("ChecksumAlgorithm", upload.get("algorithm")),
            ("ChecksumType", upload.get("cktype")),
        ],
    )
    return web.Response(body=body, content_type="application/xml")


async def list_multipart_uploads(ctx: Context) -> web.Response:
    ctx.bucket()
    prefix = ctx.endpoint.q("prefix", "") or ""
    delimiter = ctx.endpoint.q("delimiter", "") or ""
    key_marker = ctx.endpoint.q("key-marker", "") or ""
    id_marker = ctx.endpoint.q("upload-id-marker", "") or ""
    max_uploads = _int_param(ctx, "max-uploads", 1000, 1000)
    entries: list[tuple[str, Any]] = []
    prefixes: list[str] = []
    truncated = False
    next_key = next_id = None
    for key, upload_id, upload in sorted(
        ctx.node.meta.uploads(ctx.bucket_name, prefix=prefix),
        key=lambda u: (u[0], u[2]["initiated"], u[1]),
    ):
        if key_marker and (
            key < key_marker or (key == key_marker and (not id_marker or upload_id <= id_marker))
        ):
            continue
        if delimiter and (idx := key.find(delimiter, len(prefix))) >= 0:
            common = key[: idx + len(delimiter)]
            if common not in prefixes:
                if len(entries) + len(prefixes) == max_uploads:
                    truncated = True
                    break
                prefixes.append(common)
            continue
        if len(entries) + len(prefixes) == max_uploads:
            truncated = True
            break
        owner = owner_xml(owner_id(upload["owner"]), upload["owner"])
        entries.append(
            (
                "Upload",
                [
                    ("Key", key),
                    ("UploadId", upload_id),
                    ("Initiator", owner),
                    ("Owner", owner),
                    ("StorageClass", upload["record"].get("class", "STANDARD")),
                    ("Initiated", xml.timestamp(upload["initiated"])),
                ],
            )
        )
        next_key, next_id = key, upload_id
    body = xml.document(
        "ListMultipartUploadsResult",
        [
            ("Bucket", ctx.bucket_name),
            ("KeyMarker", key_marker),
            ("UploadIdMarker", id_marker),
            ("NextKeyMarker", next_key if truncated else None),
            ("NextUploadIdMarker", next_id if truncated else None),
            ("Prefix", prefix),
            ("Delimiter", delimiter or None),
            ("MaxUploads", max_uploads),
            ("IsTruncated", truncated),
            *entries,
            *[("CommonPrefixes", [("Prefix", p)]) for p in prefixes],
        ],
    )
    return web.Response(body=body, content_type="application/xml")
