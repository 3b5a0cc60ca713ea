"""Erasure-coded fragments across four real chunk stores behind the real internode HTTP API on
loopback (anode.chunks.fragments): one fragment per member, byte-exact reads with m members gone
or a fragment damaged on disk, a clear failure with m + 1 gone, rebuilds byte-identical."""

from __future__ import annotations

import hashlib
import os

import pytest
from chunk_cluster import Cluster

from anode.chunks import erasure
from anode.chunks.erasure import Scheme, Unrecoverable
from anode.chunks.fragments import Fragments, TooFewMembers

SIZES = [1, 1000, 64 * 1024 + 3, 4 * 1024 * 1024 + 11]


def fragments_of(cluster: Cluster, node_id: str | None = None) -> Fragments:
    """The view of member `node_id` (its own store read directly), or of an outside client."""
    return Fragments(
        client=cluster.clients[0],
        members=lambda: cluster.members,
        live=lambda: set(cluster.runners),
        node_id=node_id,
        store=cluster.stores.get(node_id) if node_id else None,
    )


def holding(cluster: Cluster, coded: erasure.Coded) -> dict[str, list[int]]:
    return {
        n: [i for i, d in enumerate(coded.digests) if store.exists(d)]
        for n, store in cluster.stores.items()
    }


@pytest.mark.parametrize("scheme", [Scheme(3, 1), Scheme(2, 2)], ids=str)
async def test_each_member_holds_one_fragment_and_reads_are_exact(tmp_path, scheme):
    cluster = await Cluster(tmp_path, n=4).start()
    try:
        for size in SIZES:
            data = os.urandom(size)
            chunk_id = hashlib.sha256(data).digest()
            coded = await fragments_of(cluster, "n0").place(data, chunk_id, scheme)
            assert sorted(len(held) for held in holding(cluster, coded).values()) == [1, 1, 1, 1]
            for view in (fragments_of(cluster, "n2"), fragments_of(cluster)):
                assert await view.read(coded, chunk_id) == data
                for offset, length in ((0, 1), (size // 3, size // 2 + 1), (size - 1, -1)):
                    want = data[offset:] if length < 0 else data[offset : offset + length]
                    assert await view.read(coded, chunk_id, offset, length) == want
    finally:
        await cluster.stop()


@pytest.mark.parametrize("scheme", [Scheme(3, 1), Scheme(2, 2)], ids=str)
async def test_m_members_down_still_read_exact_one_more_fails_clearly(tmp_path, scheme):
    cluster = await Cluster(tmp_path, n=4).start()
    try:
        data = os.urandom(300_000)
        chunk_id = hashlib.sha256(data).digest()
        coded = await fragments_of(cluster).place(data, chunk_id, scheme)
        holders = [m.id for m in fragments_of(cluster).holders(chunk_id, scheme.width)]
        for member in holders[: scheme.m]:  # data fragments first: the decoding path
            await cluster.stop_member(member)
        reader = fragments_of(cluster)
        assert await reader.read(coded, chunk_id) == data
        assert await reader.read(coded, chunk_id, 1000, 5000) == data[1000:6000]
        with pytest.raises(TooFewMembers):  # writes need k + m live members
            await reader.place(os.urandom(1000), os.urandom(32), scheme)
        await cluster.stop_member(holders[scheme.m])
        with pytest.raises(Unrecoverable, match=f"{scheme.k} needed"):
            await reader.read(coded, chunk_id)
    finally:
        await cluster.stop()


async def test_a_fragment_damaged_on_disk_is_read_around_and_rebuilt(tmp_path):
    cluster = await Cluster(tmp_path, n=4).start()
    try:
        data = os.urandom(1_000_000)
        chunk_id = hashlib.sha256(data).digest()
        view = fragments_of(cluster, "n1")
        coded = await view.place(data, chunk_id, Scheme(3, 1))
        where = {i: n for n, held in holding(cluster, coded).items() for i in held}
        path = cluster.stores[where[0]].path(coded.digests[0])
        original = path.read_bytes()
        damaged = bytearray(original)
        damaged[len(damaged) // 2] ^= 1
        path.write_bytes(bytes(damaged))
        assert await view.read(coded, chunk_id) == data
        assert await view.read(coded, chunk_id, 10, 100) == data[10:110]  # fragment 0 covers it
        assert await view.rebuild(coded, chunk_id) == [0]
        assert path.read_bytes() == original
        assert await view.rebuild(coded, chunk_id) == []
        # a lost fragment comes back on its member too
        cluster.stores[where[2]].delete(coded.digests[2])
        assert await view.rebuild(coded, chunk_id) == [2]
        assert cluster.stores[where[2]].exists(coded.digests[2])
        # with a member down, no second fragment is put on a member that holds one already
        cluster.stores[where[1]].delete(coded.digests[1])
        await cluster.stop_member(where[3])
        with pytest.raises(TooFewMembers):
            await view.rebuild(coded, chunk_id)
        assert [len(held) for held in holding(cluster, coded).values()].count(2) == 0
    finally:
        await cluster.stop()


def test_holders_replace_only_the_member_that_is_down_or_draining():
    """A member going away moves its own fragment to the next live spare, no other one."""
    from anode.chunks.replication import Member

    members = [Member(f"m{i}", f"http://m{i}") for i in range(7)]
    live = {m.id for m in members}
    view = Fragments(client=None, members=lambda: members, live=lambda: live)  # type: ignore[arg-type]
    chunk = hashlib.sha256(b"chunk").digest()
    before = [m.id for m in view.holders(chunk, 5)]
    spares = [m for m in (x.id for x in members) if m not in before]
    live.discard(before[2])
    after = [m.id for m in view.holders(chunk, 5)]
    assert after[:2] + after[3:] == before[:2] + before[3:] and after[2] in spares
    members[members.index(next(m for m in members if m.id == before[0]))] = Member(
        before[0], "x", draining=True
    )
    again = [m.id for m in view.holders(chunk, 5)]
    assert again[1] == after[1] and again[3:] == after[3:]
    assert {again[0], again[2]} <= set(spares) and again[0] != again[2]
    live.difference_update(spares)
    assert len(view.holders(chunk, 5)) < 5  # not enough live members: callers refuse
