"""The Python ceiling: an aiohttp server that answers 200 with a fixed body to any request.

It reads (and discards) any request body so a PUT costs it the same bytes on the wire as it costs
a real store, and runs on uvloop with access logging off, like the node, so the only difference
between the two is the work an object store does. Run as `python -m bench.ceiling --port N`.
"""

from __future__ import annotations

import argparse

import uvloop
from aiohttp import web


def make_app(body: bytes) -> web.Application:
    async def answer(request: web.Request) -> web.Response:
        if request.can_read_body:
            async for _ in request.content.iter_any():
                pass
        return web.Response(body=body, content_type="application/octet-stream")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--body-size", type=int, default=4096)
    args = parser.parse_args()
    web.run_app(
        make_app(b"c" * args.body_size),
        host="127.0.0.1",
        port=args.port,
        access_log=None,
        print=None,
        backlog=1024,
        shutdown_timeout=1,
        loop=uvloop.new_event_loop(),
    )


if __name__ == "__main__":
    main()
