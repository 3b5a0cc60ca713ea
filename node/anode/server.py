"""Runs one node: the S3 app on `node.s3_addr` and the admin app on `node.admin_addr`."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from .admin.app import make_admin_app
from .config import Config, parse_addr
from .internode.server import make_internode_app
from .node import Node
from .s3.app import make_app
from .tls import server_context

log = logging.getLogger(__name__)

# S3 allows 8 KB of headers; aiohttp's own limit (8190 bytes per line) would answer a bare 400
# before we could send an S3 error, so let aiohttp accept more and `s3.app` enforce the limit.
# `auto_decompress` off: a body sent with `Content-Encoding: gzip` is the object's bytes, stored
# and returned as sent (aiohttp would otherwise inflate it on the way in).
HTTP_LIMITS = {"max_line_size": 65536, "max_field_size": 65536, "max_headers": 256,
               "auto_decompress": False}


async def serve(config: Config, *, started: asyncio.Event | None = None) -> None:
    node = Node(config)
    await node.start()
    runners = []
    try:
        tls = (server_context(cert_file=config.node.tls_cert_file,
                              key_file=config.node.tls_key_file) if config.tls else None)
        apps = [(make_app(node), config.node.s3_addr, tls),
                (make_admin_app(node), config.node.admin_addr, tls)]
        if config.clustered:  # internode stays plain HTTP, authenticated with the secret
            internode = make_internode_app(chunks=node.chunks, secret=config.cluster.secret)
            apps.append((internode, config.node.data_addr, None))
        for app, addr, context in apps:
            runner = web.AppRunner(app, access_log=None, handle_signals=False, **HTTP_LIMITS)
            await runner.setup()
            host, port = parse_addr(addr)
            await web.TCPSite(runner, host, port, backlog=1024, reuse_address=True,
                              ssl_context=context).start()
            runners.append(runner)
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
        await node.stop()


def run(config: Config) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a pinned dependency
        asyncio.run(serve(config))
    else:
        uvloop.run(serve(config))
