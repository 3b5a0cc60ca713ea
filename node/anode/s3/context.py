"""What a handler receives: the HTTP request, its resolved endpoint, the authenticated user.

Also where handlers ask for permission: `ctx.bucket()` loads the bucket and checks that the caller
may perform the operation's action (the `permissions` table) on the bucket or the addressed key,
with `authz.decide` (bucket policy, ACLs, PublicAccessBlock, ownership). `user` is None for an
anonymous request, which gets exactly what ACLs and policies grant to everyone.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from aiohttp import web

from ..chunks.ingest import BodyReader
from ..users import owner_id
from . import acl as A
from .authz import BUCKET_WRITE_ACTIONS, BucketAccess, Caller, ObjectAccess, bucket_access, decide
from .errors import ErrorCode, S3Error
from .permissions import action_for
from .policy import Identity
from .router import Endpoint
from .sigv4 import AuthContext
from .streaming import body_reader

if TYPE_CHECKING:
    from ..node import Node
    from ..users import User

ANONYMOUS_OWNER = ""  # the owner name of what anonymous callers write; no user has this name
_DEFAULT: Any = object()
# Request headers a policy can test as `s3:<header>` condition keys.
_HEADER_KEYS = (
    "x-amz-acl", "x-amz-grant-read", "x-amz-grant-write", "x-amz-grant-read-acp",
    "x-amz-grant-write-acp", "x-amz-grant-full-control", "x-amz-copy-source",
    "x-amz-metadata-directive", "x-amz-server-side-encryption",
    "x-amz-server-side-encryption-aws-kms-key-id",
    "x-amz-server-side-encryption-customer-algorithm", "x-amz-storage-class",
    "x-amz-content-sha256", "x-amz-object-lock-mode", "x-amz-object-lock-retain-until-date",
    "x-amz-object-lock-legal-hold", "x-amz-website-redirect-location",
    "if-match", "if-none-match",  # s3:if-match, s3:if-none-match: enforced conditional writes
)


@dataclass
class Context:
    http: web.Request
    endpoint: Endpoint
    node: Node
    user: User | None
    auth: AuthContext | None
    request_id: str
    response_headers: dict[str, str] = field(default_factory=dict)
    # The key domain the request's body is sealed in (s3.sse.Encryption), set by handlers that
    # store a body before `receive_body`; None stores it in the clear.
    encryption: Any = None
    # False: the request was admitted on this member's possibly stale view (no read barrier; see
    # s3.app.CHECKED_AT_APPLY). Set once the handler has started on the body.
    fresh: bool = True
    body_started: bool = False

    @property
    def headers(self) -> Any:
        return self.http.headers

    @property
    def bucket_name(self) -> str:
        assert self.endpoint.bucket is not None
        return self.endpoint.bucket

    @property
    def key(self) -> str:
        assert self.endpoint.key is not None
        return self.endpoint.key

    @property
    def anonymous(self) -> bool:
        return self.user is None

    @property
    def owner_name(self) -> str:
        """Who owns what this request creates."""
        return ANONYMOUS_OWNER if self.user is None else self.user.name

    @functools.cached_property
    def caller(self) -> Caller:
        if self.user is None:
            return Caller(Identity(None, owner_id(ANONYMOUS_OWNER)))
        return Caller(Identity(self.user.name, self.user.id), is_root=self.user.is_root)

    def bucket(self, name: str | None = None, *, action: str | None = _DEFAULT,
               key: str | None = _DEFAULT) -> dict[str, Any]:
        """The bucket record, if it exists and the caller may perform `action` on it or on `key`.

        By default the action is the operation's (see `permissions`) and the key the request's.
        """
        name = name or self.bucket_name
        record = self.node.meta.bucket(name)
        if record is None:
            raise S3Error(ErrorCode.NoSuchBucket, BucketName=name)
        expected = self.headers.get("x-amz-expected-bucket-owner" if name == self.endpoint.bucket
                                    else "x-amz-source-expected-bucket-owner")
        if expected is not None and expected not in (owner_id(record["owner"]), record["owner"]):
            raise S3Error(ErrorCode.AccessDenied)
        if action is _DEFAULT:
            action = action_for(self.endpoint.operation, self.endpoint.query)
        if key is _DEFAULT:
            key = self.endpoint.key if name == self.endpoint.bucket else None
        if action is not None:
            self.authorize(name, record, action, key)
        return record

    def authorize(self, name: str, record: dict[str, Any], action: str,
                  key: str | None = None) -> None:
        if not self.allowed(name, record, action, key):
            raise S3Error(ErrorCode.AccessDenied)

    def allowed(self, name: str, record: dict[str, Any], action: str,
                key: str | None = None) -> bool:
        """authz.decide for this caller; a missing object is visible to whoever may list."""
        if self.caller.is_root:
            return True
        access = self.access(name, record)
        if key is None:
            return decide(self.caller, action, access, None, self.conditions)
        if action in BUCKET_WRITE_ACTIONS:  # the bucket decides; the object does not matter
            return decide(self.caller, action, access, ObjectAccess(key), self.conditions)
        obj, tags = self.object_access(name, key)
        context = self.conditions
        if tags:  # s3:ExistingObjectTag/<key>
            context = {**context, **{f"s3:existingobjecttag/{k.lower()}": [v] for k, v in tags}}
        if obj.owner is None:
            # A missing key (AWS): a 404 for whoever may list the bucket, a 403 for anyone else.
            # Listing is judged as a listing of that very key (s3:prefix = the key): a caller
            # whose ListBucket an s3:prefix condition narrows learns no more than it could list.
            listing = {k: v for k, v in self.conditions.items()
                       if k not in ("s3:prefix", "s3:delimiter", "s3:max-keys")}
            listing["s3:prefix"] = [key]
            return decide(self.caller, "s3:ListBucket", access, None, listing)
        return decide(self.caller, action, access, obj, context)

    def access(self, name: str, record: dict[str, Any]) -> BucketAccess:
        return bucket_access(name, record, owner_id(record["owner"]))

    def object_access(self, bucket: str, key: str) -> tuple[ObjectAccess, list[list[str]]]:
        """The object (or version) an action is about, and its tags."""
        version_id = self.endpoint.q("versionId") if bucket == self.endpoint.bucket else None
        meta = self.node.meta
        record = meta.version(bucket, key, version_id) if version_id else meta.object(bucket, key)
        if record is None or record.get("marker"):
            return ObjectAccess(key), []
        owner = record.get("owner", "")
        return (ObjectAccess(key, A.user(owner_id(owner), owner), record.get("acl")),
                record.get("tags") or [])

    def may_access(self, bucket_record: dict[str, Any]) -> bool:
        """ListBuckets lists the buckets the caller owns (root: every bucket)."""
        return self.user is not None and (
            self.user.is_root or bucket_record["owner"] == self.user.name)

    @functools.cached_property
    def conditions(self) -> dict[str, list[str]]:
        """The request's condition keys (lower-cased), as bucket policy Conditions test them."""
        headers, query = self.headers, self.endpoint.query
        now = time.time()
        keys: dict[str, list[str]] = {
            "aws:sourceip": [self.http.remote or ""],
            "aws:securetransport": ["true" if self.http.secure else "false"],
            "aws:currenttime": [datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")],
            "aws:epochtime": [str(int(now))],
            "aws:principaltype": ["Anonymous" if self.user is None else "User"],
        }
        if self.user is not None:
            keys["aws:username"] = [self.user.name]
            keys["aws:userid"] = [self.user.id]
        for header, key in (("User-Agent", "aws:useragent"), ("Referer", "aws:referer")):
            if header in headers:
                keys[key] = [headers[header]]
        for param in ("prefix", "delimiter", "max-keys"):
            if param in query:
                keys[f"s3:{param}"] = [query[param]]
        if "versionId" in query:
            keys["s3:versionid"] = [query["versionId"]]
        for header in _HEADER_KEYS:
            if header in headers:
                keys[f"s3:{header}"] = [headers[header]]
        if "x-amz-tagging" in headers:  # s3:RequestObjectTag/<key>, s3:RequestObjectTagKeys
            tags = parse_qsl(headers["x-amz-tagging"], keep_blank_values=True)
            keys["s3:requestobjecttagkeys"] = [k for k, _ in tags]
            for k, v in tags:
                keys[f"s3:requestobjecttag/{k.lower()}"] = [v]
        if self.auth is not None:
            v4 = bool(self.auth.scope)
            keys["s3:signatureversion"] = ["AWS4-HMAC-SHA256" if v4 else "AWS"]
            presigned = "X-Amz-Signature" in query or "Signature" in query
            keys["s3:authtype"] = ["REST-QUERY-STRING" if presigned else "REST-HEADER"]
        return keys

    def body(self) -> BodyReader:
        self.body_started = True
        return body_reader(self.http.content, self.auth, self.http.headers)

    async def read_small_body(self, limit: int) -> bytes:
        """A whole request body for XML requests, verified like any other body."""
        reader = self.body()
        parts: list[bytes] = []
        total = 0
        while data := await reader.read_chunk():
            total += len(data)
            if total > limit:
                raise S3Error(ErrorCode.MalformedXML, "The XML you provided was too large")
            parts.append(data)
        return b"".join(parts)
