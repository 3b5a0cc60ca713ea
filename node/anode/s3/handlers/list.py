"""ListObjects (V1) and ListObjectsV2: a prefix range scan with delimiter roll-up and paging."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from aiohttp import web

from ...meta.layout import unpack
from ...meta.store import MetaStore
from ...users import owner_id
from .. import tokens, xml
from ..context import Context
from ..errors import ErrorCode, S3Error
from .bucket import owner_xml

MAX_KEYS = 1000
_AFTER_ALL = b"\xff"  # never occurs in UTF-8, so cp + this sorts after every key under cp


@dataclass
class Listing:
    contents: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)
    truncated: bool = False
    last: str | None = None  # the last key or common prefix returned: where the next page starts


def list_keys(
    meta: MetaStore, bucket: str, *, prefix: str, delimiter: str, marker: str, max_keys: int
) -> Listing:
    """Keys after `marker` with `prefix`, rolled up at `delimiter`, at most `max_keys` entries."""
    result = Listing()
    start = marker.encode() + b"\x00" if marker > prefix else prefix.encode()
    count = 0
    while True:
        restart = None
        for key, raw in meta.objects(bucket, prefix=prefix, start=start):
            if delimiter:
                idx = key.find(delimiter, len(prefix))
                if idx >= 0:
                    common = key[: idx + len(delimiter)]
                    restart = common.encode() + _AFTER_ALL
                    if marker and common <= marker:
                        break  # rolled into a prefix an earlier page returned
                    if count == max_keys:
                        result.truncated = True
                        return result
                    result.prefixes.append(common)
                    result.last = common
                    count += 1
                    break
            if count == max_keys:
                result.truncated = max_keys > 0
                return result
            result.contents.append((key, unpack(raw)))
            result.last = key
            count += 1
        else:
            return result
        start = restart


def _max_keys(ctx: Context) -> int:
    value = ctx.endpoint.q("max-keys", str(MAX_KEYS)) or str(MAX_KEYS)
    if not value.lstrip("-").isdigit() or int(value) < 0:
        raise S3Error(
            ErrorCode.InvalidArgument,
            "Provided max-keys not an integer or within integer range",
            ArgumentName="max-keys",
            ArgumentValue=value,
        )
    return min(int(value), MAX_KEYS)


def _encoder(ctx: Context):
    encoding = ctx.endpoint.q("encoding-type")
    if encoding is None:
        return lambda s: s
    if encoding != "url":
        raise S3Error(
            ErrorCode.InvalidArgument,
            "Invalid Encoding Method specified in Request",
            ArgumentName="encoding-type",
            ArgumentValue=encoding,
        )
    return lambda s: None if s is None else quote(s, safe="/")


def _contents(listing: Listing, enc, owner: bool, ctx: Context) -> list[tuple[str, Any]]:
    out = []
    for key, record in listing.contents:
        entry: list[tuple[str, Any]] = [
            ("Key", enc(key)),
            ("LastModified", xml.timestamp(record["mtime"])),
            ("ETag", record["etag"]),
        ]
        for algorithm in record.get("cks", {}):
            entry.append(("ChecksumAlgorithm", algorithm))
        if record.get("cks"):
            entry.append(("ChecksumType", record.get("cktype", "FULL_OBJECT")))
        entry.append(("Size", record["size"]))
        if owner:
            entry.append(("Owner", owner_xml(owner_id(record["owner"]), record["owner"])))
        entry.append(("StorageClass", record.get("class", "STANDARD")))
        out.append(("Contents", entry))
    return out


def _prefixes(listing: Listing, enc) -> list[tuple[str, Any]]:
    return [("CommonPrefixes", [("Prefix", enc(p))]) for p in listing.prefixes]


async def list_objects(ctx: Context) -> web.Response:
    ctx.bucket()
    enc = _encoder(ctx)
    prefix = ctx.endpoint.q("prefix", "") or ""
    delimiter = ctx.endpoint.q("delimiter", "") or ""
    marker = ctx.endpoint.q("marker", "") or ""
    max_keys = _max_keys(ctx)
    listing = list_keys(
        ctx.node.meta,
        ctx.bucket_name,
        prefix=prefix,
        delimiter=delimiter,
        marker=marker,
        max_keys=max_keys,
    )
    body = xml.document(
        "ListBucketResult",
        [
            ("IsTruncated", listing.truncated),
            ("Marker", enc(marker)),
            ("NextMarker", enc(listing.last) if listing.truncated and delimiter else None),
            *_contents(listing, enc, True, ctx),
            ("Name", ctx.bucket_name),
            ("Prefix", enc(prefix)),
            ("Delimiter", enc(delimiter) if delimiter else None),
            ("MaxKeys", max_keys),
            *_prefixes(listing, enc),
            ("EncodingType", ctx.endpoint.q("encoding-type")),
        ],
    )
    return web.Response(body=body, content_type="application/xml")


async def list_objects_v2(ctx: Context) -> web.Response:
    ctx.bucket()
    enc = _encoder(ctx)
    prefix = ctx.endpoint.q("prefix", "") or ""
    delimiter = ctx.endpoint.q("delimiter", "") or ""
    token = ctx.endpoint.q("continuation-token")
    start_after = ctx.endpoint.q("start-after", "") or ""
    marker = tokens.decode(token) if token is not None else start_after
    max_keys = _max_keys(ctx)
    listing = list_keys(
        ctx.node.meta,
        ctx.bucket_name,
        prefix=prefix,
        delimiter=delimiter,
        marker=marker,
        max_keys=max_keys,
    )
    next_token = None
    if listing.truncated and listing.last is not None:
        next_token = tokens.encode(listing.last)
    fetch_owner = (ctx.endpoint.q("fetch-owner") or "").lower() == "true"
    body = xml.document(
        "ListBucketResult",
        [
            ("IsTruncated", listing.truncated),
            *_contents(listing, enc, fetch_owner, ctx),
            ("Name", ctx.bucket_name),
            ("Prefix", enc(prefix)),
            ("Delimiter", enc(delimiter) if delimiter else None),
            ("MaxKeys", max_keys),
            *_prefixes(listing, enc),
            ("EncodingType", ctx.endpoint.q("encoding-type")),
            ("KeyCount", len(listing.contents) + len(listing.prefixes)),
            ("ContinuationToken", token),
            ("NextContinuationToken", next_token),
            ("StartAfter", enc(start_after) if start_after else None),
        ],
    )
    return web.Response(body=body, content_type="application/xml")
