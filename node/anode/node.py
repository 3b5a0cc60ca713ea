"""One node's services, wired together: metadata, consensus, chunks, collector, users, metrics.

The S3 and admin apps receive a `Node` and use only its public attributes; they never open files
or the database themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from . import __version__
from .chunks.coded import CodedFirst, FragmentKeeper
from .chunks.erasure import Coded, Scheme
from .chunks.fragments import Fragments, TooFewMembers
from .chunks.gc import Collector
from .chunks.reader import ChunkReader, InlineFirst, LocalChunks
from .chunks.replication import InsufficientReplicas, Member, Replicator
from .chunks.scrub import Scrubber
from .chunks.store import ChunkStore
from .cluster.errors import NoQuorum
from .cluster.raft import RaftConsensus
from .config import Config
from .errors import ErrorCode, Refused
from .internode.client import InternodeClient, PeerError
from .lifecycle import LifecycleWorker
from .meta.commands import Command, CreateUser, RecordCoded, RegisterNode, Rejected
from .meta.consensus import Consensus, LocalConsensus
from .meta.store import MetaStore, open_db
from .metrics import Metrics
from .select import FooterCache
from .space import SpaceGuard
from .tls import peer_context
from .users import ROOT_USER as ROOT_USER
from .users import User as User
from .users import owner_id as owner_id

log = logging.getLogger(__name__)

class Node:
    def __init__(self, config: Config) -> None:
        self.config = config
        data = config.data_dir
        data.mkdir(parents=True, exist_ok=True)
        self.space = SpaceGuard(data, reserve=config.storage.reserve)
        self.space.rebalance()  # before RocksDB opens: replaying its WAL may need the room
        self.meta = MetaStore(open_db(data / "meta", reserve=config.storage.reserve))
        self.chunks = ChunkStore(data / "chunks", cache_bytes=config.storage.chunk_cache)
        self.chunks.is_referenced = lambda digest: self.meta.chunk_refs(digest) > 0
        self.chunks.room_for = self.space.writable
        self.internode: InternodeClient | None = None
        self.replicator: Replicator | None = None
        self.coded: CodedFirst | None = None  # erasure-coded chunks (cluster only)
        self.keeper: FragmentKeeper | None = None
        if config.clustered:
            self.consensus: Consensus = RaftConsensus(
                node_id=config.node.id, bind_addr=config.advertised(config.node.cluster_addr),
                listen_addr=config.node.cluster_addr,
                peers=config.peer_addresses(), state_machine=self.meta.state_machine,
                data_dir=data / "raft", secret=config.cluster.secret,
                learner=config.is_learner, initial_state=config.cluster.initial_state,
                compaction_entries=config.cluster.snapshot_entries)
            self.internode = InternodeClient(
                secret=config.cluster.secret,
                ssl=peer_context(cert_file=config.peer_ca_file) if config.internode_tls else None)
            self.replicator = Replicator(
                node_id=config.node.id, store=self.chunks, client=self.internode,
                members=self.members, replication_factor=config.cluster.replication_factor)
            fragments = Fragments(client=self.internode, members=self.members,
                                  live=lambda: self.replicator.live if self.replicator else set(),
                                  node_id=config.node.id, store=self.chunks)
            self.coded = CodedFirst(self.coded_chunk, fragments, self.replicator)
            self.keeper = FragmentKeeper(node_id=config.node.id, fragments=fragments,
                                         store=self.chunks, owner=self._fragment_owner)
            self.chunk_reader: ChunkReader = self.coded
        else:
            self.consensus = LocalConsensus(self.meta.state_machine, node_id=config.node.id)
            self.chunk_reader = LocalChunks(self.chunks)
        self.chunk_reader = InlineFirst(self._inline_chunk, self.chunk_reader)
        # Damaged chunks: replaced from another holder at once, or listed for the admin.
        self.scrubber = Scrubber(self.chunks, self._replace_damaged if self.replicator
                                 else None)
        # Ingest calls this for each chunk it stores; None on a single node (nothing to copy).
        self.replicate = self.replicate_for("STANDARD")
        self.collector = Collector(
            chunks=self.chunks,
            meta=self.meta,
            consensus=self.consensus,
            grace=config.storage.gc_grace,
        )
        self.lifecycle = LifecycleWorker(
            meta=self.meta, propose=self.propose, day_seconds=config.storage.lifecycle_day_seconds,
            is_leader=lambda: self.consensus.status().get("role") == "leader")
        parquet = config.parquet
        self.footer_cache = FooterCache(int(parquet.cache_size) if parquet.enable_cache else 0)
        # S3 Select's own threads: queries never hold the ones chunk reads need
        self.select_executor = ThreadPoolExecutor(config.select.workers, "select")
        self.metrics = Metrics(self)
        self.root = User(ROOT_USER, config.root.access_key, config.root.secret_key)
        self.started = time.time()
        self.ready = False
        self.not_ready_reason = "starting"
        self._tasks: list[asyncio.Task[Any]] = []

    # ---- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Start local services; a clustered node then joins in the background (`ready` after)."""
        self.consensus.start()
        self._spawn(self._watch_space(), "space")
        self.scrubber.attach(asyncio.get_running_loop())
        if self.coded is not None:
            self.coded.loop = asyncio.get_running_loop()
        await self.collector.sweep_orphans(startup=True)
        if self.replicator is None:
            await self._become_ready()
        else:
            self._spawn(self._join(), "join")

    async def _join(self) -> None:
        """Wait for a quorum, publish this node's addresses, then serve."""
        assert self.replicator is not None
        self.not_ready_reason = "waiting for a Raft quorum"
        self._spawn(self.replicator.monitor(interval=1.0), "peer-monitor")
        node = self.config.node
        register = RegisterNode(
            node_id=node.id,
            s3_url=f"{self.config.scheme}://{self.config.advertised(node.s3_addr)}",
            admin_url=f"{self.config.scheme}://{self.config.advertised(node.admin_addr)}",
            data_url=("https://" if self.config.internode_tls else "http://")
            + self.config.advertised(node.data_addr))
        while True:
            try:
                await self.propose(register)
                break
            except Refused:  # no quorum yet
                await asyncio.sleep(0.5)
        self.replicator.probed.clear()  # the registry now lists us: probe with it
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.replicator.probed.wait(), 5.0)
        self._spawn(self.replicator.run(referenced=self.meta.referenced_chunks,
                                        repair_interval=self.config.cluster.repair_interval),
                    "repair")
        self._spawn(self._keep_fragments(self.config.cluster.repair_interval), "fragments")
        await self._become_ready()

    async def _become_ready(self) -> None:
        for user in self.config.users:
            await self.propose(CreateUser(
                name=user.name, access_key=user.access_key, secret_key=user.secret_key,
                owner_id=owner_id(user.name), created=time.time(), managed="config",
                email=user.email))
        self._spawn(self.collector.run(interval=self.config.storage.gc_interval), "collector")
        self._spawn(self.scrubber.run(interval=self.config.cluster.scrub_interval), "scrubber")
        self._spawn(self.lifecycle.run(interval=self.config.storage.lifecycle_interval),
                    "lifecycle")
        self.ready = True
        self.not_ready_reason = ""

    async def _watch_space(self, interval: float = 1.0) -> None:
        """Release the reserve file when the volume runs out anyway; allocate it again later."""
        while True:
            try:
                await asyncio.to_thread(self.space.rebalance)
            except OSError:
                log.exception("checking the data volume's free space failed")
            await asyncio.sleep(interval)

    def _spawn(self, coro: Any, name: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=name))

    async def stop(self) -> None:
        self.ready = False
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.select_executor.shutdown(wait=False, cancel_futures=True)
        await self.consensus.close()
        if self.internode is not None:
            await self.internode.close()
        self.meta.close()

    # ---- consensus, as the APIs see it------------------------------------------------------

    async def propose(self, command: Command) -> Any:
        """Propose one command; a rejection becomes a `Refused` with the code it names."""
        try:
            (result,) = await self.consensus.propose([command])
        except NoQuorum as e:
            raise Refused(ErrorCode.ServiceUnavailable, f"No quorum: {e}") from None
        if isinstance(result, Rejected):
            code = ErrorCode.__members__.get(result.code)
            if code is None:
                raise LookupError(result.code, result.message)
            raise Refused(code, result.message)
        if isinstance(result, Exception):
            raise result
        return result

    async def read_barrier(self) -> None:
        """Make the next local reads linearizable (a no-op on a single node)."""
        try:
            await self.consensus.read_barrier()
        except NoQuorum as e:
            raise Refused(ErrorCode.ServiceUnavailable, f"No quorum: {e}") from None

    def replicate_for(self, storage_class: str) -> Callable[[bytes], Awaitable[None]] | None:
        """What ingest calls for every chunk it made durable here, for objects of this storage
        class: copy it to its holders, or code it (`cluster.erasure_coding`); None on a single
        node (nothing to copy)."""
        if self.replicator is None:
            return None
        shape = self.config.erasure_scheme(storage_class)
        return functools.partial(self._replicate, scheme=Scheme(*shape) if shape else None)

    async def _replicate(self, digest: bytes, *, scheme: Scheme | None = None) -> None:
        assert self.replicator is not None
        try:
            if not await self._code(digest, scheme):
                await self.replicator.replicate(digest)
        except (InsufficientReplicas, TooFewMembers) as e:
            raise Refused(ErrorCode.ServiceUnavailable,
                          f"Not enough live nodes to store the chunk: {e}") from None
        except PeerError as e:
            raise Refused(ErrorCode.ServiceUnavailable,
                          f"A member failed to store a fragment: {e}") from None

    async def _code(self, digest: bytes, scheme: Scheme | None) -> bool:
        """Store a chunk durable here as fragments on k + m members, record it, then drop the
        full copy; False when the chunk is to be replicated instead: no scheme, smaller than
        `cluster.erasure_min_size`, or already stored replicated for another version (dedup
        keeps one form per chunk)."""
        existing = self.coded_chunk(digest)
        referenced = self.meta.chunk_refs(digest) > 0
        if existing is not None:
            scheme = existing.scheme
        elif scheme is None or referenced:
            return False
        if existing is None or not referenced:  # a referenced chunk's fragments are kept whole
            size = (await asyncio.to_thread(self.chunks.path(digest).stat)).st_size
            if size < self.config.cluster.erasure_min_size:
                return False
            data = await asyncio.to_thread(self.chunks.read, digest)
            assert self.coded is not None
            coded = await self.coded.fragments.place(data, digest, scheme)
            record = {**coded.record(), "at": time.time()}
            await self.propose(RecordCoded(digest=digest, coded=record))
        if self.chunks.pins.get(digest, 0) <= 1:  # only this write's pin: nobody reads it here
            self.chunks.delete(digest)
        return True

    def coded_chunk(self, digest: bytes) -> Coded | None:
        record = self.meta.coded(digest)
        return Coded.from_record(record) if record is not None else None

    def _fragment_owner(self, digest: bytes) -> tuple[bytes, Coded] | None:
        owner = self.meta.fragment_owner(digest)
        coded = self.coded_chunk(owner) if owner is not None else None
        return (owner, coded) if coded is not None and owner is not None else None

    async def _replace_damaged(self, digest: bytes) -> bool:
        """A chunk file found damaged here: a fragment is rebuilt, a copy fetched."""
        assert self.replicator is not None and self.keeper is not None
        rebuilt = await self.keeper.repair(digest)
        if rebuilt is not None:
            return rebuilt
        return await self.replicator.fetch_copy(digest)

    async def _keep_fragments(self, interval: float) -> None:
        assert self.keeper is not None
        while True:
            await asyncio.sleep(interval)
            try:
                await self.keeper.round(list(self.meta.coded_chunks()))
            except Exception:  # the keeper must outlive a bad round
                log.exception("fragment round failed")

    def _inline_chunk(self, digest: bytes) -> bytes | None:
        """A small body kept in the metadata, through the chunk cache (content-addressed: a
        cached copy can never be wrong, and the collector drops it with the chunk)."""
        data = self.chunks.small_cache.get(digest)
        if data is None:
            data = self.meta.inline_chunk(digest)
            if data is not None:
                self.chunks.small_cache.put(digest, data)
        return data

    def members(self) -> list[Member]:
        return [Member(node_id, record["data_url"], draining=record.get("state") == "draining")
                for node_id, record in self.meta.nodes().items()]

    def user_by_access_key(self, access_key: str) -> User | None:
        if self.root.access_key and access_key == self.root.access_key:
            return self.root
        record = self.meta.user_by_access_key(access_key)
        if record is None:
            return None
        return User(record["name"], record["access_key"], record["secret_key"])

    def secret_for(self, access_key: str) -> str | None:
        user = self.user_by_access_key(access_key)
        return user.secret_key if user else None

    async def status(self) -> dict[str, Any]:
        """The admin API's status document (docs/admin-api.md), with every member's view."""
        cfg = self.config.node
        stats = self.meta.stats()
        consensus = dict(self.consensus.status())
        local = await asyncio.to_thread(self.chunks.local_stats)
        if self.replicator is None:
            scheme = self.config.scheme
            members = [{"id": cfg.id,
                        "s3_url": f"{scheme}://{self.config.advertised(cfg.s3_addr)}",
                        "admin_url": f"{scheme}://{self.config.advertised(cfg.admin_addr)}",
                        "voter": True, "healthy": self.ready, "state": "active",
                        "chunks": local["chunks"], "chunk_bytes": local["bytes"]}]
        else:
            members = await self._member_status(consensus.get("members", []), local)
        consensus["members"] = members
        return {
            "node_id": cfg.id,
            "version": __version__,
            "ready": self.ready,
            "not_ready_reason": self._not_ready_reason(consensus),
            **consensus,
            "replication_factor": self.config.cluster.replication_factor,
            "erasure_coding": self.config.cluster.erasure_coding or None,
            "volume": self.space.status(),
            "storage": {
                **stats,
                "dedup_saved_bytes": stats["logical_bytes"] - stats["stored_bytes"],
                **_raw_bytes(stats, members),
                "gc_deleted_chunks": self.collector.deleted,
                "lifecycle_expired": self.lifecycle.expired,  # by this node, while leader
                "corrupt_chunks_found": self.scrubber.corrupt_found,
                "damaged_chunks": len(self.scrubber.damaged),  # `anode admin damaged` lists them
            },
            "uptime_seconds": round(time.time() - self.started, 3),
        }

    def _not_ready_reason(self, consensus: dict[str, Any]) -> str | None:
        """Why this node does not serve yet; a snapshot it cannot install is the likely why."""
        if self.ready:
            return None
        failed = (consensus.get("snapshots") or {}).get("install_error")
        if failed:
            return f"cannot install the leader's Raft snapshot: {failed['error']}"
        return self.not_ready_reason or None

    async def _member_status(self, raft_members: list[dict[str, Any]],
                             local: dict[str, int]) -> list[dict[str, Any]]:
        assert self.internode is not None and self.replicator is not None
        raft = {m.get("id"): m for m in raft_members}
        registered = self.meta.nodes()
        ids = sorted(set(raft) | set(registered) - {None})

        async def one(node_id: str) -> dict[str, Any]:
            record = registered.get(node_id, {})
            entry = {"id": node_id, "s3_url": record.get("s3_url"),
                     "admin_url": record.get("admin_url"), "data_url": record.get("data_url"),
                     "state": record.get("state", "unregistered"),
                     "voter": raft.get(node_id, {}).get("voter", False),
                     "healthy": node_id in self.replicator.live}
            if node_id == self.config.node.id:
                entry.update(chunks=local["chunks"], chunk_bytes=local["bytes"],
                             repairs=self.replicator.repaired)
            elif record.get("data_url"):
                try:
                    entry.update(await asyncio.wait_for(
                        self.internode.stats(record["data_url"]), 2.0))
                except (PeerError, TimeoutError):
                    entry["healthy"] = False
            return entry

        return list(await asyncio.gather(*(one(i) for i in ids)))


def _raw_bytes(stats: dict[str, int], members: list[dict[str, Any]]) -> dict[str, Any]:
    """What the chunks take on the members' disks (summed from what each member reports; a
    member that did not answer counts 0) against the unique bytes they hold (`stored_bytes`,
    inline bodies included): replication's overhead is its factor, k+m coding's (k+m)/k."""
    answered = [m for m in members if "chunk_bytes" in m]
    raw = sum(m["chunk_bytes"] for m in answered)
    stored = stats["stored_bytes"]
    return {
        "raw_bytes": raw,
        "raw_bytes_complete": len(answered) == len(members),
        "raw_overhead": round(raw / stored, 3) if stored else None,
    }
