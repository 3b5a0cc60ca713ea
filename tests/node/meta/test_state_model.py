"""The state machine's invariants hold after every command of random command sequences (puts,
deletes of keys and of versions, versioning on and suspended, multipart uploads completed and
aborted, garbage forgotten), and applying the same log twice, as a Raft journal replay does,
leaves the same database. Pure: commands straight into `StateMachine` on a real RocksDB."""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from meta_records import digest, version

from anode.meta import commands as c
from anode.meta import layout as L
from anode.meta.state import StateMachine
from anode.meta.store import open_db

BUCKET = "b"
KEYS = ("k0", "k1", "k2")
SIZES = {n: 10 * (n + 1) for n in range(4)}  # a digest always has the same size

chunk_lists = st.lists(st.integers(0, 3), min_size=1, max_size=3)
operations = st.one_of(
    st.tuples(st.just("put"), st.sampled_from(KEYS), chunk_lists),
    st.tuples(st.just("delete"), st.sampled_from(KEYS)),
    st.tuples(st.just("delete_version"), st.sampled_from(KEYS), st.integers(0, 5)),
    st.tuples(st.just("versioning"), st.sampled_from(["Enabled", "Suspended"])),
    st.tuples(st.just("upload"), st.sampled_from(KEYS)),
    st.tuples(st.just("part"), st.integers(0, 3), st.integers(1, 2), chunk_lists),
    st.tuples(st.just("complete"), st.integers(0, 3)),
    st.tuples(st.just("abort"), st.integers(0, 3)),
    st.tuples(st.just("forget_garbage")),
)


def _scan(db: Any, prefix: bytes) -> list[tuple[bytes, Any]]:
    return [(k, L.unpack(v)) for k, v in L.scan(db, prefix)]


class Run:
    """Turns operations into commands against one state machine, keeping the log."""

    def __init__(self, sm: StateMachine) -> None:
        self.sm = sm
        self.log: list[c.Command] = []
        self.uploads: list[tuple[str, str]] = []
        self.parts: dict[str, dict[int, str]] = {}
        self.n = 0

    def apply(self, command: c.Command) -> Any:
        self.log.append(command)
        return self.sm.apply(command)

    def step(self, op: tuple) -> None:
        self.n += 1
        n, kind = self.n, op[0]
        chunks = [(digest(i), SIZES[i]) for i in op[-1]] if kind in ("put", "part") else []
        if kind == "put":
            record = version(*chunks, etag=f'"{n}"', mtime=float(n))
            self.apply(c.PutObject(bucket=BUCKET, key=op[1], record=record, version_id=f"v{n}"))
        elif kind == "delete":
            self.apply(
                c.DeleteObjects(
                    bucket=BUCKET,
                    keys=(op[1],),
                    marker_ids=(f"m{n}",),
                    mtime=float(n),
                    owner="root",
                )
            )
        elif kind == "delete_version":
            vids = [r["vid"] for _, r in _scan(self.sm.db, L.key_versions_prefix(BUCKET, op[1]))]
            vid = vids[op[2] % len(vids)] if vids else "null"
            self.apply(c.DeleteObjects(bucket=BUCKET, keys=(op[1],), version_ids=(vid,)))
        elif kind == "versioning":
            self.apply(c.SetBucketVersioning(bucket=BUCKET, status=op[1]))
        elif kind == "upload":
            upload_id = f"u{n}"
            self.apply(
                c.CreateUpload(
                    bucket=BUCKET,
                    key=op[1],
                    upload_id=upload_id,
                    record={"record": {"owner": "root"}, "initiated": 1.0},
                )
            )
            self.uploads.append((op[1], upload_id))
            self.parts[upload_id] = {}
        elif self.uploads and kind in ("part", "complete", "abort"):
            key, upload_id = self.uploads[op[1] % len(self.uploads)]
            if kind == "part":
                etag = f'"{n:032x}"'  # an MD5, as S3 computes it
                self.apply(
                    c.PutPart(
                        bucket=BUCKET,
                        key=key,
                        upload_id=upload_id,
                        part_number=op[2],
                        record=version(*chunks, etag=etag),
                    )
                )
                self.parts[upload_id][op[2]] = etag
            elif kind == "complete":
                parts = tuple(sorted(self.parts[upload_id].items()))
                self.apply(
                    c.CompleteUpload(
                        bucket=BUCKET,
                        key=key,
                        upload_id=upload_id,
                        parts=parts,
                        mtime=float(n),
                        min_part_size=0,
                        version_id=f"v{n}",
                    )
                )
            else:
                self.apply(c.AbortUpload(bucket=BUCKET, key=key, upload_id=upload_id))
        elif kind == "forget_garbage":
            garbage = tuple(k[len(b"G/") :] for k, _ in L.scan(self.sm.db, L.GARBAGE_PREFIX))
            if garbage:
                self.apply(c.ForgetGarbage(digests=garbage))


def check_invariants(db: Any) -> None:
    refs: Counter[bytes] = Counter()
    objects = size = 0
    versions = _scan(db, L.version_prefix(BUCKET))
    for _, record in versions:
        if not record.get("marker"):
            refs.update(d for d, _ in record["chunks"])
            objects, size = objects + 1, size + record["size"]
    current = dict(_scan(db, L.object_prefix(BUCKET)))
    for record in current.values():
        if "vid" not in record:  # a never-versioned key's one version holds its references
            refs.update(d for d, _ in record["chunks"])
            objects, size = objects + 1, size + record["size"]
    for _, part in _scan(db, b"P/"):
        refs.update(d for d, _ in part["chunks"])
    counted = {k[len(b"C/") :]: v[0] for k, v in _scan(db, L.CHUNK_PREFIX)}
    assert counted == dict(refs), "a chunk's refcount differs from the references held"
    assert L.unpack(db.get(L.usage_key(BUCKET))) == [objects, size], "Q/ differs from a scan"
    stats = Counter(L.unpack(db.get(L.STATS_KEY) or L.pack({})))
    assert (stats["objects"], stats["logical_bytes"]) == (objects, size)
    assert stats["chunks"] == len(counted)
    assert stats["stored_bytes"] == sum(SIZES[_index(d)] for d in counted)
    for key in KEYS:  # O/ mirrors the newest V/ entry unless it is a delete marker
        entries = _scan(db, L.key_versions_prefix(BUCKET, key))
        if entries:
            newest = entries[0][1]
            expected = None if newest.get("marker") else newest
            assert current.get(L.object_key(BUCKET, key)) == expected


def _index(d: bytes) -> int:
    return next(i for i in SIZES if digest(i) == d)


def everything(db: Any) -> dict[bytes, bytes]:
    return {k: v for k, v in L.scan(db, b"") if k not in (L.APPLIED_KEY, b"S/raft")}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operations, max_size=30))
def test_invariants_hold_after_every_command_and_a_replayed_log_changes_nothing(ops):
    with tempfile.TemporaryDirectory() as tmp:
        db = open_db(Path(tmp) / "live")
        run = Run(StateMachine(db))
        run.apply(c.CreateBucket(bucket=BUCKET, owner="root", created=1.0))
        for op in ops:
            run.step(op)
            check_invariants(db)
        # The same log as Raft entries, each applied twice (a journal replayed after a restart).
        replica = open_db(Path(tmp) / "replica")
        sm = StateMachine(replica)
        for index, command in enumerate(run.log, start=1):
            sm.apply_many([command], index=index)
            sm.apply_many([command], index=index)
        assert everything(replica) == everything(db)
        replica.close()
        db.close()
