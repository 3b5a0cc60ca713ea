"""What an object version remembers from its request headers, and the headers it answers with.

Pure functions: request headers -> the metadata part of a version record, and a record -> response
headers. Also the validation of keys, metadata size and storage classes that S3 applies.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from ..config import STORAGE_CLASSES
from .conditions import http_date
from .errors import ErrorCode, S3Error

MAX_KEY_BYTES = 1024
MAX_USER_METADATA = 2048
MAX_HEADER_BYTES = 8192 * 2  # generous: S3's documented limit is 8 KB of headers, SDKs add more
STANDARD_HEADERS = (
    "Content-Type",
    "Content-Encoding",
    "Content-Disposition",
    "Content-Language",
    "Cache-Control",
    "Expires",
    "x-amz-website-redirect-location",
)
META_PREFIX = "x-amz-meta-"


def validate_key(key: str) -> None:
    encoded = key.encode("utf-8", "surrogatepass")
    if len(encoded) > MAX_KEY_BYTES:
        raise S3Error(
            ErrorCode.KeyTooLongError, Size=str(len(encoded)), MaxSizeAllowed=str(MAX_KEY_BYTES)
        )
    if "\x00" in key or any(0xD800 <= ord(ch) <= 0xDFFF for ch in key):
        raise S3Error(ErrorCode.InvalidArgument, "Object key contains invalid characters")


def metadata_from_headers(headers: Mapping[str, str]) -> dict[str, Any]:
    """The stored metadata fields of a new version (content headers, user metadata, class)."""
    user: dict[str, str] = {}
    size = 0
    for name, value in headers.items():
        lower = name.lower()
        if lower.startswith(META_PREFIX):
            meta_name = lower[len(META_PREFIX) :]
            user[meta_name] = value if meta_name not in user else user[meta_name] + "," + value
            size += len(meta_name.encode()) + len(value.encode())
    if size > MAX_USER_METADATA:
        raise S3Error(
            ErrorCode.MetadataTooLarge, Size=str(size), MaxSizeAllowed=str(MAX_USER_METADATA)
        )
    standard = {h: headers[h] for h in STANDARD_HEADERS if h in headers}
    encoding = standard.get("Content-Encoding")
    if encoding is not None:  # aws-chunked is transfer framing, not the object's encoding
        kept = [e for e in encoding.split(",") if e.strip().lower() != "aws-chunked"]
        if any(e.strip() for e in kept):  # the rest exactly as sent ("deflate, gzip")
            standard["Content-Encoding"] = ",".join(kept).strip()
        else:
            del standard["Content-Encoding"]
    storage_class = headers.get("x-amz-storage-class", "STANDARD")
    if storage_class not in STORAGE_CLASSES:
        raise S3Error(ErrorCode.InvalidStorageClass, StorageClassRequested=storage_class)
    return {
        "ctype": standard.pop("Content-Type", "binary/octet-stream"),
        "meta": user,
        "hdrs": standard,
        "class": storage_class,
    }


def content_md5(headers: Mapping[str, str]) -> bytes | None:
    value = headers.get("Content-MD5")
    if value is None:
        return None
    try:
        digest = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise S3Error(ErrorCode.InvalidDigest) from None
    if len(digest) != 16:
        raise S3Error(ErrorCode.InvalidDigest)
    return digest


def response_headers(record: Mapping[str, Any], *, checksums: bool = False) -> dict[str, str]:
    headers = {
        "ETag": record["etag"],
        "Last-Modified": http_date(record["mtime"]),
        "Content-Type": record.get("ctype") or "binary/octet-stream",
        "Accept-Ranges": "bytes",
    }
    headers.update(record.get("hdrs", {}))
    for name, value in record.get("meta", {}).items():
        headers[META_PREFIX + name] = value
    if record.get("class", "STANDARD") != "STANDARD":
        headers["x-amz-storage-class"] = record["class"]
    if record.get("parts"):
        headers["x-amz-mp-parts-count"] = str(len(record["parts"]))
    if "vid" in record:  # versioning buckets only
        headers["x-amz-version-id"] = record["vid"]
    if record.get("tags"):
        headers["x-amz-tagging-count"] = str(len(record["tags"]))
    if checksums:
        for algorithm, value in record.get("cks", {}).items():
            headers["x-amz-checksum-" + algorithm.lower()] = value
        if record.get("cks"):
            headers["x-amz-checksum-type"] = record.get("cktype", "FULL_OBJECT")
    return headers


RESPONSE_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}
