"""In-process checks of the pieces around pysyncobj: journal truncation and durability,
apply-once by log index, checkpoint snapshots. Real FileJournal and RocksDB, no mocks."""

from __future__ import annotations

from pathlib import Path

from linearizability import Op, linearizable
from pysyncobj.journal import FileJournal

from anode.cluster.journal import DurableJournal
from anode.cluster.snapshot import CheckpointSnapshots
from anode.meta import commands as c
from anode.meta import layout as L
from anode.meta.state import StateMachine
from anode.meta.store import MetaStore, open_db


def _entries(journal) -> list[tuple[int, int]]:
    return [(journal[i][1], journal[i][2]) for i in range(len(journal))]


def _filled(path: Path, terms: list[int]) -> FileJournal:
    journal = FileJournal(str(path))
    for idx, term in enumerate(terms, start=1):
        journal.add(b"cmd%d" % idx, idx, term)
    return journal


def _follower_append(journal, prev_idx: int, entries: list[tuple[bytes, int, int]]) -> None:
    """What pysyncobj's follower does with an AppendEntries whose prevLogIdx matches."""
    if len(journal) > prev_idx:  # list position == index - 1 here (first index is 1)
        journal.deleteEntriesFrom(prev_idx)
    for entry in entries:
        journal.add(*entry)


def test_plain_pysyncobj_journal_forgets_acknowledged_entries(tmp_path):
    """The hazard: a shorter, same-term message deletes entries the follower already acked."""
    journal = _filled(tmp_path / "j", [1, 1, 2, 2, 2, 2])
    _follower_append(journal, 3, [(b"cmd4", 4, 2)])
    assert _entries(journal)[-1] == (4, 2)  # entries 5 and 6 are gone


def test_durable_journal_keeps_matching_entries_and_current_term_tail(tmp_path):
    inner = _filled(tmp_path / "j", [1, 1, 2, 2, 2, 2])
    inner.setCurrentTerm(2, None)
    journal = DurableJournal(inner, path=str(tmp_path / "j"))
    _follower_append(journal, 3, [(b"cmd4", 4, 2)])
    assert _entries(journal) == [(1, 1), (2, 1), (3, 2), (4, 2), (5, 2), (6, 2)]
    assert journal.kept_on_truncate == 3


def test_durable_journal_truncates_on_conflict_and_drops_stale_tail(tmp_path):
    inner = _filled(tmp_path / "j", [1, 1, 2, 2, 2])
    inner.setCurrentTerm(3, None)
    journal = DurableJournal(inner, path=str(tmp_path / "j"))
    # a term-3 leader whose entry 4 differs: 4 and 5 go, the new 4 is written
    _follower_append(journal, 3, [(b"new4", 4, 3)])
    assert _entries(journal) == [(1, 1), (2, 1), (3, 2), (4, 3)]
    assert journal[3][0] == b"new4"
    # a heartbeat at prevLogIdx=2 while entries 3.. are from older terms: they are dropped
    inner2 = _filled(tmp_path / "k", [1, 1, 2, 2])
    inner2.setCurrentTerm(3, None)
    journal2 = DurableJournal(inner2, path=str(tmp_path / "k"))
    _follower_append(journal2, 2, [])
    assert _entries(journal2) == [(1, 1), (2, 1)]


def test_durable_journal_drops_a_tail_holding_a_membership_change(tmp_path):
    """pysyncobj rolls back the config changes of entries it deletes: such a tail must go."""
    inner = _filled(tmp_path / "j", [2, 2, 2])
    inner.add(b"\x02membership", 4, 2)
    inner.setCurrentTerm(2, None)
    journal = DurableJournal(inner, path=str(tmp_path / "j"))
    _follower_append(journal, 2, [(b"cmd3", 3, 2)])
    assert _entries(journal) == [(1, 2), (2, 2), (3, 2)]


def test_durable_journal_sync_persists_entries_and_term(tmp_path):
    path = tmp_path / "j"
    journal = DurableJournal(FileJournal(str(path)), path=str(path))
    for idx in range(1, 200):
        journal.add(b"x" * 100, idx, 1)
    journal.setCurrentTerm(4, "n2")
    journal.sync()
    journal.sync()  # nothing new: no second fsync
    assert journal.syncs == 1
    reopened = FileJournal(str(path))
    assert len(reopened) == 199 and reopened.getCurrentTerm() == 4
    assert reopened.getVotedForNodeId() == "n2"


def test_durable_journal_compaction_replaces_the_file_atomically(tmp_path):
    path = tmp_path / "j"
    inner = _filled(path, [1] * 10)
    inner.setCurrentTerm(3, "n1")
    journal = DurableJournal(inner, path=str(path))
    journal.deleteEntriesTo(6)  # keep entries 7..10
    assert _entries(journal) == [(7, 1), (8, 1), (9, 1), (10, 1)]
    journal.add(b"cmd11", 11, 3)
    journal.sync()
    reopened = FileJournal(str(path))
    assert [(reopened[i][1], reopened[i][2]) for i in range(len(reopened))] == [
        (7, 1),
        (8, 1),
        (9, 1),
        (10, 1),
        (11, 3),
    ]
    assert reopened.getCurrentTerm() == 3 and not (tmp_path / "j.compact").exists()


def _bucket(name: str = "b") -> c.CreateBucket:
    return c.CreateBucket(bucket=name, owner="o", created=0.0)


def _put(key: str, digest: bytes = b"d" * 32) -> c.PutObject:
    record = {"etag": key, "size": 10, "chunks": [[digest, 10]], "mtime": 0.0}
    return c.PutObject(bucket="b", key=key, record=record)


def test_apply_many_with_index_applies_each_entry_once(tmp_path):
    sm = StateMachine(open_db(tmp_path / "db"))
    created, put = sm.apply_many([_bucket(), _put("k1")], index=5)
    assert created["owner"] == "o" and put["etag"] == "k1"
    sm.apply_many([_bucket(), _put("k1")], index=5)  # journal replay after a restart
    sm.apply_many([_put("k0")], index=3)  # an older entry
    assert L.unpack(sm.db.get(L.STATS_KEY))["objects"] == 1
    assert L.unpack(sm.db.get(L.chunk_key(b"d" * 32)))[0] == 1
    assert sm.raft_position() == (5, 2) and sm.db.get(L.APPLIED_KEY) == b"5"
    # a crash after the first command of entry 7: only the rest is applied on replay
    sm.apply_many([_put("k2", b"e" * 32)], index=7)
    sm.apply_many([_put("k2", b"e" * 32), _put("k3", b"e" * 32)], index=7)
    assert L.unpack(sm.db.get(L.chunk_key(b"e" * 32)))[0] == 2
    assert L.unpack(sm.db.get(L.STATS_KEY))["objects"] == 3
    # rejections and barriers (empty entries) advance the position too
    missing = c.PutObject(bucket="none", key="k", record={})
    assert sm.apply_many([missing], index=8) == [c.Rejected("NoSuchBucket")]
    assert sm.apply_many([], index=9) == []
    assert sm.raft_position() == (9, 0)


def test_apply_many_without_index_is_unchanged(tmp_path):
    sm = StateMachine(open_db(tmp_path / "db"))
    sm.apply_many([_bucket(), _put("k1")])
    sm.apply_many([_put("k2")])
    assert sm.db.get(L.APPLIED_KEY) == b"3"  # LocalConsensus counts commands
    assert sm.raft_position() == (0, 0)


def _dump(db) -> dict[bytes, bytes]:
    out = {}
    it = db.iter()
    it.seek_to_first()
    while it.valid():
        out[it.key()] = it.value()
        it.next()
    return out


def test_checkpoint_snapshot_restores_in_place_and_skips_when_not_newer(tmp_path):
    source = StateMachine(open_db(tmp_path / "a"))
    source.apply_many([_bucket()] + [_put(f"k{i}") for i in range(50)], index=10)
    (tmp_path / "wa").mkdir()
    (tmp_path / "wb").mkdir()
    snap = CheckpointSnapshots(state_machine=source, work_dir=tmp_path / "wa")
    snap.serialize(str(tmp_path / "dump"), ("raft", 10))

    meta = MetaStore(open_db(tmp_path / "b"))
    target = meta.state_machine
    target.apply_many([_bucket("other")], index=2)  # stale content that must disappear
    assert meta.bucket("other") is not None and meta.bucket("b") is None  # both now cached
    db_object = target.db
    restore = CheckpointSnapshots(state_machine=target, work_dir=tmp_path / "wb")
    assert restore.deserialize(str(tmp_path / "dump")) == ("raft", 10)
    assert target.db is db_object and restore.restored == 1
    assert _dump(target.db) == _dump(source.db)
    assert meta.bucket("other") is None and meta.bucket("b") is not None  # the cache followed

    target.apply_many([_put("later")], index=11)
    assert restore.deserialize(str(tmp_path / "dump")) == ("raft", 10)
    assert restore.restored == 1 and target.db.get(L.object_key("b", "later")) is not None


def test_linearizability_checker_accepts_and_rejects():
    inf = float("inf")
    # sequential write then read of it; concurrent read may see either value
    assert linearizable(
        [Op(0, 1, "w", "a"), Op(2, 3, "r", "a"), Op(2.5, 4, "w", "b"), Op(3.5, 5, "r", "a")]
    )
    # a stale read: "b" was written (and acknowledged) before the read started
    assert not linearizable([Op(0, 1, "w", "a"), Op(2, 3, "w", "b"), Op(4, 5, "r", "a")])
    # reads going back in time
    assert not linearizable([Op(0, 10, "w", "a"), Op(1, 2, "r", "a"), Op(3, 4, "r", None)])
    # an unknown-outcome write may apply late, or never
    assert linearizable([Op(0, inf, "w", "a"), Op(5, 6, "r", None), Op(7, 8, "r", "a")])
    assert linearizable([Op(0, inf, "w", "a"), Op(5, 6, "r", None)])
    assert not linearizable([Op(0, 1, "r", "a"), Op(2, inf, "w", "a")])  # read before write
