"""Object versions as S3 speaks of them: fresh version ids, the `versionId` parameter, finding
the version a GET/HEAD/copy/tagging request names, and the headers that describe a version.

Shared by the object handlers (`handlers/get.py`, `put.py`, `copy.py`, `delete.py`, ...). Where
versions live is `meta.layout`'s business; what a version means is the state machine's.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from .conditions import http_date
from .context import Context
from .errors import ErrorCode, S3Error

NULL = "null"
_VERSION_ID = re.compile(r"[A-Za-z0-9_-]{32}")


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
            headers={
                **_marker_headers(record),
                "Last-Modified": http_date(record["mtime"]),
                "Allow": "DELETE",
            },
            Method=ctx.http.method,
            ResourceType="DeleteMarker",
        )
    return record
