"""The hook: an aiohttp access logger on the S3 and admin listeners. aiohttp calls it exactly
once per request, after the answer was sent (or the client left), whatever answered it: a
handler, a refusal before any handler (an `Expect: 100-continue` refusal, a malformed request),
so every request has one record with the bytes really sent."""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from ..node import Node
from ..s3.errors import S3Error
from ..s3.router import parse_query, resolve, split_target
from ..users import ROOT_USER
from .record import (
    ANONYMOUS,
    ERROR_CODE,
    PRINCIPAL,
    UNAUDITED,
    UNAUTHENTICATED,
    AuditRecord,
    category,
    claimed_access_key,
    timestamp,
)
from .sink import AuditLog

log = logging.getLogger(__name__)
_S3_CONTEXT = "anode.context"  # s3.app's Context of an admitted request
_HEAD_BYTES = "anode.audit.head_bytes"
_ADMIN_OPEN = frozenset({"/health", "/ready", "/metrics"})  # probes: no data, no settings


@dataclass(frozen=True)
class Target:
    """What the request addressed and who made it, as the app saw it."""

    operation: str
    principal: str
    access_key: str | None
    bucket: str | None = None
    key: str | None = None


Describe = Callable[[web.BaseRequest, web.StreamResponse, Node], Target | None]
AUDIT_KEY = web.AppKey("audit", tuple)  # (AuditLog, Node, api name, Describe)


def attach(app: web.Application, audit: AuditLog, node: Node, api: str) -> None:
    app[AUDIT_KEY] = (audit, node, api, describe_s3 if api == "s3" else describe_admin)
    app.on_response_prepare.append(_measure_head)


class AuditAccessLogger(AbstractAccessLogger):
    def log(self, request: web.BaseRequest, response: web.StreamResponse, time_: float) -> None:
        try:
            # config_dict: also for requests routed into an app mounted on this one (console)
            entry = request.config_dict.get(AUDIT_KEY) if isinstance(request, web.Request) else None
            if entry is not None:
                _record(request, response, time_, *entry)
        except Exception:  # an audit bug must not break serving; it is loud in the node log
            log.exception("audit record for %s %s failed", request.method, request.path)


def _record(
    request: web.BaseRequest,
    response: web.StreamResponse,
    seconds: float,
    audit: AuditLog,
    node: Node,
    api: str,
    describe: Describe,
) -> None:
    if not audit.enabled:
        return
    target = describe(request, response, node)
    if target is None:
        return
    kind = category(api, request.method, target.operation, response.status)
    if not audit.wants(kind):
        return
    content = request.content
    version = response.headers.get("x-amz-version-id") or request.query.get("versionId")
    audit.write(
        AuditRecord(
            time=timestamp(time.time() - seconds),
            request_id=response.headers.get("x-amz-request-id") or secrets.token_hex(8).upper(),
            node=audit.node_id,
            api=api,
            category=kind,
            principal=target.principal,
            access_key=target.access_key,
            source=request.remote,
            method=request.method,
            operation=target.operation,
            bucket=target.bucket,
            key=target.key,
            version_id=version or None,
            status=response.status,
            error=response.get(ERROR_CODE),
            bytes_in=getattr(content, "total_bytes", 0),
            bytes_out=_body_bytes_sent(request, response),
            duration_ms=round(seconds * 1000, 3),
        )
    )


def describe_s3(request: web.BaseRequest, response: web.StreamResponse, node: Node) -> Target:
    ctx = request.get(_S3_CONTEXT)
    if ctx is not None:  # admitted: the endpoint and the authenticated caller
        user = ctx.user
        return Target(
            ctx.endpoint.operation,
            user.name if user else ANONYMOUS,
            user.access_key if user else None,
            ctx.endpoint.bucket,
            ctx.endpoint.key,
        )
    # refused before admission: resolve again (pure) for the record; the caller is unproven
    raw_path, _, raw_query = request.raw_path.partition("?")
    query = parse_query(raw_query)
    claimed = claimed_access_key(request.headers.get("Authorization"), query)
    principal = UNAUTHENTICATED if claimed else ANONYMOUS
    try:
        bucket, key = split_target(raw_path, request.host, node.config.node.domains)
        operation = resolve(request.method, bucket, key, query, request.headers).operation
    except S3Error:
        return Target("Unknown", principal, claimed)
    return Target(operation, principal, claimed, bucket, key)


def describe_admin(
    request: web.BaseRequest, response: web.StreamResponse, node: Node
) -> Target | None:
    if request.path in _ADMIN_OPEN:
        return None
    route = request.match_info.route if isinstance(request, web.Request) else None
    handler = getattr(route, "handler", None) if route is not None else None
    name = getattr(handler, "__name__", "") if route is not None and route.resource else ""
    words = "".join(part.title() for part in (name or "unknown").split("_"))
    if len(request.match_info.apps) > 1:  # a mounted app (the console): it names the caller
        if request.get(UNAUDITED):
            return None
        principal, access_key = request.get(PRINCIPAL) or (ANONYMOUS, None)
        return Target("Console" + words, principal, access_key,
                      bucket=request.match_info.get("bucket"), key=request.query.get("key"))
    operation = "Admin" + words
    token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    secret = node.root.secret_key
    if secret and token and hmac.compare_digest(token.encode(), secret.encode()):
        principal, access_key = ROOT_USER, node.root.access_key
    else:
        principal, access_key = (UNAUTHENTICATED if token else ANONYMOUS), None
    path = request.match_info.get("name") if request.path.startswith("/buckets/") else None
    return Target(operation, principal, access_key, bucket=path)


def _body_bytes_sent(request: web.BaseRequest, response: web.StreamResponse) -> int:
    """What aiohttp wrote, less the status line and headers as they went out (`_measure_head`)."""
    head = response.get(_HEAD_BYTES)
    if request.method == "HEAD" or head is None:
        return 0
    return max(0, response.body_length - head)


async def _measure_head(request: web.Request, response: web.StreamResponse) -> None:
    """What goes out before the body: the response head, serialized as aiohttp does (the last
    prepare hook, so these are the headers sent), and anything written before it."""
    version = request.version
    head = len(f"HTTP/{version.major}.{version.minor} {response.status} {response.reason}\r\n")
    head += sum(len(k.encode()) + len(v.encode()) + 4 for k, v in response.headers.items()) + 2
    before = getattr(request.writer, "output_size", 0)  # an interim `100 Continue`
    response[_HEAD_BYTES] = before + head
