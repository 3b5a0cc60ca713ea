"""The fragments of erasure-coded chunks across the members: place, read, rebuild.

Fragments are content-addressed blobs (named by their own SHA-256) in the members' chunk stores,
so the internode chunk API stores, verifies and serves them unchanged. Fragment i of a chunk
belongs to the i-th member of the chunk's rendezvous ranking (`placement.rank`), which puts the
k + m fragments on k + m distinct members with no coordination; a read looks there first and
then on the other members, so a fragment placed while a member was down is still found.

A write is refused unless k + m live members can each take one fragment (the code would otherwise
be weaker than configured). A read fetches the data fragments a range covers, in parallel, and
decodes (`erasure.read`) only when one of them is missing or fails its hash.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from ..internode.client import InternodeClient, PeerError
from . import erasure
from .erasure import Coded, Scheme, Unrecoverable
from .placement import rank
from .replication import Member
from .store import ChunkCorrupt, ChunkMissing, ChunkStore

log = logging.getLogger(__name__)


class TooFewMembers(Exception):
    """Fewer live members than k + m: a coded write is refused rather than weakened."""


class Fragments:
    def __init__(
        self,
        *,
        client: InternodeClient,
        members: Callable[[], list[Member]],
        live: Callable[[], set[str]],
        node_id: str | None = None,
        store: ChunkStore | None = None,
    ) -> None:
        self.client = client
        self.members = members
        self.live = live
        self.node_id = node_id  # this member, whose own fragments are read from `store`
        self.store = store

    def holders(self, chunk_id: bytes, width: int) -> list[Member]:
        """Where fragments 0..width-1 of a chunk go: the first `width` members of the chunk's
        ranking, each one that is down or draining replaced by the next live spare in the
        ranking (so a member going away moves only its own fragment, and gets it back when it
        returns); fewer than `width` when there are not enough live members."""
        live = self.live()
        members = {m.id: m for m in self.members()}
        ranked = rank(chunk_id, members)
        usable = {i for i in ranked if i in live and not members[i].draining}
        spares = [i for i in ranked[width:] if i in usable]
        chosen = []
        for member_id in ranked[:width]:
            if member_id in usable:
                chosen.append(members[member_id])
            elif spares:
                chosen.append(members[spares.pop(0)])
        return chosen

    async def place(self, chunk: bytes, chunk_id: bytes, scheme: Scheme) -> Coded:
        """Code `chunk` and store each fragment, fsynced, on its own member; returns what the
        metadata must record. Raises `TooFewMembers` or `PeerError` (nothing to commit then)."""
        targets = self.holders(chunk_id, scheme.width)
        if len(targets) < scheme.width:
            raise TooFewMembers(
                f"erasure coding {scheme} needs {scheme.width} live members, {len(targets)} are"
            )
        coded, fragments = await asyncio.to_thread(erasure.encode, chunk, chunk_id, scheme)
        await asyncio.gather(
            *(
                self._put(member, digest, fragment)
                for member, digest, fragment in zip(targets, coded.digests, fragments, strict=True)
            )
        )
        return coded

    async def _put(self, member: Member, digest: bytes, fragment: bytes) -> None:
        if member.id == self.node_id and self.store is not None:
            await asyncio.to_thread(self.store.write, digest, fragment)
        else:
            await self.client.put_chunk(member.data_url, digest, fragment)

    async def read(self, coded: Coded, chunk_id: bytes, offset: int = 0, length: int = -1) -> bytes:
        """Chunk bytes [offset, offset + length), verified; `Unrecoverable` when fewer than k
        verified fragments can be found."""
        wanted = list(coded.covering(offset, length))
        got = await self.fetch(coded, chunk_id, wanted)
        if len(got) < len(wanted):  # a covered data fragment is lost or damaged: decode
            rest = [i for i in range(coded.scheme.width) if i not in got and i not in wanted]
            got |= await self.fetch(coded, chunk_id, rest)
        return await asyncio.to_thread(erasure.read, coded, chunk_id, got, offset, length)

    async def rebuild(self, coded: Coded, chunk_id: bytes) -> list[int]:
        """Store again every fragment no member holds intact, on its ranked member; the indices
        rebuilt. Only with k + m live members (`TooFewMembers` otherwise: two fragments on one
        member would weaken the code); `Unrecoverable` if fewer than k are left."""
        width = coded.scheme.width
        got = await self.fetch(coded, chunk_id, list(range(width)))
        lost = [i for i in range(width) if i not in got]
        if not lost:
            return []
        targets = self.holders(chunk_id, width)
        if len(targets) < width:
            raise TooFewMembers(
                f"chunk {chunk_id.hex()}: {len(targets)} live members, {width} "
                "needed to rebuild its fragments"
            )
        fresh = await asyncio.to_thread(erasure.rebuild, coded, chunk_id, got, lost)
        await asyncio.gather(*(self._put(targets[i], coded.digests[i], fresh[i]) for i in lost))
        return lost

    async def fetch(self, coded: Coded, chunk_id: bytes, indices: list[int]) -> dict[int, bytes]:
        found = await asyncio.gather(*(self._fetch_one(coded, chunk_id, i) for i in indices))
        return {i: f for i, f in zip(indices, found, strict=True) if f is not None}

    async def _fetch_one(self, coded: Coded, chunk_id: bytes, index: int) -> bytes | None:
        """Fragment `index`, verified, from its ranked member first, then from any other."""
        digest = coded.digests[index]
        members = {m.id: m for m in self.members()}
        ordered = rank(chunk_id, members)
        live = self.live()
        ordered = ordered[index:] + ordered[:index]
        ordered.sort(key=lambda m: m not in live)  # live first, ranking kept
        for member_id in ordered:
            try:
                if member_id == self.node_id and self.store is not None:
                    # verified by name: a damaged file is reported (`on_corrupt`) and rebuilt
                    fragment = await asyncio.to_thread(self.store.read_verified, digest)
                else:
                    fragment = await self.client.get_chunk(members[member_id].data_url, digest)
            except (PeerError, ChunkMissing, ChunkCorrupt):
                continue
            if coded.verified(index, fragment):
                return fragment
            log.warning(
                "corrupt fragment %d of chunk %s on %s", index, chunk_id.hex()[:12], member_id
            )
        return None


__all__ = ["Fragments", "TooFewMembers", "Unrecoverable"]
