"""Bucket versioning: Put/GetBucketVersioning and ListObjectVersions, plus the version helpers the
object handlers share (fresh version ids, the `versionId` parameter, finding the version a
GET/HEAD/copy/tagging request names, and the headers that describe a version).

Where versions live is `meta.layout`'s business; what a version means is the state machine's.
This module only speaks S3 about them.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from aiohttp import web

from ...meta.commands import SetBucketVersioning
from ...users import owner_id
from .. import xml
from ..conditions import http_date
from ..context import Context
from ..errors import ErrorCode, S3Error
from .bucket import owner_xml
from .list import _encoder, _max_keys

NULL = "null"
_VERSION_ID = re.compile(r"[A-Za-z0-9_-]{32}")
_AFTER_KEY = b"\x01"  # after every version of a key (V/ entries continue with \0), before k+"\x01"
_AFTER_ALL = b"\xff"  # never occurs in UTF-8: after every key under a common prefix


def new_version_id() -> str:
    """32 URL-safe characters; the state machine uses it only if the bucket is Enabled."""
    return secrets.token_urlsafe(24)


def is_version_id(value: str) -> bool:
    return value == NULL or _VERSION_ID.fullmatch(value) is not None


def check_version_id(value: str, *, argument: str = "versionId") -> str:
    """S3 answers an id it could never have issued with InvalidArgument, not NoSuchVersion."""
    if not is_version_id(value):
        raise S3Error(
            ErrorCode.InvalidArgument,
            "Invalid version id specified",
            ArgumentName=argument,
            ArgumentValue=value,
        )
    return value


def requested_version(ctx: Context) -> str | None:
    value = ctx.endpoint.q("versionId")
    return None if value is None else check_version_id(value)


def is_versioned(bucket: dict[str, Any]) -> bool:
    """Versioning was configured once (Enabled or Suspended; it never goes back to unset)."""
    return bucket.get("versioning") is not None


def version_header(version_id: str | None) -> dict[str, str]:
    return {} if version_id is None else {"x-amz-version-id": version_id}


def created_version_header(version_id: str | None) -> dict[str, str]:
    """What PUT, COPY and CompleteMultipartUpload answer: the id of the version they created,
    but none for a `null` version (a Suspended bucket), as S3 does."""
    return {} if version_id in (None, NULL) else {"x-amz-version-id": version_id}


def _marker_headers(record: dict[str, Any]) -> dict[str, str]:
    return {"x-amz-delete-marker": "true", "x-amz-version-id": record["vid"]}


def find_version(
    ctx: Context, bucket_name: str, bucket: dict[str, Any], key: str, version_id: str | None
) -> dict[str, Any]:
    """The version a read names: the current one, or `version_id`; S3's error otherwise.

    A current delete marker is NoSuchKey with `x-amz-delete-marker`; naming a delete marker by
    id is MethodNotAllowed (S3 will not GET a marker). In a versioning bucket the record always
    carries its `vid` (`null` for keys written before versioning)."""
    meta = ctx.node.meta
    if version_id is None:
        record = meta.object(bucket_name, key)
        if record is None:
            headers: dict[str, str] = {}
            if is_versioned(bucket):
                newest = meta.key_versions(bucket_name, key, limit=1)
                if newest and newest[0].get("marker"):
                    headers = _marker_headers(newest[0])
            raise S3Error(ErrorCode.NoSuchKey, Key=key, headers=headers)
        if is_versioned(bucket) and "vid" not in record:
            record = {**record, "vid": NULL}
        return record
    record = meta.version(bucket_name, key, version_id)
    if record is None:
        raise S3Error(ErrorCode.NoSuchVersion, Key=key, VersionId=version_id)
    if record.get("marker"):
        raise S3Error(
            ErrorCode.MethodNotAllowed,
            headers={**_marker_headers(record), "Last-Modified": http_date(record["mtime"]),
                     "Allow": "DELETE"},
            Method=ctx.http.method,
            ResourceType="DeleteMarker",
        )
    return record


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
