"""AWS Signature Version 2 (HMAC-SHA1): the `AWS key:sig` header and `Signature`/`Expires` URLs.

Still what many tools send, and what boto3's `generate_presigned_url` produces by default for a
custom endpoint, so a store users migrate to must accept it. The string to sign follows the S3
"REST authentication" document and botocore's `HmacV1Auth`: verb, Content-MD5, Content-Type, Date
(or Expires), the x-amz-* headers, and the path-style resource with its sub-resources.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import unquote

from .errors import ErrorCode, S3Error
from .router import SUBRESOURCES as ROUTED
from .sigv4 import UNSIGNED_PAYLOAD, AuthContext, unsigned_context

MAX_SKEW = 15 * 60
SUBRESOURCES = frozenset(
    (
        "accelerate",
        "acl",
        "cors",
        "defaultObjectAcl",
        "location",
        "logging",
        "partNumber",
        "policy",
        "requestPayment",
        "torrent",
        "versioning",
        "versionId",
        "versions",
        "website",
        "uploads",
        "uploadId",
        "response-content-type",
        "response-content-language",
        "response-expires",
        "response-cache-control",
        "response-content-disposition",
        "response-content-encoding",
        "delete",
        "lifecycle",
        "tagging",
        "restore",
        "storageClass",
        "notification",
        "replication",
        "analytics",
        "metrics",
        "inventory",
        "select",
        "select-type",
        "object-lock",
    )
)


def is_v2(headers: Mapping[str, str], raw_query: str) -> bool:
    if headers.get("Authorization", "").startswith("AWS "):
        return True
    names = {pair.split("=", 1)[0] for pair in raw_query.split("&")}
    return "AWSAccessKeyId" in names and "Signature" in names


def authenticate_v2(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Mapping[str, str],
    lookup: Callable[[str], str | None],
    now: datetime,
    vhost_bucket: str | None,
) -> AuthContext:
    # names decoded as the router decodes them, so "?ac%6C" is signed as the "acl" it acts as
    pairs = [[unquote(k), *v] for k, *v in (p.split("=", 1) for p in raw_query.split("&") if p)]
    query = {k: unquote(v[0]) if v else "" for k, *v in pairs}
    _refuse_unsignable(query)
    authorization = headers.get("Authorization")
    if authorization is not None:
        access_key, _, signature = authorization[4:].strip().partition(":")
        amz_date = headers.get("x-amz-date")  # when present, it alone is the request's time
        date = "" if amz_date is not None else headers.get("Date", "")
        _check_skew(headers.get("Date") if amz_date is None else amz_date, now)
    else:
        access_key, signature = query["AWSAccessKeyId"], query["Signature"]
        date = query.get("Expires", "")
        if not date.isdigit():
            raise S3Error(ErrorCode.AccessDenied, "Query-string authentication requires Expires")
        if int(date) < now.timestamp():
            raise S3Error(ErrorCode.AccessDenied, "Request has expired")
    secret = lookup(access_key)
    if secret is None:
        raise S3Error(ErrorCode.InvalidAccessKeyId, AWSAccessKeyId=access_key)
    resource = _resource(raw_path, pairs, vhost_bucket)
    # a bucket's root is "/bucket/" in the canonical resource even when the path is "/bucket"
    # (botocore signs CreateBucket, ListObjects, ... so); clients that sign the path as sent
    # are accepted too
    path, sep, sub = resource.partition("?")
    resources = [resource]
    if path.count("/") == 1 and len(path) > 1:
        resources.insert(0, path + "/" + sep + sub)
    string_to_sign = ""
    for candidate in resources:
        string_to_sign = "\n".join(
            [
                method,
                headers.get("Content-MD5", ""),
                headers.get("Content-Type", ""),
                date,
                *_amz_headers(headers),
                candidate,
            ]
        )
        expected = base64.b64encode(
            hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha1).digest()
        ).decode()
        if hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
            break
    else:
        raise S3Error(ErrorCode.SignatureDoesNotMatch, StringToSign=string_to_sign)
    payload = headers.get("x-amz-content-sha256", UNSIGNED_PAYLOAD)
    return dataclasses.replace(unsigned_context(payload), access_key=access_key)


def _refuse_unsignable(query: Mapping[str, str]) -> None:
    """Sub-resources the router acts on but SigV2's string to sign leaves out (legal-hold,
    retention, encryption, ...): a signature for one request would pass for another (a PutObject
    URL replayed as `?retention`), so SigV2 is refused for them, as AWS refuses SigV2 where it
    does not support it. SigV4 signs the whole query."""
    unsignable = sorted(name for name in query if name in ROUTED and name not in SUBRESOURCES)
    if unsignable:
        raise S3Error(
            ErrorCode.InvalidRequest,
            "The authorization mechanism you have provided is not supported for "
            f"?{'&'.join(unsignable)}. Please use AWS4-HMAC-SHA256.",
        )


def _check_skew(value: str | None, now: datetime) -> None:
    try:
        when: datetime | None = parsedate_to_datetime(value or "")
    except (TypeError, ValueError, IndexError):
        when = None
    if when is not None and when.tzinfo is None:  # "-0000": UTC, not the server's local time
        when = when.replace(tzinfo=UTC)
    if when is None or when.year < 1970:
        raise S3Error(
            ErrorCode.AccessDenied, "AWS authentication requires a valid Date or x-amz-date header"
        )
    if abs(when.timestamp() - now.timestamp()) > MAX_SKEW:
        raise S3Error(ErrorCode.RequestTimeTooSkewed)


def _amz_headers(headers: Mapping[str, str]) -> list[str]:
    collected: dict[str, list[str]] = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower.startswith("x-amz-"):
            collected.setdefault(lower, []).append(" ".join(value.split()))
    return [f"{name}:{','.join(values)}" for name, values in sorted(collected.items())]


def _resource(raw_path: str, pairs: list[list[str]], vhost_bucket: str | None) -> str:
    path = f"/{vhost_bucket}{raw_path}" if vhost_bucket else raw_path
    sub = sorted((k, unquote(v[0]) if v else None) for k, *v in pairs if k in SUBRESOURCES)
    if not sub:
        return path
    return path + "?" + "&".join(k if v is None else f"{k}={v}" for k, v in sub)
