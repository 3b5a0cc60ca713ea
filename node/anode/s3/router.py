"""Every S3 endpoint, and the one function that turns a request into exactly one of them.

Resolution uses the method, whether a bucket and a key are addressed (path-style `/bucket/key` or
virtual-host-style `bucket.localhost/key`), the query's sub-resource keyword and a few headers.
Endpoints Anode does not implement are named too, so they answer NotImplemented on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote

from .errors import ErrorCode, S3Error

# Sub-resources that select a different operation; the first present wins, so uploadId
# (UploadPart carries partNumber too) comes first.
SUBRESOURCES = (
    "uploadId",
    "uploads",
    "accelerate",
    "acl",
    "analytics",
    "attributes",
    "cors",
    "delete",
    "encryption",
    "intelligent-tiering",
    "inventory",
    "legal-hold",
    "lifecycle",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "ownershipControls",
    "partNumber",
    "policy",
    "policyStatus",
    "publicAccessBlock",
    "replication",
    "requestPayment",
    "restore",
    "retention",
    "select",
    "tagging",
    "torrent",
    "versioning",
    "versions",
    "website",
    "renameObject",
    "session",
)

_NAMED: dict[tuple[str, str], str] = {
    # (method, sub-resource) for bucket-level requests
    ("GET", "location"): "GetBucketLocation",
    ("GET", "uploads"): "ListMultipartUploads",
    ("POST", "delete"): "DeleteObjects",
    ("GET", "versions"): "ListObjectVersions",
}

_OBJECT_NAMED: dict[tuple[str, str], str] = {
    ("POST", "uploads"): "CreateMultipartUpload",
    ("POST", "uploadId"): "CompleteMultipartUpload",
    ("PUT", "uploadId"): "UploadPart",
    ("GET", "uploadId"): "ListParts",
    ("DELETE", "uploadId"): "AbortMultipartUpload",
    ("POST", "select"): "SelectObjectContent",
}


@dataclass(frozen=True)
class Endpoint:
    operation: str  # the S3 operation name, e.g. "PutObject"
    bucket: str | None
    key: str | None
    query: dict[str, str]

    def q(self, name: str, default: str | None = None) -> str | None:
        return self.query.get(name, default)


def vhost_bucket(host: str, domains: list[str]) -> str | None:
    """The bucket named by a virtual-host-style Host header (`bucket.localhost:8080`), if any."""
    hostname = (host.rsplit(":", 1)[0] if host.count(":") == 1 else host).lower()
    for domain in domains:
        suffix = "." + domain.lower()
        if hostname.endswith(suffix) and len(hostname) > len(suffix):
            return hostname[: -len(suffix)]
    return None


def split_target(raw_path: str, host: str, domains: list[str]) -> tuple[str | None, str | None]:
    """(bucket, key) from the raw request path and Host header; keys are taken verbatim."""
    path = raw_path.split("?", 1)[0]
    vhost = vhost_bucket(host, domains)
    try:
        decoded = unquote(path, errors="strict")
    except UnicodeDecodeError:
        raise S3Error(ErrorCode.InvalidArgument, "Object key is not valid UTF-8") from None
    if not decoded.startswith("/"):
        raise S3Error(ErrorCode.InvalidRequest, "Request path must start with '/'")
    rest = decoded[1:]
    if vhost is not None:
        return vhost, rest or None
    if not rest:
        return None, None
    bucket, sep, key = rest.partition("/")
    return bucket, (key if sep and key else None)


def parse_query(raw_query: str) -> dict[str, str]:
    return dict(parse_qsl(raw_query, keep_blank_values=True))


def resolve(
    method: str,
    bucket: str | None,
    key: str | None,
    query: dict[str, str],
    headers: dict[str, str] | None = None,
) -> Endpoint:
    sub = next((s for s in SUBRESOURCES if s in query), None)
    headers = headers or {}
    if method == "OPTIONS":
        op = "PreflightCors"  # answered from the bucket's CORS rules, without authentication
    elif bucket is None:
        op = "ListBuckets" if method == "GET" else "NotImplemented"
    elif key is None:
        op = _bucket_operation(method, sub, query)
    else:
        op = _object_operation(method, sub, headers)
    return Endpoint(op, bucket, key, query)


def _bucket_operation(method: str, sub: str | None, query: dict[str, str]) -> str:
    if sub is None:
        return {
            "PUT": "CreateBucket",
            "DELETE": "DeleteBucket",
            "HEAD": "HeadBucket",
            "GET": "ListObjectsV2" if query.get("list-type") == "2" else "ListObjects",
            "POST": "PostObject",
        }.get(method, "NotImplemented")
    return _NAMED.get((method, sub), f"{method.title()}Bucket{_camel(sub)}")


def _object_operation(method: str, sub: str | None, headers: dict[str, str]) -> str:
    copy = "x-amz-copy-source" in headers
    if sub == "partNumber" and method in ("GET", "HEAD"):
        sub = None  # GET ?partNumber=N is GetObject of one part
    if sub == "uploadId" and method == "PUT" and copy:
        return "UploadPartCopy"
    if sub is None:
        if method == "PUT":
            return "CopyObject" if copy else "PutObject"
        return {"GET": "GetObject", "HEAD": "HeadObject", "DELETE": "DeleteObject"}.get(
            method, "NotImplemented"
        )
    return _OBJECT_NAMED.get((method, sub), f"{method.title()}Object{_camel(sub)}")


def _camel(sub: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in sub.replace("-", " ").split())
