"""GetObjectAttributes: an object's ETag, checksum, parts, storage class and size in one XML
answer, as selected by `x-amz-object-attributes`, without reading its data."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .. import sse, xml
from ..checksums import ALGORITHMS
from ..conditions import http_date
from ..context import Context
from ..errors import ErrorCode, S3Error
from ..versions import find_version, requested_version, version_header

ATTRIBUTES = ("ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize")
MAX_PARTS = 1000


def _requested(ctx: Context) -> set[str]:
    values = ctx.headers.getall("x-amz-object-attributes", [])
    names = {v.strip() for value in values for v in value.split(",") if v.strip()}
    if not names:
        raise S3Error(ErrorCode.InvalidArgument,
                      "x-amz-object-attributes header specifying the attributes to be retrieved "
                      "is either missing or empty", ArgumentName="x-amz-object-attributes")
    unknown = sorted(names - set(ATTRIBUTES))
    if unknown:
        raise S3Error(ErrorCode.InvalidArgument, "Invalid attribute name specified.",
                      ArgumentName="x-amz-object-attributes", ArgumentValue=unknown[0])
    return names


def _int_header(ctx: Context, name: str, default: int) -> int:
    value = ctx.headers.get(name)
    if value is None:
        return default
    if not value.strip().isdigit():
        raise S3Error(ErrorCode.InvalidArgument, f"Provided {name} not an integer or within "
                      "integer range", ArgumentName=name, ArgumentValue=value)
    return int(value)


def _checksums(cks: dict[str, str]) -> list[tuple[str, Any]]:
    """S3 answers a COMPOSITE checksum here without the `-<part count>` that HeadObject shows
    (the count is ObjectParts' business)."""
    return [(f"Checksum{name}", cks[name].split("-")[0]) for name in ALGORITHMS if name in cks]


def _object_parts(ctx: Context, record: dict[str, Any]) -> list[tuple[str, Any]]:
    sizes = record["parts"]
    max_parts = min(_int_header(ctx, "x-amz-max-parts", MAX_PARTS), MAX_PARTS)
    marker = _int_header(ctx, "x-amz-part-number-marker", 0)
    part_cks = record.get("part_cks") or []
    listed = list(range(marker + 1, len(sizes) + 1))[:max_parts]
    truncated = bool(listed) and listed[-1] < len(sizes)
    children: list[tuple[str, Any]] = [("PartsCount", len(sizes)),
                                       ("PartNumberMarker", marker)]
    if truncated:
        children.append(("NextPartNumberMarker", listed[-1]))
    children += [("MaxParts", max_parts), ("IsTruncated", truncated)]
    if part_cks:  # S3 lists parts only when they carry an additional checksum
        for number in listed:
            cks = part_cks[number - 1] if number - 1 < len(part_cks) else {}
            children.append(("Part", [*_checksums(cks), ("PartNumber", number),
                                      ("Size", sizes[number - 1])]))
    return children


async def get_object_attributes(ctx: Context) -> web.Response:
    bucket = ctx.bucket()
    names = _requested(ctx)
    record = find_version(ctx, ctx.bucket_name, bucket, ctx.key, requested_version(ctx))
    await sse.for_read(ctx.node, ctx.headers, record.get("sse"))  # SSE-C: the object's key
    children: list[tuple[str, Any]] = []
    if "ETag" in names:
        children.append(("ETag", record["etag"].strip('"')))
    if "Checksum" in names and record.get("cks"):
        children.append(("Checksum", [*_checksums(record["cks"]),
                                      ("ChecksumType", record.get("cktype", "FULL_OBJECT"))]))
    if "ObjectParts" in names and record.get("parts"):
        children.append(("ObjectParts", _object_parts(ctx, record)))
    if "StorageClass" in names:
        children.append(("StorageClass", record.get("class", "STANDARD")))
    if "ObjectSize" in names:
        children.append(("ObjectSize", record["size"]))
    headers = {"Last-Modified": http_date(record["mtime"]), **version_header(record.get("vid"))}
    return web.Response(body=xml.document("GetObjectAttributesResponse", children),
                        content_type="application/xml", headers=headers)
