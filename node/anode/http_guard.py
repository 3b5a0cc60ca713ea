"""Timeouts and a connection limit for the node's HTTP listeners (S3, admin, internode).

aiohttp's server bounds none of these (issue 12): a client could trickle a request head for
ever, declare a 5 GB body and send nothing, or hold idle sockets until the process ran out of
file descriptors. A `GuardedSite` serves a runner like `web.TCPSite`, with:

* `header_timeout`: a request head must be complete this long after its first byte;
* `body_timeout`: while a handler waits for a body, the client must send something this often
  (the handler's read then fails with `timeout_error`, answered as such, and the connection is
  closed); a handler that is busy and not reading (reading paused) is not the client's fault;
* the same `body_timeout` for a response the client stops reading: once writing has been
  paused (the socket's buffers full) that long, the connection is aborted;
* `idle_timeout`: a connection with no request (fresh, or kept alive) is closed (aiohttp's
  keep-alive timer, which also runs from the connection's start);
* `max_connections`: beyond it, the connection idle the longest is closed to make room, or,
  with none idle, the new one. Each listener has its own limit, so a flood of one port never
  starves another (the health check and the admin API live on the admin port).
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    header_timeout: float = 15.0
    body_timeout: float = 30.0
    idle_timeout: float = 60.0
    max_connections: int = 1024


def fd_budget(wanted: int, *, share: float) -> int:
    """`wanted`, or less if this process may not open that many files: a listener gets
    `share` of what the descriptor limit leaves for sockets (half of it, 256 at most, stays
    for chunk files, RocksDB and peers)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(8, min(wanted, int((soft - min(256, soft // 2)) * share)))


class _Connection(RequestHandler):
    """aiohttp's handler, telling its `_Guard` what phase it is in."""

    def __init__(self, manager: web.Server, *, guard: _Guard, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self.guard = guard
        self.request: BaseRequest | None = None  # being handled
        self.last_request: BaseRequest | None = None
        self.since = time.monotonic()  # start of the current phase (idle, or a request)
        self.last_data = self.since
        self.head_deadline: float | None = None
        self.timed_out = False
        self.write_paused: float | None = None  # since when the client has not been reading

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.guard.admit(self)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.guard.connections.pop(self, None)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        now = self.last_data = time.monotonic()
        body_pending = self.last_request is not None and not self.last_request.content.is_eof()
        if self.request is None and self.head_deadline is None and not body_pending:
            self.head_deadline = now + self.guard.limits.header_timeout
        super().data_received(data)

    def pause_writing(self) -> None:
        super().pause_writing()
        self.write_paused = time.monotonic()

    def resume_writing(self) -> None:
        super().resume_writing()
        self.write_paused = None

    async def _handle_request(self, request: BaseRequest, *args: Any) -> Any:
        self.request = self.last_request = request
        self.since = time.monotonic()
        self.head_deadline = None
        try:
            return await super()._handle_request(request, *args)
        finally:
            self.request = None
            self.since = time.monotonic()
            if self.timed_out:  # answered; the rest of the body will not come
                self.force_close()

    @property
    def idle(self) -> bool:
        return self.request is None

    def check(self, now: float) -> None:
        transport = self.transport
        if transport is None:
            return
        if (
            self.write_paused is not None
            and now - self.write_paused > self.guard.limits.body_timeout
        ):
            log.info("client not reading for %.0f s: connection aborted", now - self.write_paused)
            transport.abort()  # close() would wait for the buffer to drain
            return
        if self.request is None:
            if self.head_deadline is not None and now > self.head_deadline:
                log.info(
                    "closing a connection whose request head took over %.0f s",
                    self.guard.limits.header_timeout,
                )
                self.force_close()
            return
        content = self.request.content
        silent = now - max(self.last_data, self.since)
        if (
            not self.timed_out
            and not content.is_eof()
            and transport.is_reading()
            and silent > self.guard.limits.body_timeout
        ):
            log.info(
                "request body idle for %.0f s: answering %s",
                silent,
                self.request.method + " " + self.request.path,
            )
            self.timed_out = True
            content.set_exception(self.guard.timeout_error())


class _Guard:
    def __init__(self, limits: Limits, timeout_error: Callable[[], BaseException]) -> None:
        self.limits = limits
        self.timeout_error = timeout_error
        self.connections: dict[_Connection, None] = {}  # in order of arrival

    def admit(self, conn: _Connection) -> None:
        self.connections[conn] = None
        if len(self.connections) <= self.limits.max_connections:
            return
        idle = [c for c in self.connections if c.idle and c is not conn]
        victim = min(idle, key=lambda c: c.since) if idle else conn
        log.info(
            "%d connections: closing %s",
            len(self.connections),
            "the one idle the longest" if idle else "a new one",
        )
        self.connections.pop(victim, None)
        victim.force_close()

    async def watch(self) -> None:
        period = max(0.1, min(1.0, self.limits.header_timeout / 4, self.limits.body_timeout / 4))
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            for conn in list(self.connections):
                conn.check(now)


class GuardedSite(web.BaseSite):
    """`web.TCPSite` with a `_Guard` on every connection (see the module docstring)."""

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        *,
        limits: Limits,
        handler_args: dict[str, Any],
        timeout_error: Callable[[], BaseException] = web.HTTPRequestTimeout,
        **kwargs: Any,
    ) -> None:
        super().__init__(runner, **kwargs)
        self._host, self._port = host, port
        self._guard = _Guard(limits, timeout_error)
        self._handler_args = {**handler_args, "keepalive_timeout": limits.idle_timeout}
        self._watch: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None

        def connection() -> _Connection:
            return _Connection(server, loop=loop, guard=self._guard, **self._handler_args)

        self._server = await loop.create_server(
            connection,
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            reuse_address=True,
            ssl_handshake_timeout=self._guard.limits.header_timeout if self._ssl_context else None,
        )
        self._watch = asyncio.create_task(self._guard.watch())

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
        await super().stop()
