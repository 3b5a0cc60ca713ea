"""The internode data API: other nodes put, get, probe and delete chunks held by this node.

    PUT    /chunks/<sha256 hex>                     store (re-hashed; refused if it does not match)
    GET    /chunks/<sha256 hex>?offset=&length=     read (verified first; 409 if damaged here)
    HEAD   /chunks/<sha256 hex>                     exists?
    DELETE /chunks/<sha256 hex>                     drop this node's copy (repair, decommission)
    GET    /chunks?after=<hex>&limit=<n>            list held chunks, for repair and rebalancing
    GET    /health                                  open: liveness for the peer monitor
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import re
from typing import Any

from aiohttp import web

from ..chunks.store import ChunkCorrupt, ChunkMissing, ChunkStore
from . import auth

STORE_KEY = web.AppKey("chunks", ChunkStore)
SECRET_KEY = web.AppKey("secret", str)
REPLAYS_KEY = web.AppKey("replays", auth.ReplayCache)
MAX_CHUNK = 64 * 1024 * 1024


def make_internode_app(*, chunks: ChunkStore, secret: str) -> web.Application:
    app = web.Application(middlewares=[_authenticate], client_max_size=MAX_CHUNK + 1024)
    app[STORE_KEY] = chunks
    app[SECRET_KEY] = secret
    app[REPLAYS_KEY] = auth.ReplayCache()
    app.router.add_get("/health", health)
    app.router.add_get("/chunks", list_chunks)
    app.router.add_get("/stats", stats)
    app.router.add_put("/chunks/{digest:[0-9a-f]{64}}", put_chunk)
    app.router.add_get("/chunks/{digest:[0-9a-f]{64}}", get_chunk)  # also answers HEAD
    app.router.add_delete("/chunks/{digest:[0-9a-f]{64}}", delete_chunk)
    return app


@web.middleware
async def _authenticate(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.path != "/health" and not auth.verify(
            request.app[SECRET_KEY], request.method, request.path, request.query.items(),
            request.headers.get(auth.HEADER), replays=request.app[REPLAYS_KEY]):
        return web.json_response({"error": "bad, stale, replayed or missing internode "
                                  "authentication"}, status=403)
    return await handler(request)


def _int_query(request: web.Request, name: str, default: int, minimum: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"-?[0-9]{1,19}", raw) or int(raw) < minimum:
        raise web.HTTPBadRequest(text=f"{name}: an integer of at least {minimum} expected")
    return int(raw)


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def _digest(request: web.Request) -> bytes:
    return bytes.fromhex(request.match_info["digest"])


def _store_verified(store: ChunkStore, digest: bytes, data: bytes) -> bool:
    if hashlib.sha256(data).digest() != digest:
        return False
    store.write(digest, data)
    return True


async def put_chunk(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    digest = _digest(request)
    data = await request.read()
    try:
        if not await asyncio.to_thread(_store_verified, store, digest, data):
            return web.json_response({"error": "body does not hash to the chunk id"}, status=400)
    except OSError as e:
        if e.errno != errno.ENOSPC:
            raise
        return web.json_response({"error": f"no room for the chunk: {e}"}, status=507)
    return web.Response(status=201)


async def get_chunk(request: web.Request) -> web.StreamResponse:
    store = request.app[STORE_KEY]
    digest = _digest(request)
    if request.method == "HEAD":
        exists = await asyncio.to_thread(store.exists, digest)
        return web.Response(status=200 if exists else 404)
    offset = _int_query(request, "offset", 0, 0)
    length = _int_query(request, "length", -1, -1)
    try:
        if offset == 0 and length < 0:
            data = await asyncio.to_thread(store.read_verified, digest)
        else:
            data = await asyncio.to_thread(store.read_part, digest, offset, length)
    except ChunkMissing:
        return web.Response(status=404)
    except ChunkCorrupt:
        return web.Response(status=409, text="corrupt")
    return web.Response(body=data, content_type="application/octet-stream")


async def delete_chunk(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    await asyncio.to_thread(store.delete, _digest(request))
    return web.Response(status=204)


async def stats(request: web.Request) -> web.Response:
    """Chunk count and bytes held here, for the cluster view of `anode admin status`."""
    local = await asyncio.to_thread(request.app[STORE_KEY].local_stats)
    return web.json_response({"chunks": local["chunks"], "chunk_bytes": local["bytes"]})


async def list_chunks(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    after = request.query.get("after", "")
    limit = min(_int_query(request, "limit", 10000, 1), 100_000)

    def collect() -> list[str]:
        names = sorted(d.hex() for d, _ in store.all_chunks())
        return [n for n in names if n > after][:limit]

    return web.json_response({"chunks": await asyncio.to_thread(collect)})
