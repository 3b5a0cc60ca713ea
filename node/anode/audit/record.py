"""Audit records and the pure decisions about them: category, claimed credentials, JSON.

A record holds facts about a request and its answer, never a header or a query value: secrets
(Authorization, signatures, SSE-C keys, presigned query values) cannot leak into it because
nothing copies them in. The one credential part kept is the access key id, which is not secret.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

CATEGORIES = ("read", "write", "admin", "auth-failure")
ERROR_CODE = "anode.error_code"  # the error code of an answer, in the response's own mapping
ANONYMOUS = "anonymous"
UNAUTHENTICATED = "unauthenticated"  # credentials were sent and refused (or never checked)
# Set in the request by an app that authenticates for itself (the web console): the caller as
# (principal, access key), and whether the request is worth no record (a stylesheet).
PRINCIPAL = "anode.audit.principal"
UNAUDITED = "anode.audit.skip"

_READ_PREFIXES = ("Get", "Head", "List", "Select")
_V4_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")
_V2_HEADER = re.compile(r"^AWS ([^:\s]+):")


@dataclass(frozen=True)
class AuditRecord:
    time: str  # ISO 8601 UTC, when the request arrived
    request_id: str
    node: str  # the member that served it
    api: str  # "s3" or "admin"
    category: str  # one of CATEGORIES
    principal: str  # user name, "anonymous" or "unauthenticated"
    access_key: str | None  # the access key id used (or claimed, when refused)
    source: str | None  # the peer address of the connection
    method: str
    operation: str
    bucket: str | None
    key: str | None
    version_id: str | None
    status: int
    error: str | None  # the S3 (or admin API) error code
    bytes_in: int
    bytes_out: int
    duration_ms: float

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), ensure_ascii=False)


def category(api: str, method: str, operation: str, status: int) -> str:
    """Refusals of who the caller is or what they may do are `auth-failure`, whatever the
    operation; the rest is `admin` (admin API), `read` or `write`."""
    if status in (401, 403):
        return "auth-failure"
    if api == "admin":
        return "admin"
    if operation.startswith(_READ_PREFIXES) or method in ("GET", "HEAD", "OPTIONS"):
        return "read"
    return "write"


def claimed_access_key(authorization: str | None, query: dict[str, str]) -> str | None:
    """The access key id a request names (SigV4 or SigV2, header or presigned), verified or
    not: for refused requests, so that failed attempts can be traced to a key."""
    if authorization:
        match = _V4_CREDENTIAL.search(authorization) or _V2_HEADER.match(authorization)
        return match.group(1) if match else None
    credential = query.get("X-Amz-Credential")
    if credential:
        return credential.split("/", 1)[0] or None
    return query.get("AWSAccessKeyId") or None


def timestamp(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat(timespec="milliseconds")
