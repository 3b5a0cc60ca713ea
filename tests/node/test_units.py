"""Unit tests of the pure parts: config schema, router, conditions, ranges, state machine."""

from __future__ import annotations

import hashlib

import pytest

from anode.config import ConfigError, load_config
from anode.meta import commands as c
from anode.meta.state import multipart_etag
from anode.meta.store import MetaStore, open_db
from anode.s3.conditions import check_read_conditions, parse_range
from anode.s3.errors import ErrorCode, S3Error
from anode.s3.router import resolve, split_target

# ---- config ---------------------------------------------------------------------------------


def test_config_file_then_env_overrides(tmp_path):
    path = tmp_path / "a.toml"
    path.write_text("""
[node]
id = "n1"
s3_addr = "127.0.0.1:9000"
[storage]
chunk_size = "8MiB"
gc_grace = "2m"
[root]
access_key = "a"
secret_key = "b"
""")
    cfg = load_config(path, env={"ANODE_STORAGE_CHUNK_SIZE": "1MB", "ANODE_NODE_DOMAINS": "x,y",
                                 "ANODE_PARQUET_ENABLE_CACHE": "false"})
    assert cfg.node.id == "n1" and cfg.node.s3_addr == "127.0.0.1:9000"
    assert cfg.storage.chunk_size == 1_000_000 and cfg.storage.gc_grace == 120
    assert cfg.node.domains == ["x", "y"] and cfg.parquet.enable_cache is False
    assert cfg.root.access_key == "a"


@pytest.mark.parametrize(("text", "env", "message"), [
    ("[nodes]\nid='x'", {}, "nodes: unknown section"),
    ("[node]\nport=1", {}, "node.port: unknown key"),
    ("[storage]\nchunk_size='big'", {}, "storage.chunk_size: expected a size"),
    ("[storage]\nchunk_size='1KiB'", {}, "storage.chunk_size: must be between"),
    ("[node]\ns3_addr='nope'", {}, "node.s3_addr: expected host:port"),
    ("[cluster]\nreplication_factor=true", {}, "cluster.replication_factor: expected an integer"),
    ("", {"ANODE_STORAGE_GC_GRACE": "soon"}, "ANODE_STORAGE_GC_GRACE (storage.gc_grace)"),
    ("", {"ANODE_ROOT_ACCESS_KEY": "only-one"}, "root: set both"),
    ("[[users]]\nname='u'", {}, "users[0].access_key: required"),
    ("[node]\nid='bad id!'", {}, "node.id"),
])
def test_config_errors_name_the_key(tmp_path, text, env, message):
    path = tmp_path / "a.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_config(path, env=env)
    assert message in str(exc.value)


PEERS = 'peers = ["a=h1:9090", "b=h2:9090"]\nsecret = "0123456789abcdef"\n'


@pytest.mark.parametrize(("node_id", "cluster", "env", "learner"), [
    ("a", PEERS + 'learner = "auto"', {}, False),  # listed among the voters
    ("c", PEERS + 'learner = "auto"', {}, True),  # not listed: joins to be promoted
    ("c", PEERS, {"ANODE_CLUSTER_LEARNER": "AUTO"}, True),
    ("b", PEERS, {"ANODE_CLUSTER_LEARNER": "auto"}, False),
    ("solo", 'learner = "auto"', {}, False),  # no peers: a node running alone
    ("a", PEERS + "learner = true", {}, True),  # explicit flags keep their meaning
    ("c", PEERS, {"ANODE_CLUSTER_LEARNER": "false"}, False),
])
def test_learner_auto_means_not_among_the_configured_voters(tmp_path, node_id, cluster, env,
                                                            learner):
    path = tmp_path / "a.toml"
    path.write_text(f'[node]\nid = "{node_id}"\n[cluster]\n{cluster}\n')
    cfg = load_config(path, env=env)
    assert cfg.is_learner is learner


def test_learner_accepts_only_booleans_and_auto(tmp_path):
    path = tmp_path / "a.toml"
    path.write_text('[cluster]\nlearner = "sometimes"\n')
    with pytest.raises(ConfigError, match=r'cluster\.learner: expected true, false or "auto"'):
        load_config(path, env={})


# ---- router ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "query", "headers", "operation"), [
    ("GET", "/", {}, {}, "ListBuckets"),
    ("PUT", "/b", {}, {}, "CreateBucket"),
    ("GET", "/b", {"list-type": "2"}, {}, "ListObjectsV2"),
    ("GET", "/b", {}, {}, "ListObjects"),
    ("POST", "/b", {"delete": ""}, {}, "DeleteObjects"),
    ("GET", "/b", {"versioning": ""}, {}, "GetBucketVersioning"),
    ("PUT", "/b/k", {}, {}, "PutObject"),
    ("PUT", "/b/k", {}, {"x-amz-copy-source": "/b/x"}, "CopyObject"),
    ("PUT", "/b/k", {"uploadId": "u", "partNumber": "1"}, {}, "UploadPart"),
    ("PUT", "/b/k", {"uploadId": "u", "partNumber": "1"}, {"x-amz-copy-source": "b/x"},
     "UploadPartCopy"),
    ("GET", "/b/k", {"partNumber": "2"}, {}, "GetObject"),
    ("POST", "/b/k", {"uploads": ""}, {}, "CreateMultipartUpload"),
    ("POST", "/b/k", {"select": "", "select-type": "2"}, {}, "SelectObjectContent"),
    ("GET", "/b/k", {"tagging": ""}, {}, "GetObjectTagging"),
])
def test_router_resolves_operations(method, path, query, headers, operation):
    bucket, key = split_target(path, "127.0.0.1:8080", ["localhost"])
    assert resolve(method, bucket, key, query, headers).operation == operation


def test_split_target_virtual_host_and_raw_keys():
    assert split_target("/a%2Fb/../c", "bkt.localhost:8080", ["localhost"]) == ("bkt", "a/b/../c")
    assert split_target("/bkt/%E2%9C%93", "127.0.0.1", ["localhost"]) == ("bkt", "✓")
    assert split_target("/bkt/", "127.0.0.1", ["localhost"]) == ("bkt", None)
    with pytest.raises(S3Error):
        split_target("/bkt/%FF", "127.0.0.1", ["localhost"])


# ---- conditions and ranges ------------------------------------------------------------------


@pytest.mark.parametrize(("header", "size", "expected"), [
    (None, 10, None), ("bytes=0-0", 10, (0, 1)), ("bytes=5-", 10, (5, 10)),
    ("bytes=-3", 10, (7, 10)), ("bytes=-30", 10, (0, 10)), ("bytes=2-100", 10, (2, 10)),
    ("bytes=5-2", 10, None), ("items=0-1", 10, None), ("bytes=0-1,3-4", 10, None),
])
def test_parse_range(header, size, expected):
    assert parse_range(header, size) == expected


@pytest.mark.parametrize(("header", "size"), [("bytes=10-", 10), ("bytes=-0", 10),
                                              ("bytes=0-", 0)])
def test_parse_range_unsatisfiable(header, size):
    with pytest.raises(S3Error) as exc:
        parse_range(header, size)
    assert exc.value.code is ErrorCode.InvalidRange


def test_conditions_precedence():
    etag, mtime = '"abc"', 1_700_000_000.5
    check_read_conditions({"If-Match": '"abc"', "If-Unmodified-Since": "Mon, 01 Jan 2001 "
                           "00:00:00 GMT"}, etag, mtime)
    with pytest.raises(S3Error) as exc:
        check_read_conditions({"If-None-Match": '"x", "abc"'}, etag, mtime)
    assert exc.value.code is ErrorCode.NotModified
    with pytest.raises(S3Error) as exc:
        check_read_conditions({"x-amz-copy-source-If-None-Match": "abc"}, etag, mtime,
                              prefix="x-amz-copy-source-",
                              not_modified=ErrorCode.PreconditionFailed)
    assert exc.value.code is ErrorCode.PreconditionFailed


# ---- state machine on a real RocksDB ---------------------------------------------------------


@pytest.fixture
def meta(tmp_path):
    store = MetaStore(open_db(tmp_path / "db"))
    yield store
    store.close()


def obj(etag: str, *chunks: tuple[bytes, int]) -> dict:
    return {"size": sum(s for _, s in chunks), "etag": etag, "mtime": 1.0,
            "chunks": [list(ch) for ch in chunks], "owner": "root"}


D1, D2, D3 = (hashlib.sha256(bytes([i])).digest() for i in range(3))


def test_refcounts_follow_versions_and_garbage_is_marked(meta):
    sm = meta.state_machine
    sm.apply(c.CreateBucket(bucket="b", owner="root", created=1.0))
    sm.apply(c.PutObject(bucket="b", key="x", record=obj('"1"', (D1, 10), (D2, 20))))
    sm.apply(c.PutObject(bucket="b", key="y", record=obj('"2"', (D1, 10), (D1, 10))))
    assert meta.chunk_refs(D1) == 3 and meta.chunk_refs(D2) == 1
    assert meta.stats() == {"buckets": 1, "objects": 2, "logical_bytes": 50, "stored_bytes": 30,
                            "chunks": 2, "inline_chunks": 0}
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
    assert sm.apply(c.PutObject(bucket="b", key="k", record=obj('"4"'),
                                if_match='"1"')) == c.Rejected("PreconditionFailed")


def test_complete_upload_keeps_listed_parts_and_releases_the_rest(meta):
    sm = meta.state_machine
    sm.apply(c.CreateBucket(bucket="b", owner="root", created=1.0))
    sm.apply(c.CreateUpload(bucket="b", key="k", upload_id="u",
                            record={"initiated": 1.0, "owner": "root", "record": {}}))
    md5a, md5b = hashlib.md5(b"a").hexdigest(), hashlib.md5(b"b").hexdigest()
    sm.apply(c.PutPart(bucket="b", key="k", upload_id="u", part_number=1,
                       record=obj(f'"{md5a}"', (D1, 10))))
    sm.apply(c.PutPart(bucket="b", key="k", upload_id="u", part_number=2,
                       record=obj(f'"{md5b}"', (D2, 10))))
    result = sm.apply(c.CompleteUpload(bucket="b", key="k", upload_id="u",
                                       parts=((1, md5a),), mtime=2.0, min_part_size=5))
    assert result["etag"] == multipart_etag([md5a])
    assert meta.chunk_refs(D1) == 1 and meta.chunk_refs(D2) == 0
    assert list(meta.parts("u")) == [] and meta.upload("b", "k", "u") is None


def test_commands_survive_encoding():
    command = c.CompleteUpload(bucket="b", key="k", upload_id="u", parts=((1, "e"), (2, "f")),
                               mtime=1.0, min_part_size=5, checksums={"CRC32": "x"})
    assert c.decode(c.encode(command)) == command
    put = c.PutObject(bucket="b", key="k", record=obj('"1"', (D1, 3)))
    assert c.decode(c.encode(put)) == put


def test_every_error_code_is_its_own_member():
    """Equal (status, message) values would make an enum member an alias of another."""
    assert len({code.value for code in ErrorCode}) == len(ErrorCode)
    assert ErrorCode.SlowDown.name == "SlowDown"


def test_inline_body_lives_in_the_metadata_until_its_garbage_is_forgotten(meta):
    sm = meta.state_machine
    body = b"small body"
    digest = hashlib.sha256(body).digest()
    sm.apply(c.CreateBucket(bucket="b", owner="root", created=1.0))
    sm.apply(c.PutObject(bucket="b", key="x", record=obj('"1"', (digest, len(body))),
                         inline=body))
    sm.apply(c.PutObject(bucket="b", key="y", record=obj('"1"', (digest, len(body))),
                         inline=body))
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
    rejected = sm.apply(c.PutObject(bucket="b", key="k", record=obj('"2"', (digest, 7)),
                                    inline=body, if_none_match=True))
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
    assert not isinstance(sm.apply(c.PutObject(bucket="b", key="k", record=obj('"1"'),
                                               bucket_created=2.0)), c.Rejected)


def test_cached_buckets_and_users_follow_every_write(meta):
    sm = meta.state_machine
    assert meta.bucket("b") is None and meta.user_by_access_key("AK1") is None  # now cached
    sm.apply(c.CreateBucket(bucket="b", owner="root", created=1.0))
    sm.apply(c.CreateUser(name="u", access_key="AK1", secret_key="s" * 8, owner_id="id",
                          created=1.0))
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
