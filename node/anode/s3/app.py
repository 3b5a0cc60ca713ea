"""The S3 HTTP server: resolve → authenticate → dispatch → answer, and every error as S3 XML.

Read top to bottom, `handle` is the whole request path. Handlers live in `handlers/`, one module
per family of operations, and are looked up by operation name in `handlers.HANDLERS`.
"""

from __future__ import annotations

import errno
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

from aiohttp import web

from ..audit.record import ERROR_CODE
from ..chunks.erasure import Unrecoverable
from ..node import Node
from . import sigv2, sse, xml
from .context import Context
from .errors import ErrorCode, Refused, S3Error
from .handlers import HANDLERS
from .handlers.cors import cors_headers
from .handlers.lifecycle import EXPIRATION_OPERATIONS, expiration_header
from .objectmeta import MAX_HEADER_BYTES
from .router import Endpoint, parse_query, resolve, split_target, vhost_bucket
from .sigv4 import authenticate

log = logging.getLogger(__name__)
T = TypeVar("T")

NODE_KEY = web.AppKey("node", Node)
_CONTEXT = "anode.context"
_AUTH_ERROR = "anode.auth_error"


def make_app(node: Node) -> web.Application:
    app = web.Application(client_max_size=1024**4)
    app[NODE_KEY] = node
    app.router.add_route("*", r"/{tail:[\s\S]*}", handle, expect_handler=expect_continue)
    app.on_response_prepare.append(_add_expiration)
    app.on_response_prepare.append(_answer_headers)
    return app


async def handle(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE_KEY]
    started = time.perf_counter()
    request_id = request["anode.request_id"] = request.get("anode.request_id") or _request_id()
    operation = "Unknown"
    ctx: Context | None = None
    epoch = node.meta.state_machine.restore_epoch
    try:
        ctx = request.get(_CONTEXT) or await _admit(request, node, request_id)
        request[_CONTEXT] = ctx
        operation = ctx.endpoint.operation
        handler = HANDLERS.get(operation)
        if handler is None:
            raise S3Error(ErrorCode.NotImplemented, f"{operation} is not implemented by Anode")
        with node.space.admitted(_adds_bytes(ctx)):
            response = await _refusals_fresh(ctx, lambda: handler(ctx))
        response.headers.update(ctx.response_headers)
        if request.method in ("GET", "HEAD") and not response.prepared:
            _require_whole_state(node, epoch)
    except Refused as error:
        if 400 <= error.status < 500 and not node.meta.state_machine.consistent_since(epoch):
            error = _partial_state()
        response = error_response(error, request_id, resource=request.path)
    except Exception as exc:
        if _client_gone(request, exc):
            log.info(
                "client closed the connection during %s %s (%s)", request.method, request.path, exc
            )
            response = web.Response(status=499)  # reaches nobody; counted as nginx does
        else:
            response = error_response(_unexpected(exc, request), request_id, resource=request.path)
    node.metrics.observe(operation, response.status, time.perf_counter() - started)
    return response


_BODY_WRITES = frozenset({"PutObject", "UploadPart"})


async def expect_continue(request: web.Request) -> web.StreamResponse | None:
    """Answer `Expect: 100-continue` only after the request is resolved and authenticated, and
    for uploads the caller may write to the bucket (a missing bucket, a refusal: the error)."""
    node = request.app[NODE_KEY]
    request_id = _request_id()
    request["anode.request_id"] = request_id
    try:
        ctx = request[_CONTEXT] = await _admit(request, node, request_id)
        if ctx.endpoint.operation in _BODY_WRITES:  # AWS refuses before the body is sent

            async def may_write() -> None:
                ctx.bucket()
                with node.space.admitted(_adds_bytes(ctx)):
                    pass

            await _refusals_fresh(ctx, may_write)
    except Refused as error:
        response = error_response(error, request_id, resource=request.path)
        response.headers["x-amz-request-id"] = request_id
        response.force_close()  # the client will not send the body we refused
        return response
    if request.version == (1, 1) and request.headers.get("Expect", "").lower() == "100-continue":
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    return None


# Writes whose every precondition the state machine checks again when it applies them (bucket
# exists, upload exists, If-Match / If-None-Match): they skip the read barrier, since the log
# orders them anyway. What they read before (credentials, the bucket's settings and policies)
# may then be a few milliseconds old on a follower, as AWS documents for bucket configuration
# and IAM changes; a refusal is always re-decided after a barrier (`handle`).
CHECKED_AT_APPLY = frozenset({"PutObject", "UploadPart"})


async def _refusals_fresh(ctx: Context, attempt: Callable[[], Awaitable[T]]) -> T:
    """Run `attempt`; if it refuses on a view that may be stale (a request admitted without a
    barrier, say a bucket created a moment ago through another member), take a barrier and
    decide again, unless the body has been read already."""
    try:
        return await attempt()
    except Refused:
        if ctx.fresh or ctx.body_started:
            raise
        await ctx.node.read_barrier()
        ctx.fresh = True
        return await attempt()


async def _admit(request: web.Request, node: Node, request_id: str) -> Context:
    """Resolve the endpoint and authenticate the caller; raise S3Error on any refusal.

    The read barrier comes before authentication, so that users, buckets and objects this
    request looks at (its own credentials included) are at least as new as the request.
    """
    if not node.ready:
        raise S3Error(ErrorCode.ServiceUnavailable, f"Node not ready: {node.not_ready_reason}")
    if node.meta.state_machine.restore_epoch % 2:
        raise _partial_state()
    header_bytes = sum(len(k) + len(v) + 4 for k, v in request.raw_headers)
    if header_bytes > MAX_HEADER_BYTES:
        raise S3Error(ErrorCode.RequestHeaderSectionTooLarge)
    raw_path, _, raw_query = request.raw_path.partition("?")
    bucket, key = split_target(raw_path, request.host, node.config.node.domains)
    query = parse_query(raw_query)
    endpoint = resolve(request.method, bucket, key, query, request.headers)
    fresh = endpoint.operation not in CHECKED_AT_APPLY
    if fresh:
        await node.read_barrier()
    try:
        ctx = _authenticate(request, node, request_id, endpoint)
    except Refused:
        if fresh:
            raise
        await node.read_barrier()
        fresh = True
        ctx = _authenticate(request, node, request_id, endpoint)
    ctx.fresh = fresh
    return ctx


def _authenticate(request: web.Request, node: Node, request_id: str, endpoint: Endpoint) -> Context:
    raw_path, _, raw_query = request.raw_path.partition("?")
    if endpoint.operation == "PreflightCors":  # browsers send preflights without credentials
        return Context(
            http=request, endpoint=endpoint, node=node, user=None, auth=None, request_id=request_id
        )
    sse.require_secure_transport(
        request.headers,
        secure=_over_tls(request),
        allow_insecure=node.config.s3.sse_c_allow_insecure,
    )
    now = datetime.now(UTC)
    if sigv2.is_v2(request.headers, raw_query):
        vhost = vhost_bucket(request.host, node.config.node.domains)
        auth = sigv2.authenticate_v2(
            method=request.method,
            raw_path=raw_path,
            raw_query=raw_query,
            headers=request.headers,
            lookup=node.secret_for,
            now=now,
            vhost_bucket=vhost,
        )
    else:
        auth = authenticate(
            method=request.method,
            raw_path=raw_path,
            raw_query=raw_query,
            headers=request.headers,
            lookup=node.secret_for,
            now=now,
            region=node.config.node.region,
        )
    if auth is None:  # anonymous: gets what ACLs and bucket policies grant to everyone
        return Context(
            http=request, endpoint=endpoint, node=node, user=None, auth=None, request_id=request_id
        )
    user = node.user_by_access_key(auth.access_key)
    if user is None:  # deleted between signature check and here
        raise S3Error(ErrorCode.InvalidAccessKeyId)
    return Context(
        http=request, endpoint=endpoint, node=node, user=user, auth=auth, request_id=request_id
    )


# Writes that free space or only read: never refused for want of it.
_FREES_SPACE = frozenset({"DeleteObjects", "SelectObjectContent", "PutBucketLifecycle"})
_METADATA_BYTES = 64 * 1024


def _adds_bytes(ctx: Context) -> int:
    """What a request may add to the volume, for admission (0: it may always run)."""
    request = ctx.http
    if request.method not in ("PUT", "POST") or ctx.endpoint.operation in _FREES_SPACE:
        return 0
    declared = request.headers.get("x-amz-decoded-content-length") or request.content_length
    if ctx.endpoint.operation in ("CopyObject", "UploadPartCopy") or declared is None:
        declared = ctx.node.config.storage.chunk_size  # unknown: a chunk (the reserve is margin)
    try:
        return int(declared) + _METADATA_BYTES
    except ValueError:
        return _METADATA_BYTES


def _partial_state() -> S3Error:
    return S3Error(
        ErrorCode.ServiceUnavailable,
        "Node is installing a metadata snapshot from the leader; retry",
    )


def _require_whole_state(node: Node, epoch: int) -> None:
    """A read answered while a snapshot was half installed may have missed what it looked for:
    the caller retries rather than trusting it (and refusals are never decided on it)."""
    if not node.meta.state_machine.consistent_since(epoch):
        raise _partial_state()


def _client_gone(request: web.Request, exc: Exception) -> bool:
    """Whether `exc` is the client closing its connection (mid-stream, say), not a fault."""
    transport = request.transport
    return isinstance(exc, ConnectionError) and (transport is None or transport.is_closing())


def _over_tls(request: web.Request) -> bool:
    """Whether this connection itself is TLS; forwarded-proto headers are anyone's to send."""
    transport = request.transport
    return transport is not None and transport.get_extra_info("sslcontext") is not None


async def _add_expiration(request: web.Request, response: web.StreamResponse) -> None:
    """x-amz-expiration on object answers, just before their headers go out (streamed GETs
    included), so that no handler has to know about lifecycle rules."""
    ctx = request.get(_CONTEXT)
    if (
        ctx is not None
        and ctx.endpoint.operation in EXPIRATION_OPERATIONS
        and 200 <= response.status < 300
    ):
        response.headers.update(expiration_header(ctx))


async def _answer_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Request id and CORS headers on every answer, as its headers go out: a streamed GET's
    are sent before its handler returns."""
    if "Origin" in request.headers:
        response.headers.update(_cors(request.app[NODE_KEY], request, request.get(_CONTEXT)))
    request_id = request.get("anode.request_id")
    if request_id:
        response.headers["x-amz-request-id"] = request_id
        response.headers["x-amz-id-2"] = request_id
    response.headers["Server"] = "Anode"


def _cors(node: Node, request: web.Request, ctx: Context | None) -> dict[str, str]:
    """CORS headers for any answer to a browser, refusals before authentication included."""
    if ctx is not None:
        bucket = ctx.endpoint.bucket
    else:
        try:
            bucket, _ = split_target(
                request.raw_path.partition("?")[0], request.host, node.config.node.domains
            )
        except S3Error:
            return {}
    return cors_headers(node, bucket, request.method, request.headers)


def _unexpected(exc: Exception, request: web.Request) -> S3Error:
    """The S3 error for a failure no handler anticipated: a full disk, an erasure-coded chunk
    with fewer than k fragments reachable (503: members may come back), or a bug (logged)."""
    if isinstance(exc, Unrecoverable):
        return S3Error(ErrorCode.ServiceUnavailable, f"Not enough fragments reachable: {exc}")
    if (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) or "No space left" in str(exc):
        log.error("storage full while serving %s %s: %s", request.method, request.path, exc)
        return S3Error(ErrorCode.InsufficientStorage)
    log.exception("internal error in %s %s", request.method, request.path)
    return S3Error(ErrorCode.InternalError)


def error_response(refused: Refused, request_id: str, *, resource: str) -> web.Response:
    """The XML error document for an S3 error, or for a service's refusal in S3's shape."""
    error = S3Error.of(refused)
    status = error.status
    headers = {"Content-Type": "application/xml", **error.headers}
    if status == 503:  # not ready, no quorum, catching up: soon again, never a verdict
        headers.setdefault("Retry-After", "1")
    if status == 304:
        return web.Response(status=status, headers=headers)
    body = xml.document(
        "Error",
        [
            ("Code", error.code.aws_name),
            ("Message", error.message),
            *[(name, value) for name, value in error.extra.items()],
            ("Resource", error.resource or resource),
            ("RequestId", request_id),
        ],
        namespace=False,
    )
    response = web.Response(status=status, body=body, headers=headers)
    response[ERROR_CODE] = error.code.aws_name  # for the audit record
    return response


def _request_id() -> str:
    return secrets.token_hex(8).upper()


def endpoint_of(request: web.Request) -> Endpoint | None:
    ctx = request.get(_CONTEXT)
    return ctx.endpoint if ctx else None
