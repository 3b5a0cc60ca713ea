"""Bucket versioning: Put/GetBucketVersioning and ListObjectVersions. The version helpers the
object handlers share are `s3/versions.py`.

Where versions live is `meta.layout`'s business; what a version means is the state machine's.
This module only speaks S3 about them.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ...meta.commands import SetBucketVersioning
from ...users import owner_id
from .. import xml
from ..context import Context
from ..errors import ErrorCode, S3Error
from ..versions import check_version_id
from .bucket import owner_xml
from .list import _encoder, _max_keys

_AFTER_KEY = b"\x01"  # after every version of a key (V/ entries continue with \0), before k+"\x01"
_AFTER_ALL = b"\xff"  # never occurs in UTF-8: after every key under a common prefix


# ---- Put/GetBucketVersioning ----------------------------------------------------------------


async def put_bucket_versioning(ctx: Context) -> web.Response:
    ctx.bucket()
    config = xml.parse(await ctx.read_small_body(xml.MAX_BODY), "VersioningConfiguration")
    status = xml.text(config, "Status")
    mfa_delete = xml.text(config, "MfaDelete")
    if mfa_delete not in (None, "Enabled", "Disabled"):
        raise S3Error(ErrorCode.MalformedXML)
    if mfa_delete == "Enabled":
        raise S3Error(ErrorCode.NotImplemented, "MFA Delete is not supported by Anode")
    if status is None:
        return web.Response()  # nothing to change
    if status not in ("Enabled", "Suspended"):
        raise S3Error(ErrorCode.MalformedXML)
    await ctx.node.propose(SetBucketVersioning(bucket=ctx.bucket_name, status=status))
    return web.Response()


async def get_bucket_versioning(ctx: Context) -> web.Response:
    bucket = ctx.bucket()
    body = xml.document("VersioningConfiguration", [("Status", bucket.get("versioning"))])
    return web.Response(body=body, content_type="application/xml")


# ---- ListObjectVersions ----------------------------------------------------------------------


def _version_entry(enc: Any, key: str, record: dict[str, Any], latest: bool) -> tuple[str, Any]:
    """A <Version> or <DeleteMarker> element, fields in the order S3 writes them."""
    owner = owner_xml(owner_id(record["owner"]), record["owner"])
    if record.get("marker"):
        return ("DeleteMarker", [
            ("Key", enc(key)),
            ("VersionId", record["vid"]),
            ("IsLatest", latest),
            ("LastModified", xml.timestamp(record["mtime"])),
            ("Owner", owner),
        ])
    entry: list[tuple[str, Any]] = [
        ("Key", enc(key)),
        ("VersionId", record["vid"]),
        ("IsLatest", latest),
        ("LastModified", xml.timestamp(record["mtime"])),
        ("ETag", record["etag"]),
        ("Size", record["size"]),
        ("StorageClass", record.get("class", "STANDARD")),
        ("Owner", owner),
    ]
    for algorithm in record.get("cks", {}):
        entry.append(("ChecksumAlgorithm", algorithm))
    if record.get("cks"):
        entry.append(("ChecksumType", record.get("cktype", "FULL_OBJECT")))
    return ("Version", entry)


async def list_object_versions(ctx: Context) -> web.Response:
    ctx.bucket()
    enc = _encoder(ctx)
    prefix = ctx.endpoint.q("prefix", "") or ""
    delimiter = ctx.endpoint.q("delimiter", "") or ""
    key_marker = ctx.endpoint.q("key-marker", "") or ""
    version_marker = ctx.endpoint.q("version-id-marker", "") or ""
    max_keys = _max_keys(ctx)
    if version_marker and not key_marker:
        raise S3Error(
            ErrorCode.InvalidArgument,
            "A version-id marker cannot be specified without a key marker.",
            ArgumentName="version-id-marker",
            ArgumentValue=version_marker,
        )
    if version_marker:
        check_version_id(version_marker, argument="version-id-marker")
    if not key_marker:
        start = b""
    elif version_marker:
        start = key_marker.encode()  # the marker's key again, from after that version
    else:
        start = key_marker.encode() + _AFTER_KEY
    start = max(start, prefix.encode())
    entries: list[tuple[str, Any]] = []
    prefixes: list[str] = []
    truncated = False
    next_key: str | None = None
    next_version: str | None = None

    def full() -> bool:
        return len(entries) + len(prefixes) >= max_keys

    while max_keys and not truncated:
        restart = None
        for key, versions in ctx.node.meta.versions(ctx.bucket_name, prefix=prefix, start=start):
            if delimiter and (idx := key.find(delimiter, len(prefix))) >= 0:
                common = key[: idx + len(delimiter)]
                restart = common.encode() + _AFTER_ALL
                if key_marker and common <= key_marker:
                    break  # a prefix an earlier page returned
                if full():
                    truncated = max_keys > 0
                    break
                prefixes.append(common)
                next_key, next_version = common, None
                break
            first = 0
            if version_marker and key == key_marker:
                ids = [v["vid"] for v in versions]
                first = ids.index(version_marker) + 1 if version_marker in ids else len(ids)
            for position in range(first, len(versions)):
                if full():
                    truncated = max_keys > 0
                    break
                record = versions[position]
                entries.append(_version_entry(enc, key, record, position == 0))
                next_key, next_version = key, record["vid"]
            if truncated:
                break
        else:
            break
        if restart is None:
            break
        start = restart
    body = xml.document(
        "ListVersionsResult",
        [
            ("Name", ctx.bucket_name),
            ("Prefix", enc(prefix)),
            ("KeyMarker", enc(key_marker)),
            ("VersionIdMarker", version_marker),
            ("NextKeyMarker", enc(next_key) if truncated else None),
            ("NextVersionIdMarker", next_version if truncated else None),
            ("MaxKeys", max_keys),
            ("Delimiter", enc(delimiter) if delimiter else None),
            ("IsTruncated", truncated),
            *entries,
            *[("CommonPrefixes", [("Prefix", enc(p))]) for p in prefixes],
            ("EncodingType", ctx.endpoint.q("encoding-type")),
        ],
    )
    return web.Response(body=body, content_type="application/xml")
