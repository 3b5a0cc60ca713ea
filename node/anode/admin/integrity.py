"""Damaged chunks on this node and the objects they make unreadable (`anode admin damaged`),
and a scrub on demand (`anode admin scrub`).

    GET  /damaged   {"chunks": [{"chunk", "found", "objects": [{"bucket", "key", "version_id"}
                                                             | {"bucket", "key", "upload_id",
                                                                "part"}]}]}
    POST /scrub     re-hash every local chunk now; {"bad": n, "chunks": [...as above]}
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from ..node import Node
from .common import NODE_KEY


def register(app: web.Application) -> None:
    app.router.add_get("/damaged", damaged)
    app.router.add_post("/scrub", scrub)


def objects_using(node: Node, digests: set[bytes]) -> dict[bytes, list[dict[str, Any]]]:
    """Every object version and multipart part that uses one of `digests`: a full scan of the
    metadata, for the admin, never a hot path."""
    found: dict[bytes, list[dict[str, Any]]] = {digest: [] for digest in digests}

    def note(chunks: list[list], where: dict[str, Any]) -> None:
        for digest in {bytes(entry[0]) for entry in chunks} & digests:
            found[digest].append(where)

    for bucket, _ in node.meta.buckets():
        for key, versions in node.meta.versions(bucket):
            for version in versions:
                note(
                    version.get("chunks", []),
                    {"bucket": bucket, "key": key, "version_id": version["vid"]},
                )
        for key, upload_id, _ in node.meta.uploads(bucket):
            for number, part in node.meta.parts(upload_id):
                note(
                    part.get("chunks", []),
                    {"bucket": bucket, "key": key, "upload_id": upload_id, "part": number},
                )
    return found


async def _report(node: Node) -> list[dict[str, Any]]:
    damaged = dict(node.scrubber.damaged)
    users = await asyncio.to_thread(objects_using, node, set(damaged))
    return [
        {"chunk": digest.hex(), "found": found, "objects": users[digest]}
        for digest, found in sorted(damaged.items(), key=lambda item: item[1])
    ]


async def damaged(request: web.Request) -> web.Response:
    return web.json_response({"chunks": await _report(request.app[NODE_KEY])})


async def scrub(request: web.Request) -> web.Response:
    node = request.app[NODE_KEY]
    bad = await node.scrubber.scrub_round()
    return web.json_response({"bad": bad, "chunks": await _report(node)})
