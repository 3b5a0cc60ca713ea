"""What a handler receives: the HTTP request, its resolved endpoint, the authenticated user.

Also the access rule of part 1: a bucket belongs to its creator; root may act on every bucket;
anyone else gets AccessDenied. Handlers ask `ctx.bucket()` rather than reading buckets themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..chunks.ingest import BodyReader
from .errors import ErrorCode, S3Error
from .router import Endpoint
from .sigv4 import AuthContext
from .streaming import body_reader

if TYPE_CHECKING:
    from ..node import Node, User


@dataclass
class Context:
    http: web.Request
    endpoint: Endpoint
    node: Node
    user: User
    auth: AuthContext | None
    request_id: str
    response_headers: dict[str, str] = field(default_factory=dict)

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

    def bucket(self, name: str | None = None) -> dict[str, Any]:
        """The bucket record, if it exists and this user may use it."""
        name = name or self.bucket_name
        record = self.node.meta.bucket(name)
        if record is None:
            raise S3Error(ErrorCode.NoSuchBucket, BucketName=name)
        if not self.may_access(record):
            raise S3Error(ErrorCode.AccessDenied)
        return record

    def may_access(self, bucket_record: dict[str, Any]) -> bool:
        return self.user.is_root or bucket_record["owner"] == self.user.name

    def body(self) -> BodyReader:
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
