"""The state machine and the metadata store, driven directly (no HTTP): refcounts and garbage,
conditional writes, multipart completion, inline bodies, stale-bucket refusals, the read cache.
Moved from `tests/node/test_units.py`; the shared `meta` fixture is in `conftest.py`."""

from __future__ import annotations

import hashlib

from meta_records import version

from anode.meta import commands as c
from anode.meta.state import multipart_etag


def obj(etag: str, *chunks: tuple[bytes, int]) -> dict:
    return version(*chunks, etag=etag)


D1, D2, D3 = (hashlib.sha256(bytes([i])).digest() for i in range(3))


def test_refcounts_follow_versions_and_garbage_is_marked(meta):
    sm = meta.state_machine
    sm.apply(c.CreateBucket(bucket="b", owner="root", created=1.0))
    sm.apply(c.PutObject(bucket="b", key="x", record=obj('"1"', (D1, 10), (D2, 20))))
    sm.apply(c.PutObject(bucket="b", key="y", record=obj('"2"', (D1, 10), (D1, 10))))
    assert meta.chunk_refs(D1) == 3 and meta.chunk_refs(D2) == 1
    assert meta.stats() == {
        "buckets": 1,
        "objects": 2,
        "logical_bytes": 50,
        "stored_bytes": 30,
        "chunks": 2,
        "inline_chunks": 0,
        "coded_chunks": 0,
        "coded_bytes": 0,
        "fragment_bytes": 0,
    }
    sm.apply(c.PutObject(bucket="b", key="x", record=obj('"3"', (D3, 5))))
    assert meta.chunk_refs(D2) == 0 and list(meta.garbage()) == [D2]
    sm.apply(c.DeleteObjects(bucket="b", keys=("y", "absent")))
    assert meta.chunk_refs(D1) == 0
    assert meta.stats()["stored_bytes"] == 5 and meta.stats()["chunks"] == 1
    assert isinstance(sm.apply(c.DeleteBucket(bucket="b")), c.Rejected)


def test_conditional_put_is_decided_in_apply(meta):
    sm = meta.state_machine
    sm.apply(c.CreateBucket(bucket="b", owner="root", created=1.0))
    assert sm.apply(c.PutObject(bucket="b", key="k", record=obj('"1"'), if_none_match=True))
    rejected = sm.apply(c.PutObject(bucket="b", key="k", record=obj('"2"'), if_none_match=True))
    assert rejected == c.Rejected("PreconditionFailed")
    assert sm.apply(c.PutObject(bucket="b", key="k", record=obj('"3"'), if_match='"1"'))
    assert sm.apply(
        c.PutObject(bucket="b", key="k", record=obj('"4"'), if_match='"1"')
    ) == c.Rejected("PreconditionFailed")


def test_complete_upload_keeps_listed_parts_and_releases_the_rest(meta):
    sm = meta.state_machine
    sm.apply(c.CreateBucket(bucket="b", owner="root", created=1.0))
    sm.apply(
        c.CreateUpload(
            bucket="b",
            key="k",
            upload_id="u",
            record={"initiated": 1.0, "owner": "root", "record": {}},
        )
    )
    md5a, md5b = hashlib.md5(b"a").hexdigest(), hashlib.md5(b"b").hexdigest()
    sm.apply(
        c.PutPart(
            bucket="b", key="k", upload_id="u", part_number=1, record=obj(f'"{md5a}"', (D1, 10))
        )
    )
    sm.apply(
        c.PutPart(
            bucket="b", key="k", upload_id="u", part_number=2, record=obj(f'"{md5b}"', (D2, 10))
        )
    )
    result = sm.apply(
        c.CompleteUpload(
            bucket="b", key="k", upload_id="u", parts=((1, md5a),), mtime=2.0, min_part_size=5
        )
    )
    assert result["etag"] == multipart_etag([md5a])
    assert meta.chunk_refs(D1) == 1 and meta.chunk_refs(D2) == 0
    assert list(meta.parts("u")) == [] and meta.upload("b", "k", "u") is None


def test_commands_survive_encoding():
    command = c.CompleteUpload(
        bucket="b",
        key="k",
        upload_id="u",
        parts=((1, "e"), (2, "f")),
        mtime=1.0,
        min_part_size=5,
        checksums={"CRC32": "x"},
    )
    assert c.decode(c.encode(command)) == command
    put = c.PutObject(bucket="b", key="k", record=obj('"1"', (D1, 3)))
    assert c.decode(c.encode(put)) == put


def test_coded_chunk_record_follows_its_references_and_goes_with_its_garbage(meta):
    """RecordCoded: fragments count their chunk's references; an unreferenced coded chunk is
    marked (as coded, not released); ForgetGarbage of a released one drops X/ and F/."""
    from anode.chunks.erasure import Scheme, encode
    from anode.meta.layout import CODED_MARKER

    sm = meta.state_machine
    chunk = bytes(range(256)) * 40
    digest = hashlib.sha256(chunk).digest()
    coded, _ = encode(chunk, digest, Scheme(2, 1))
    sm.apply(c.CreateBucket(bucket="b", owner="root", created=1.0))
    sm.apply(c.RecordCoded(digest=digest, coded={**coded.record(), "at": 5.0}))
    fragment = coded.digests[2]
    assert meta.fragment_owner(fragment) == digest and meta.coded(digest)["at"] == 5.0
    assert list(meta.garbage_markers()) == [(digest, CODED_MARKER)]
    assert meta.chunk_refs(fragment) == 0 and not list(meta.coded_chunks())
    sm.apply(c.PutObject(bucket="b", key="x", record=obj('"1"', (digest, len(chunk)))))
    assert meta.chunk_refs(fragment) == 1 and [d for d, _ in meta.coded_chunks()] == [digest]
    assert digest not in set(meta.referenced_chunks())  # repaired as fragments, not copies
    sm.apply(c.RecordCoded(digest=digest, coded={**coded.record(), "at": 9.0}))  # dedup
    assert meta.stats()["coded_chunks"] == 1 and meta.coded(digest)["at"] == 9.0
    sm.apply(c.ForgetGarbage((digest,)))  # referenced again: the record stays
    assert meta.coded(digest) is not None
    sm.apply(c.DeleteObjects(bucket="b", keys=("x",)))
    assert list(meta.garbage_markers()) == [(digest, b"")]
    sm.apply(c.ForgetGarbage((digest,)))
    assert meta.coded(digest) is None and meta.fragment_owner(fragment) is None
    stats = meta.stats()
    assert stats["coded_chunks"] == stats["coded_bytes"] == stats["fragment_bytes"] == 0


def test_inline_body_lives_in_the_metadata_until_its_garbage_is_forgotten(meta):
    sm = meta.state_machine
    body = b"small body"
    digest = hashlib.sha256(body).digest()
    sm.apply(c.CreateBucket(bucket="b", owner="root", created=1.0))
    sm.apply(c.PutObject(bucket="b", key="x", record=obj('"1"', (digest, len(body))), inline=body))
    sm.apply(c.PutObject(bucket="b", key="y", record=obj('"1"', (digest, len(body))), inline=body))
    assert meta.inline_chunk(digest) == body and meta.chunk_refs(digest) == 2
    assert meta.stats()["inline_chunks"] == 1
    assert digest not in set(meta.referenced_chunks())  # no file to repair or scrub
    sm.apply(c.DeleteObjects(bucket="b", keys=("x", "y")))
    assert meta.chunk_refs(digest) == 0 and list(meta.garbage()) == [digest]
    assert meta.inline_chunk(digest) == body  # in-flight reads finish during the grace period
    sm.apply(c.ForgetGarbage((digest,)))
    assert meta.inline_chunk(digest) is None and not list(meta.garbage())
    assert meta.stats()["inline_chunks"] == 0


def test_inline_body_referenced_again_survives_the_forget(meta):
    sm = meta.state_machine
    body = b"again"
    digest = hashlib.sha256(body).digest()
    sm.apply(c.CreateBucket(bucket="b", owner="root", created=1.0))
    sm.apply(c.PutObject(bucket="b", key="x", record=obj('"1"', (digest, 5)), inline=body))
    sm.apply(c.DeleteObjects(bucket="b", keys=("x",)))
    sm.apply(c.PutObject(bucket="b", key="z", record=obj('"1"', (digest, 5)), inline=body))
    sm.apply(c.ForgetGarbage((digest,)))
    assert meta.inline_chunk(digest) == body and meta.chunk_refs(digest) == 1


def test_rejected_put_stores_no_inline_body(meta):
    sm = meta.state_machine
    body = b"refused"
    digest = hashlib.sha256(body).digest()
    sm.apply(c.CreateBucket(bucket="b", owner="root", created=1.0))
    sm.apply(c.PutObject(bucket="b", key="k", record=obj('"1"')))
    rejected = sm.apply(
        c.PutObject(
            bucket="b", key="k", record=obj('"2"', (digest, 7)), inline=body, if_none_match=True
        )
    )
    assert rejected == c.Rejected("PreconditionFailed")
    assert meta.inline_chunk(digest) is None and meta.chunk_refs(digest) == 0


def test_put_authorised_against_an_older_bucket_of_the_same_name_is_refused(meta):
    sm = meta.state_machine
    sm.apply(c.CreateBucket(bucket="b", owner="alice", created=1.0))
    sm.apply(c.DeleteBucket(bucket="b"))
    sm.apply(c.CreateBucket(bucket="b", owner="bob", created=2.0))
    stale = sm.apply(c.PutObject(bucket="b", key="k", record=obj('"1"'), bucket_created=1.0))
    assert isinstance(stale, c.Rejected) and stale.code == "OperationAborted"
    assert meta.object("b", "k") is None
    assert not isinstance(
        sm.apply(c.PutObject(bucket="b", key="k", record=obj('"1"'), bucket_created=2.0)),
        c.Rejected,
    )


def test_cached_buckets_and_users_follow_every_write(meta):
    sm = meta.state_machine
    assert meta.bucket("b") is None and meta.user_by_access_key("AK1") is None  # now cached
    sm.apply(c.CreateBucket(bucket="b", owner="root", created=1.0))
    sm.apply(
        c.CreateUser(name="u", access_key="AK1", secret_key="s" * 8, owner_id="id", created=1.0)
    )
    assert meta.bucket("b")["owner"] == "root"
    assert meta.user_by_access_key("AK1")["name"] == "u"
    sm.apply(c.SetBucketConfig(bucket="b", name="cors", value=[{"x": 1}]))
    assert meta.bucket("b")["cors"] == [{"x": 1}]
    sm.apply(c.DeleteUser(name="u"))
    sm.apply(c.DeleteBucket(bucket="b"))
    assert meta.bucket("b") is None and meta.user_by_access_key("AK1") is None


def test_cache_keeps_no_value_a_concurrent_write_replaced(meta):
    """The Raft thread applies while request handlers read: whatever the interleaving, once
    the writes stop the cache agrees with the database."""
    import threading

    sm = meta.state_machine
    sm.apply(c.CreateBucket(bucket="b", owner="root", created=1.0))
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            meta.bucket("b")

    readers = [threading.Thread(target=reader) for _ in range(2)]
    for t in readers:
        t.start()
    for i in range(300):
        sm.apply(c.SetBucketConfig(bucket="b", name="cors", value=[{"n": i}]))
    stop.set()
    for t in readers:
        t.join()
    assert meta.bucket("b")["cors"] == [{"n": 299}] == meta._get(b"B/b")["cors"]
