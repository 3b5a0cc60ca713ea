"""Unit tests of the pure parts: config schema, router, conditions, ranges, state machine."""

from __future__ import annotations

import pytest

from anode.config import ConfigError, load_config
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
    ("[cluster]\nerasure_coding='3+1'", {}, "cluster.erasure_coding: 3+1 needs a cluster"),
    ("[node]\nid='a'\n[cluster]\nerasure_coding='4+2'\nsecret='0123456789abcdef'\n"
     "peers=['a=h1:1', 'b=h2:1', 'c=h3:1']", {}, "cluster.peers names 3"),
    ("[cluster]\nerasure_coding='4-2'", {}, "cluster.erasure_coding: erasure coding '4-2'"),
    ("[node]\nid='a'\n[cluster]\nerasure_coding='1+1'\nsecret='0123456789abcdef'\n"
     "peers=['a=h1:1', 'b=h2:1']\nerasure_classes=['GOLD']", {}, "unknown storage classes"),
    ("[cluster]\ninitial_state='old'", {}, "cluster.initial_state"),
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


# ---- the error table ---------------------------------------------------------------------


def test_every_error_code_is_its_own_member():
    """Equal (status, message) values would make an enum member an alias of another."""
    assert len({code.value for code in ErrorCode}) == len(ErrorCode)
    assert ErrorCode.SlowDown.name == "SlowDown"
