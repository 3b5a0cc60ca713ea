"""Chunks across the cluster: write to the chunk's holders, read from any healthy one, repair.

- `replicate(digest)`: after a chunk is durable here, push it to its `replication_factor` holders
  (rendezvous ranking over live members, skipping dead ones) in parallel; every holder fsyncs
  before it answers, so when this returns the copies exist and the metadata may be committed.
- `read(...)`: this node's copy if it has a good one, else the holders in ranking order, each
  answer verified before it is used (a whole chunk against its SHA-256 here; a part by the
  holder, against its segment table). A local copy that fails verification is replaced at once
  (`scrub.Scrubber`, through `fetch_copy`).
- `repair_round()`: pull-based. Every node walks the referenced chunks; for those it should hold
  and lacks (or holds corrupt), it fetches a copy; copies it holds but should not are dropped once
  all the rightful holders have theirs. Run on every node, this restores the replication factor
  after a node is lost, drained or replaced, with no coordinator. Damaged copies are the
  scrubber's (`scrub.py`): found by reads and by its rounds, replaced with `fetch_copy`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..internode.client import InternodeClient, PeerError
from .placement import rank
from .reader import LocalChunks
from .store import ChunkCorrupt, ChunkMissing, ChunkStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Member:
    id: str
    data_url: str
    draining: bool = False  # still serves reads, receives no new copies


class InsufficientReplicas(Exception):
    """Fewer live holders than the replication factor could take the chunk."""


class Replicator:
    def __init__(self, *, node_id: str, store: ChunkStore, client: InternodeClient,
                 members: Callable[[], list[Member]], replication_factor: int) -> None:
        self.node_id = node_id
        self.store = store
        self.local = LocalChunks(store)
        self.client = client
        self.members = members
        self.replication_factor = replication_factor
        self.live: set[str] = {node_id}
        self.probed = asyncio.Event()  # set once `live` reflects a first round of probes
        self._loop: asyncio.AbstractEventLoop | None = None
        self.repaired = 0
        self.dropped = 0

    # ---- membership view ------------------------------------------------------------------

    def _by_id(self) -> dict[str, Member]:
        return {m.id: m for m in self.members()}

    def placement(self, digest: bytes) -> list[str]:
        """The members that should hold `digest` now: live, not draining, best ranked first."""
        candidates = [m.id for m in self.members() if not m.draining and m.id in self.live]
        return rank(digest, candidates)[: self.effective_factor(len(candidates))]

    def effective_factor(self, candidates: int) -> int:
        return max(1, min(self.replication_factor, candidates))

    async def monitor(self, *, interval: float = 1.0) -> None:
        """Keep `live` current by probing every member's internode /health."""
        self._loop = asyncio.get_running_loop()
        while True:
            members = self.members()
            results = await asyncio.gather(*(self.client.healthy(m.data_url) for m in members
                                             if m.id != self.node_id))
            others = [m for m in members if m.id != self.node_id]
            self.live = {self.node_id} | {m.id for m, ok in zip(others, results, strict=True)
                                          if ok}
            self.probed.set()
            await asyncio.sleep(interval)

    # ---- writing --------------------------------------------------------------------------

    async def replicate(self, digest: bytes) -> None:
        """Make `replication_factor` durable copies of a chunk already durable on this node."""
        members = self._by_id()
        wanted = self.placement(digest)
        if len(wanted) < self.effective_factor(len(wanted)):
            raise InsufficientReplicas(digest.hex())
        data: bytes | None = None
        placed: list[str] = []
        candidates = [m for m in rank(digest, [m.id for m in members.values()
                                               if not m.draining and m.id in self.live])]
        queue = list(wanted) + [c for c in candidates if c not in wanted]
        while len(placed) < len(wanted) and queue:
            batch, queue = queue[: len(wanted) - len(placed)], queue[len(wanted) - len(placed):]
            remote = [m for m in batch if m != self.node_id]
            if remote and data is None:
                data = await asyncio.to_thread(self.store.read, digest)
            payload = data if data is not None else b""  # read above whenever `remote` is not empty
            results = await asyncio.gather(
                *(self.client.put_chunk(members[m].data_url, digest, payload) for m in remote),
                return_exceptions=True)
            placed += [m for m in batch if m == self.node_id]
            for member, result in zip(remote, results, strict=True):
                if isinstance(result, BaseException):
                    log.warning("chunk %s not placed on %s: %s", digest.hex()[:12], member, result)
                    self.live.discard(member)
                else:
                    placed.append(member)
        # Holders that failed were dropped from `live`: with fewer live members, fewer copies
        # are possible, and the repairer adds the missing ones when members come back.
        live_now = sum(1 for m in members.values() if not m.draining and m.id in self.live)
        needed = min(len(wanted), self.effective_factor(live_now))
        if len(placed) < needed:
            raise InsufficientReplicas(f"{digest.hex()}: {len(placed)} of {needed} copies")

    # ---- reading --------------------------------------------------------------------------

    async def read(self, digest: bytes, offset: int, length: int, whole: bool) -> bytes:
        try:
            return await asyncio.to_thread(self.local.read_sync, digest, offset, length, whole)
        except (ChunkMissing, ChunkCorrupt):
            return await self._read_remote(digest, offset, length, whole)

    def read_sync(self, digest: bytes, offset: int, length: int, whole: bool) -> bytes:
        """For worker threads (S3 Select, small GETs): remote reads hop to the event loop."""
        try:
            return self.local.read_sync(digest, offset, length, whole)
        except (ChunkMissing, ChunkCorrupt):
            assert self._loop is not None, "monitor() must be running"
            future = asyncio.run_coroutine_threadsafe(
                self._read_remote(digest, offset, length, whole), self._loop)
            return future.result(timeout=60)

    def read_local(self, digest: bytes, offset: int, length: int, whole: bool) -> bytes | None:
        return self.local.read_local(digest, offset, length, whole)

    def _sources(self, digest: bytes) -> list[Member]:
        members = self._by_id()
        ordered = rank(digest, [m for m in members if m != self.node_id])
        ordered.sort(key=lambda m: m not in self.live)  # live ones first, ranking kept
        return [members[m] for m in ordered]

    async def _read_remote(self, digest: bytes, offset: int, length: int, whole: bool) -> bytes:
        for member in self._sources(digest):
            try:
                if whole:
                    data = await self.client.get_chunk(member.data_url, digest)
                    if hashlib.sha256(data).digest() != digest:
                        log.warning("corrupt copy of %s on %s", digest.hex()[:12], member.id)
                        continue
                else:  # the holder verifies a part before it answers (409 if it cannot)
                    data = await self.client.get_chunk(member.data_url, digest, offset, length)
                    if length >= 0 and len(data) != length:
                        log.warning("short copy of %s on %s", digest.hex()[:12], member.id)
                        continue
                return data
            except PeerError:
                continue
        raise ChunkMissing(digest.hex())

    # ---- repair ---------------------------------------------------------------------------

    async def repair_round(self, referenced: Iterable[bytes]) -> None:
        """Fetch the chunks this node should hold and lacks; drop copies it should not hold."""
        for i, digest in enumerate(referenced):
            if i % 256 == 255:
                await asyncio.sleep(0)
            wanted = self.placement(digest)
            here = await asyncio.to_thread(self.store.exists, digest)
            if self.node_id in wanted and not here:
                await self.fetch_copy(digest)
                continue
            surplus = here and self.node_id not in wanted and await self._all_hold(digest, wanted)
            if surplus and not self.store.pins.get(digest):  # no await between check and unlink
                self.store.delete(digest)
                self.dropped += 1

    async def fetch_copy(self, digest: bytes) -> bool:
        """Store here a verified copy from another holder (over a damaged one, if any)."""
        try:
            data = await self._read_remote(digest, 0, -1, True)
        except ChunkMissing:
            log.error("chunk %s has no readable copy on any member", digest.hex())
            return False
        try:
            await asyncio.to_thread(self.store.write, digest, data)
        except OSError as e:  # a full volume (its reserve): the next round tries again
            log.error("chunk %s: cannot store a copy here: %s", digest.hex(), e)
            return False
        self.repaired += 1
        return True

    async def _all_hold(self, digest: bytes, wanted: list[str]) -> bool:
        members = self._by_id()
        if len(wanted) < self.replication_factor and len(members) >= self.replication_factor:
            return False  # keep extra copies while the cluster is short of live holders
        try:
            results = await asyncio.gather(*(self.client.has_chunk(members[m].data_url, digest)
                                             for m in wanted if m != self.node_id))
        except PeerError:
            return False
        return all(results)

    async def missing_copies(self, referenced: Iterable[bytes], *, limit: int = 0) -> int:
        """How many (chunk, rightful holder) copies are missing now; 0 means fully replicated.

        Asks the holders themselves (HEAD), so it is exact but costs a request per copy: for
        drains and tests, not for hot paths. Stops counting at `limit` when given.
        """
        members = self._by_id()
        missing = 0
        for digest in referenced:
            wanted = self.placement(digest)
            checks = [self.client.has_chunk(members[m].data_url, digest) for m in wanted
                      if m != self.node_id]
            results = await asyncio.gather(*checks, return_exceptions=True)
            missing += sum(1 for r in results if r is not True)
            if self.node_id in wanted and not await asyncio.to_thread(self.store.exists, digest):
                missing += 1
            if limit and missing >= limit:
                break
        return missing

    async def run(self, *, referenced: Callable[[], Iterable[bytes]],
                  repair_interval: float) -> None:
        while True:
            await asyncio.sleep(repair_interval)
            try:
                await self.repair_round(list(referenced()))
            except Exception:  # the repairer must outlive a bad round
                log.exception("repair round failed")
