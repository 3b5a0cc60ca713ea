"""A chunk cluster in one process: N real chunk stores, each behind the real internode HTTP API on
loopback, with a Replicator per member (for tests of replication and erasure-coded fragments)."""

from __future__ import annotations

import asyncio

from aiohttp import web
from anode_procs import free_port

from anode.chunks.replication import Member, Replicator
from anode.chunks.store import ChunkStore
from anode.internode.client import InternodeClient
from anode.internode.server import make_internode_app

SECRET = "cluster-secret"


class Cluster:
    def __init__(self, tmp_path, n: int = 3, rf: int = 2) -> None:
        self.tmp_path, self.n, self.rf = tmp_path, n, rf
        self.stores: dict[str, ChunkStore] = {}
        self.runners: dict[str, web.AppRunner] = {}
        self.members: list[Member] = []
        self.replicators: dict[str, Replicator] = {}
        self.clients: list[InternodeClient] = []

    async def start(self) -> Cluster:
        for i in range(self.n):
            node_id, port = f"n{i}", free_port()
            store = ChunkStore(self.tmp_path / node_id)
            runner = web.AppRunner(make_internode_app(chunks=store, secret=SECRET))
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            self.stores[node_id], self.runners[node_id] = store, runner
            self.members.append(Member(node_id, f"http://127.0.0.1:{port}"))
        for node_id, store in self.stores.items():
            client = InternodeClient(secret=SECRET, timeout=5)
            self.clients.append(client)
            rep = Replicator(
                node_id=node_id,
                store=store,
                client=client,
                members=lambda: self.members,
                replication_factor=self.rf,
            )
            rep.live = {m.id for m in self.members}
            rep._loop = asyncio.get_running_loop()
            self.replicators[node_id] = rep
        return self

    async def stop(self) -> None:
        for client in self.clients:
            await client.close()
        for runner in self.runners.values():
            await runner.cleanup()
        self.runners.clear()

    async def stop_member(self, node_id: str) -> None:
        """The member's internode server goes away (its port refuses connections)."""
        await self.runners.pop(node_id).cleanup()

    def holding(self, digest: bytes) -> set[str]:
        return {n for n, s in self.stores.items() if s.exists(digest)}
