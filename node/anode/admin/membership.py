"""Cluster membership through the admin API: the contract the Kubernetes operator drives.

    GET    /cluster/members                 members with role, state, health, chunk counts
    POST   /cluster/members                 {"id", "address"}: promote a node started with
                                            `[cluster] learner = true` (it joined as a learner
                                            and caught up) to a voter
    POST   /cluster/members/{id}/drain      stop placing chunks on it and copy its chunks to the
                                            remaining holders; answers {"remaining": n}, poll
                                            until 0
    DELETE /cluster/members/{id}            remove a drained member from Raft (409 until drained;
                                            `?force=true` skips the check); never below quorum.
                                            `?rejoin=true`: the member lost its volume and rejoins
                                            as a learner (cluster/rejoin.py): remove its old voter
                                            entry, no drain, it stays registered
    POST   /cluster/leadership              {"to": id | null}: hand leadership over and wait

Leader-only steps are forwarded to the leader's admin API, so any node can be asked. One change
at a time (the consensus layer serialises them and refuses a second learner).
"""

from __future__ import annotations

from typing import Any

import aiohttp
from aiohttp import web

from ..cluster.errors import MembershipError, NoQuorum, NotLeader
from ..meta.commands import SetNodeState
from ..node import Node
from ..tls import peer_context
from .common import NODE_KEY, error


def register(app: web.Application) -> None:
    app.router.add_get("/cluster/members", members)
    app.router.add_post("/cluster/members", add_member)
    app.router.add_post("/cluster/members/{id}/drain", drain_member)
    app.router.add_delete("/cluster/members/{id}", remove_member)
    app.router.add_post("/cluster/leadership", transfer_leadership)


def _clustered(node: Node) -> web.Response | None:
    if node.replicator is None:
        return error(501, "this node runs alone (no [cluster] peers): no membership to change",
                      "NotImplemented")
    return None


async def members(request: web.Request) -> web.Response:
    status = await request.app[NODE_KEY].status()
    return web.json_response({"leader": status.get("leader"), "members": status["members"]})


async def _on_leader(request: web.Request, action: Any) -> web.Response:
    """Run `action()` here if this node leads, else forward the request to the leader."""
    node = request.app[NODE_KEY]
    try:
        return await action()
    except NotLeader as e:
        leader = node.meta.nodes().get(e.leader or "", {}).get("admin_url")
        if not leader or request.headers.get("X-Anode-Forwarded"):
            return error(503, f"no reachable leader ({e})", "ServiceUnavailable")
        return await _forward(request, leader)
    except MembershipError as e:
        return error(409, str(e), "MembershipRefused")
    except NoQuorum as e:
        return error(503, str(e), "ServiceUnavailable")


async def _forward(request: web.Request, base: str) -> web.Response:
    headers = {"Authorization": request.headers.get("Authorization", ""),
               "X-Anode-Forwarded": "1", "Content-Type": "application/json"}
    body = await request.read()
    timeout = aiohttp.ClientTimeout(total=120)
    config = request.app[NODE_KEY].config
    tls = peer_context(cert_file=config.peer_ca_file) if config.tls else None
    async with aiohttp.ClientSession(timeout=timeout) as http, http.request(
            request.method, base + request.rel_url.raw_path_qs, data=body or None,
            headers=headers, ssl=tls if base.startswith("https:") else None) as response:
        return web.Response(status=response.status, body=await response.read(),
                            content_type="application/json")


async def add_member(request: web.Request) -> web.Response:
    node = request.app[NODE_KEY]
    if (refused := _clustered(node)) is not None:
        return refused
    body = await request.json()
    node_id, address = body.get("id"), body.get("address")
    if not isinstance(node_id, str) or not isinstance(address, str):
        return error(400, "'id' and 'address' (the new node's host:port for Raft) are required",
                      "BadRequest")

    async def action() -> web.Response:
        await node.consensus.add_member(node_id, address)
        return web.json_response({"id": node_id, "address": address, "voter": True})

    return await _on_leader(request, action)


async def drain_member(request: web.Request) -> web.Response:
    node = request.app[NODE_KEY]
    if (refused := _clustered(node)) is not None:
        return refused
    node_id = request.match_info["id"]
    if node_id not in node.meta.nodes():
        return error(404, f"no member {node_id!r}", "NoSuchMember")
    if node.meta.nodes()[node_id].get("state") != "draining":
        await node.propose(SetNodeState(node_id=node_id, state="draining"))
    remaining = await _missing(node)
    return web.json_response({"id": node_id, "state": "draining", "remaining": remaining})


async def _missing(node: Node, *, limit: int = 0) -> int:
    """Chunk copies and fragments not yet where the current members (draining ones excluded)
    should hold them; 0 when a draining member can go."""
    assert node.replicator is not None and node.keeper is not None
    missing = await node.replicator.missing_copies(list(node.meta.referenced_chunks()),
                                                   limit=limit)
    if limit and missing >= limit:
        return missing
    return missing + await node.keeper.missing(list(node.meta.coded_chunks()), limit=limit)


async def remove_member(request: web.Request) -> web.Response:
    node = request.app[NODE_KEY]
    if (refused := _clustered(node)) is not None:
        return refused
    node_id = request.match_info["id"]
    record = node.meta.nodes().get(node_id)
    rejoining = request.query.get("rejoin", "").lower() == "true"
    force = rejoining or request.query.get("force", "").lower() == "true"
    if not force:
        if record is None or record.get("state") != "draining":
            return error(409, f"drain {node_id} first (POST /cluster/members/{node_id}/drain)",
                          "NotDrained")
        if await _missing(node, limit=1):
            return error(409, f"{node_id} is still draining: chunk copies are missing",
                          "NotDrained")

    async def action() -> web.Response:
        await node.consensus.remove_member(node_id)
        if record is not None and not rejoining:
            await node.propose(SetNodeState(node_id=node_id, state="removed"))
        return web.Response(status=204)

    return await _on_leader(request, action)


async def transfer_leadership(request: web.Request) -> web.Response:
    node = request.app[NODE_KEY]
    if (refused := _clustered(node)) is not None:
        return refused
    body = await request.json() if request.can_read_body else {}
    target = body.get("to")

    async def action() -> web.Response:
        await node.consensus.transfer_leadership(target)
        return web.json_response({"leader": node.consensus.status().get("leader")})

    return await _on_leader(request, action)
