"""The console's way to objects: S3 requests to this node's own S3 listener, signed (SigV4) as
the logged-in user.

So the console never decides who may read or write what, and never reads the object store
itself: authorization (policies, ACLs, ownership), encryption, quotas, versioning, the read
barrier and the audit record are exactly those of any S3 client with the user's keys.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote

import aiohttp
from defusedxml import ElementTree
from yarl import URL

from ..config import Config, parse_addr
from ..s3.sigv4 import ALGORITHM, TERMINATOR, canonical_request, signing_key
from ..tls import peer_context
from ..users import User

_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_LOOPBACK = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


class S3Failure(Exception):
    """An S3 error answer, with its status, code and message for the page that shows it."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class ObjectEntry:
    key: str
    size: int
    last_modified: str
    etag: str


@dataclass(frozen=True)
class Listing:
    prefixes: list[str] = field(default_factory=list)
    objects: list[ObjectEntry] = field(default_factory=list)
    next_token: str | None = None


def sign(
    *,
    method: str,
    host: str,
    raw_path: str,
    query: Sequence[tuple[str, str]],
    payload_sha256: str,
    user: User,
    region: str,
    now: datetime,
) -> dict[str, str]:
    """The headers that sign one request with the user's keys (header SigV4)."""
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    date = amz_date[:8]
    headers = {"host": host, "x-amz-content-sha256": payload_sha256, "x-amz-date": amz_date}
    signed = tuple(sorted(headers))
    request = canonical_request(
        method=method,
        raw_path=raw_path,
        query=[(k.encode(), v.encode()) for k, v in query],
        headers=headers,
        signed_headers=signed,
        payload_hash=payload_sha256,
    )
    scope = f"{date}/{region}/s3/{TERMINATOR}"
    string_to_sign = "\n".join(
        (ALGORITHM, amz_date, scope, hashlib.sha256(request.encode()).hexdigest())
    )
    key = signing_key(user.secret_key, date, region, "s3")
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = (
        f"{ALGORITHM} Credential={user.access_key}/{scope}, "
        f"SignedHeaders={';'.join(signed)}, Signature={signature}"
    )
    return headers


def encode_query(query: Sequence[tuple[str, str]]) -> str:
    return "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in query)


def object_path(bucket: str, key: str | None = None) -> str:
    """`/bucket/key` with every byte of the key escaped ('/' and '.' too): no client or server
    on the way can read a hostile key as dot segments or as anything but a key."""
    path = "/" + quote(bucket, safe="")
    if key is not None:
        path += "/" + quote(key, safe="").replace(".", "%2E")
    return path


def parse_error(status: int, body: bytes) -> S3Failure:
    try:
        root = ElementTree.fromstring(body)
        code = root.findtext("Code") or "Error"
        message = root.findtext("Message") or ""
    except Exception:  # no XML (a HEAD, a proxy): the status says it
        code, message = "Error", body[:200].decode("utf-8", "replace")
    return S3Failure(status, code, message)


def parse_listing(body: bytes) -> Listing:
    """A ListObjectsV2 answer asked with `encoding-type=url` (keys with characters XML 1.0
    cannot carry come through too)."""
    root = ElementTree.fromstring(body)
    objects = [
        ObjectEntry(
            key=unquote(item.findtext(f"{_NS}Key") or ""),
            size=int(item.findtext(f"{_NS}Size") or 0),
            last_modified=item.findtext(f"{_NS}LastModified") or "",
            etag=(item.findtext(f"{_NS}ETag") or "").strip('"'),
        )
        for item in root.iter(f"{_NS}Contents")
    ]
    prefixes = [
        unquote(p.findtext(f"{_NS}Prefix") or "") for p in root.iter(f"{_NS}CommonPrefixes")
    ]
    truncated = root.findtext(f"{_NS}IsTruncated") == "true"
    token = root.findtext(f"{_NS}NextContinuationToken") if truncated else None
    return Listing(prefixes, objects, token)


class LoopbackS3:
    """S3 requests to this node's own S3 listener (TLS when it serves TLS, trusting only the
    node's own certificate, as members trust each other)."""

    def __init__(self, config: Config) -> None:
        host, port = parse_addr(config.node.s3_addr)
        host = _LOOPBACK.get(host, host)
        self.host = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.base = f"{config.scheme}://{self.host}"
        self.region = config.node.region
        self._ssl = peer_context(cert_file=config.peer_ca_file) if config.tls else None
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def request(
        self,
        user: User,
        method: str,
        path: str,
        query: Sequence[tuple[str, str]] = (),
        *,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
    ) -> aiohttp.ClientResponse:
        """Send one signed request; the caller reads (and releases) the response."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=60),
                auto_decompress=False,
            )
        payload = hashlib.sha256(body).hexdigest() if body else _EMPTY_SHA256
        raw_query = encode_query(query)
        signed = sign(
            method=method,
            host=self.host,
            raw_path=path,
            query=query,
            payload_sha256=payload,
            user=user,
            region=self.region,
            now=datetime.now(UTC),
        )
        url = URL(self.base + path + (f"?{raw_query}" if raw_query else ""), encoded=True)
        return await self._session.request(
            method,
            url,
            data=body or None,
            headers={**(headers or {}), **signed},
            ssl=self._ssl if self._ssl is not None else True,
            allow_redirects=False,
        )

    async def call(
        self,
        user: User,
        method: str,
        path: str,
        query: Sequence[tuple[str, str]] = (),
        **kwargs: Any,
    ) -> bytes:
        """A request whose whole answer is wanted; an S3 error raises S3Failure."""
        async with await self.request(user, method, path, query, **kwargs) as response:
            body = await response.read()
            if response.status >= 300:
                raise parse_error(response.status, body)
            return body

    async def list_objects(
        self, user: User, bucket: str, *, prefix: str, token: str | None, max_keys: int
    ) -> Listing:
        query = [
            ("list-type", "2"),
            ("delimiter", "/"),
            ("encoding-type", "url"),
            ("prefix", prefix),
            ("max-keys", str(max_keys)),
        ]
        if token:
            query.append(("continuation-token", token))
        return parse_listing(await self.call(user, "GET", object_path(bucket), query))
