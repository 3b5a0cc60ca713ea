"""Chunk replication over the real internode HTTP API between three chunk stores on loopback."""

from __future__ import annotations

import hashlib
import os

import aiohttp
import pytest
from chunk_cluster import SECRET, Cluster

from anode.chunks.placement import holders, rank
from anode.chunks.replication import InsufficientReplicas, Member
from anode.chunks.scrub import Scrubber
from anode.chunks.store import ChunkStore
from anode.internode import auth
from anode.internode.client import InternodeClient


def write_local(store: ChunkStore, data: bytes) -> bytes:
    digest = hashlib.sha256(data).digest()
    store.write(digest, data)
    return digest


def test_rendezvous_is_stable_and_moves_little():
    members = [f"n{i}" for i in range(5)]
    digests = [hashlib.sha256(str(i).encode()).digest() for i in range(2000)]
    before = {d: holders(d, members, 3) for d in digests}
    after = {d: holders(d, [*members, "n5"], 3) for d in digests}
    moved = sum(1 for d in digests if set(before[d]) != set(after[d]))
    assert 0.3 < moved / len(digests) < 0.7  # ~3/6 of chunks get the new node among 3 holders
    assert all(set(after[d]) - set(before[d]) <= {"n5"} for d in digests)
    assert rank(digests[0], members) == rank(digests[0], list(reversed(members)))


async def test_replicate_places_rf_copies_and_any_node_reads(tmp_path):
    cluster = await Cluster(tmp_path).start()
    try:
        data = os.urandom(300_000)
        digest = write_local(cluster.stores["n0"], data)
        await cluster.replicators["n0"].replicate(digest)
        wanted = set(cluster.replicators["n0"].placement(digest))
        assert len(wanted) == 2 and wanted <= cluster.holding(digest)
        reader = next(n for n in cluster.stores if not cluster.stores[n].exists(digest)) \
            if len(cluster.holding(digest)) < 3 else "n1"
        assert await cluster.replicators[reader].read(digest, 0, -1, True) == data
        assert await cluster.replicators[reader].read(digest, 10, 5, False) == data[10:15]
    finally:
        await cluster.stop()


async def test_reads_skip_a_corrupt_copy_and_repair_restores_it(tmp_path):
    cluster = await Cluster(tmp_path, rf=3).start()
    try:
        data = os.urandom(100_000)
        digest = write_local(cluster.stores["n0"], data)
        await cluster.replicators["n0"].replicate(digest)
        assert cluster.holding(digest) == {"n0", "n1", "n2"}
        path = cluster.stores["n1"].path(digest)
        path.write_bytes(b"rot" + path.read_bytes()[3:])
        assert await cluster.replicators["n1"].read(digest, 0, -1, True) == data
        scrubber = Scrubber(cluster.stores["n1"], cluster.replicators["n1"].fetch_copy)
        assert await scrubber.scrub_round() == 1
        assert cluster.stores["n1"].read_verified(digest) == data and not scrubber.damaged
        cluster.stores["n2"].delete(digest)
        await cluster.replicators["n2"].repair_round([digest])
        assert cluster.stores["n2"].read_verified(digest) == data
    finally:
        await cluster.stop()


async def test_dead_holder_is_replaced_by_the_next_in_rank(tmp_path):
    cluster = await Cluster(tmp_path, n=3, rf=2).start()
    try:
        digest = write_local(cluster.stores["n0"], os.urandom(10_000))
        first_choice = rank(digest, ["n1", "n2"])[0]
        await cluster.runners[first_choice].cleanup()  # down, though still believed live
        await cluster.replicators["n0"].replicate(digest)
        assert len(cluster.holding(digest)) == 2
        assert first_choice not in cluster.holding(digest)
        cluster.replicators["n0"].live = {"n0"}
        cluster.replicators["n0"].replication_factor = 3
        lonely = write_local(cluster.stores["n0"], b"other")
        await cluster.replicators["n0"].replicate(lonely)  # clamped to the one live member
        cluster.replicators["n0"].live = {"n0", first_choice}  # believed live, but down
        await cluster.replicators["n0"].replicate(lonely)  # settles for the copies possible
        assert cluster.replicators["n0"].live == {"n0"}
        # a draining node with no live peer cannot place anything
        cluster.members = [Member(m.id, m.data_url, draining=m.id == "n0")
                           for m in cluster.members]
        cluster.replicators["n0"].live = {"n0", first_choice}
        with pytest.raises(InsufficientReplicas):
            await cluster.replicators["n0"].replicate(lonely)
    finally:
        await cluster.stop()


async def test_surplus_copy_is_dropped_once_the_holder_has_its_own(tmp_path):
    cluster = await Cluster(tmp_path, n=3, rf=1).start()
    try:
        payload = next(p for p in (os.urandom(5000) for _ in range(100))
                       if cluster.replicators["n0"].placement(hashlib.sha256(p).digest()) != ["n0"])
        digest = write_local(cluster.stores["n0"], payload)
        await cluster.replicators["n0"].replicate(digest)
        (holder,) = cluster.replicators["n0"].placement(digest)
        assert cluster.holding(digest) == {"n0", holder}
        cluster.stores["n0"].pins[digest] += 1
        await cluster.replicators["n0"].repair_round([digest])
        assert cluster.stores["n0"].exists(digest)  # pinned by a write in flight: kept
        del cluster.stores["n0"].pins[digest]
        await cluster.replicators["n0"].repair_round([digest])
        assert cluster.holding(digest) == {holder}
    finally:
        await cluster.stop()


async def test_internode_api_requires_the_cluster_secret(tmp_path):
    cluster = await Cluster(tmp_path, n=1).start()
    try:
        url = cluster.members[0].data_url
        digest = write_local(cluster.stores["n0"], b"secret data")
        path = f"/chunks/{digest.hex()}"
        async with aiohttp.ClientSession() as http:
            async with http.get(url + path) as r:
                assert r.status == 403
            bad = {auth.HEADER: auth.sign("wrong", "GET", path)}
            async with http.get(url + path, headers=bad) as r:
                assert r.status == 403
            good = {auth.HEADER: auth.sign(SECRET, "PUT", path)}
            async with http.put(url + path, headers=good, data=b"not the content") as r:
                assert r.status == 400
        client = InternodeClient(secret=SECRET)
        assert await client.get_chunk(url, digest) == b"secret data"
        await client.close()
    finally:
        await cluster.stop()
