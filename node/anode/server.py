"""Runs one node: the S3 app on `node.s3_addr` and the admin app on `node.admin_addr`."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import replace

from aiohttp import web

from .admin.app import make_admin_app
from .audit.access import AUDIT_KEY, AuditAccessLogger, attach
from .audit.sink import AuditLog
from .config import Config, parse_addr
from .console.app import PREFIX as CONSOLE_PREFIX
from .console.app import make_console_app
from .http_guard import GuardedSite, Limits, fd_budget
from .internode.server import make_internode_app
from .node import Node
from .s3.app import make_app
from .s3.errors import ErrorCode, S3Error
from .tls import server_context

log = logging.getLogger(__name__)

# S3 allows 8 KB of headers; aiohttp's own limit (8190 bytes per line) would answer a bare 400
# before we could send an S3 error, so let aiohttp accept more and `s3.app` enforce the limit.
# `auto_decompress` off: a body sent with `Content-Encoding: gzip` is the object's bytes, stored
# and returned as sent (aiohttp would otherwise inflate it on the way in).
HANDLER_ARGS = {"max_line_size": 65536, "max_field_size": 65536, "max_headers": 256,
                "auto_decompress": False, "access_log": None}
ADMIN_MAX_CONNECTIONS = 64


def _listeners(config: Config, apps: list) -> list:
    """(app, addr, TLS context, limits, body timeout error) for S3, admin and internode."""
    node = config.node
    base = Limits(header_timeout=node.header_timeout, body_timeout=node.body_timeout,
                  idle_timeout=node.idle_timeout, max_connections=node.max_connections)
    limits = [
        replace(base, max_connections=fd_budget(node.max_connections, share=0.5)),
        replace(base, max_connections=fd_budget(ADMIN_MAX_CONNECTIONS, share=0.1)),
        replace(base, max_connections=fd_budget(node.max_connections // 2, share=0.25)),
    ]
    errors = [lambda: S3Error(ErrorCode.RequestTimeout), web.HTTPRequestTimeout,
              web.HTTPRequestTimeout]
    return [(*app, lim, err) for app, lim, err in zip(apps, limits, errors, strict=False)]


async def serve(config: Config, *, started: asyncio.Event | None = None) -> None:
    node = Node(config)
    audit = AuditLog(config.audit, data_dir=config.data_dir, node_id=config.node.id,
                     metrics=node.metrics)
    await node.start()
    audited_args = {**HANDLER_ARGS, "access_log": audit.logger,
                    "access_log_class": AuditAccessLogger}
    runners = []
    try:
        tls = (server_context(cert_file=config.node.tls_cert_file,
                              key_file=config.node.tls_key_file) if config.tls else None)
        apps = [(make_app(node), config.node.s3_addr, tls),
                (make_admin_app(node, mounts=_console(node)), config.node.admin_addr, tls)]
        for (app, _, _), api in zip(apps, ("s3", "admin"), strict=True):
            attach(app, audit, node, api)
        if config.clustered:  # authenticated with the secret; TLS too with `internode_tls`
            internode = make_internode_app(chunks=node.chunks, secret=config.cluster.secret)
            apps.append((internode, config.node.data_addr, tls if config.internode_tls else None))
        for app, addr, context, limits, timeout_error in _listeners(config, apps):
            args = audited_args if audit.enabled and AUDIT_KEY in app else HANDLER_ARGS
            runner = web.AppRunner(app, handle_signals=False, **args)
            await runner.setup()
            runners.append(runner)
            host, port = parse_addr(addr)
            await GuardedSite(runner, host, port, limits=limits, handler_args=args,
                              timeout_error=timeout_error, backlog=1024,
                              ssl_context=context).start()
        log.info(
            "node %s serving S3 on %s, admin on %s (%s)",
            config.node.id,
            config.node.s3_addr,
            config.node.admin_addr,
            config.scheme,
        )
        if started is not None:
            started.set()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("node %s stopping", config.node.id)
    finally:
        node.ready = False
        for runner in reversed(runners):
            await runner.cleanup()
        await audit.close()
        await node.stop()


def _console(node: Node) -> dict[str, web.Application]:
    """The web console under /console/ on the admin port, unless `[console] enabled = false`."""
    return {CONSOLE_PREFIX: make_console_app(node)} if node.config.console.enabled else {}


def run(config: Config) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a pinned dependency
        asyncio.run(serve(config))
    else:
        uvloop.run(serve(config))
