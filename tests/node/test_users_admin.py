"""Users, bucket ownership and the admin API (HTTP and the `anode admin` CLI)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from s3util import error_code

ANODE = str(Path(sys.executable).parent / "anode")


def test_probes_are_open_and_the_rest_needs_the_root_secret(node):
    for path in ("/health", "/ready", "/metrics"):
        with urllib.request.urlopen(node.admin_url + path) as r:
            assert r.status == 200
    status, body = node.admin("/status", token="wrong")
    assert status == 401 and body["code"] == "Unauthorized"
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(node.admin_url + "/users")
    assert exc.value.code == 401


def test_status_document(node, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"12345" * 10_000)  # a chunk file, not inline
    status, doc = node.admin("/status")
    assert status == 200
    ids = [m["id"] for m in doc["members"]]
    assert doc["ready"] and doc["leader"] in ids and doc["node_id"] in ids
    assert doc["role"] == ("leader" if doc["leader"] == doc["node_id"] else "follower")
    assert all(m["voter"] and m["healthy"] for m in doc["members"]), doc["members"]
    assert sum(m["chunks"] for m in doc["members"]) >= 1
    assert doc["storage"]["objects"] >= 1 and doc["storage"]["buckets"] >= 1
    assert doc["commit_index"] > 0


def test_metrics_count_requests_by_operation_and_status(node, bucket):
    from anode_procs import s3_client

    s3 = s3_client(node.s3_url)  # the node whose metrics we read
    s3.put_object(Bucket=bucket, Key="m", Body=b"x")
    with pytest.raises(ClientError):
        s3.get_object(Bucket=bucket, Key="missing")
    with urllib.request.urlopen(node.admin_url + "/metrics") as r:
        text = r.read().decode()
    assert 'anode_s3_requests_total{operation="PutObject",status="200"}' in text
    assert 'anode_s3_requests_total{operation="GetObject",status="404"}' in text
    assert 'anode_s3_request_duration_seconds_bucket{le="0.005",operation="PutObject"}' in text
    assert "anode_s3_bytes_in_total" in text


def test_users_created_by_api_own_their_buckets(node, s3):
    status, alice = node.admin("/users", method="POST", body={"name": "alice"})
    assert status == 201 and alice["secret_key"] and len(alice["owner_id"]) == 64
    status, again = node.admin("/users", method="POST",
                               body={"name": "alice", "access_key": alice["access_key"],
                                     "secret_key": alice["secret_key"]})
    assert status == 200 and again["access_key"] == alice["access_key"]
    status, _ = node.admin("/users", method="POST", body={"name": "alice"})
    assert status == 409
    bob_keys = {"name": "bob", "access_key": "BOBKEY", "secret_key": "bobsecret1"}
    status, bob = node.admin("/users", method="POST", body=bob_keys)
    assert status == 201 and bob["access_key"] == "BOBKEY"
    as_alice = node.client(alice["access_key"], alice["secret_key"])
    as_bob = node.client("BOBKEY", "bobsecret1")
    as_alice.create_bucket(Bucket="alice-data")
    as_alice.put_object(Bucket="alice-data", Key="secret", Body=b"alice only")
    listing = as_alice.list_buckets()
    assert [b["Name"] for b in listing["Buckets"]] == ["alice-data"]
    assert listing["Owner"] == {"DisplayName": "alice", "ID": alice["owner_id"]}
    assert as_bob.list_buckets()["Buckets"] == []
    for call in (lambda: as_bob.get_object(Bucket="alice-data", Key="secret"),
                 lambda: as_bob.put_object(Bucket="alice-data", Key="x", Body=b"x"),
                 lambda: as_bob.list_objects_v2(Bucket="alice-data"),
                 lambda: as_bob.delete_object(Bucket="alice-data", Key="secret"),
                 lambda: as_bob.delete_bucket(Bucket="alice-data"),
                 lambda: as_bob.copy_object(Bucket="alice-data", Key="c",
                                            CopySource="alice-data/secret")):
        with pytest.raises(ClientError) as exc:
            call()
        assert error_code(exc) == ("AccessDenied", 403)
    with pytest.raises(ClientError) as exc:
        as_bob.create_bucket(Bucket="alice-data")
    assert error_code(exc) == ("BucketAlreadyExists", 409)
    # root sees everything
    assert s3.get_object(Bucket="alice-data", Key="secret")["Body"].read() == b"alice only"
    # a deleted user's key stops working at once
    assert node.admin("/users/bob", method="DELETE")[0] == 204
    with pytest.raises(ClientError) as exc:
        as_bob.list_buckets()
    assert error_code(exc) == ("InvalidAccessKeyId", 403)


def test_admin_bucket_endpoints(node):
    node.admin("/users", method="POST", body={"name": "carol", "access_key": "CAROLKEY",
                                               "secret_key": "carolsecret"})
    status, doc = node.admin("/buckets", method="POST", body={"name": "carol-b", "owner": "carol"})
    assert status == 201 and doc["owner"] == "carol"
    assert node.admin("/buckets", method="POST",
                      body={"name": "carol-b", "owner": "carol"})[0] == 200
    assert node.admin("/buckets", method="POST", body={"name": "carol-b"})[0] == 409
    assert node.admin("/buckets", method="POST", body={"name": "Bad_Name"})[0] == 400
    carol = node.client("CAROLKEY", "carolsecret")
    carol.put_object(Bucket="carol-b", Key="k", Body=b"v")
    assert node.admin("/buckets/carol-b", method="DELETE")[0] == 409
    assert node.admin("/buckets/carol-b?force=true", method="DELETE")[0] == 204
    assert node.admin("/buckets/carol-b", method="DELETE")[0] == 404
    from anode_procs import ClusterFront

    drain = node.admin("/cluster/members/nobody/drain", method="POST")[0]
    assert drain == (404 if isinstance(node, ClusterFront) else 501)


def test_users_from_config_file(tmp_path):
    from anode_procs import NodeProcess

    proc = NodeProcess(tmp_path / "data", extra_config="""
[[users]]
name = "gitops"
access_key = "GITOPSKEY"
secret_key = "gitops-secret"
""").start()
    try:
        client = proc.client("GITOPSKEY", "gitops-secret")
        client.create_bucket(Bucket="from-config")
        assert [b["Name"] for b in client.list_buckets()["Buckets"]] == ["from-config"]
    finally:
        proc.stop()
    proc.start()  # restarting with the same config is idempotent
    try:
        assert proc.client("GITOPSKEY", "gitops-secret").list_buckets()["Buckets"]
    finally:
        proc.stop()


def test_anode_admin_cli(node):
    env = dict(os.environ, ANODE_ROOT_SECRET_KEY=node.secret_key)
    out = subprocess.run([ANODE, "admin", "--url", node.admin_url, "status"], env=env,
                         capture_output=True, text=True, check=True).stdout
    assert '"leader": ' in out and '"commit_index": ' in out
    out = subprocess.run([ANODE, "admin", "--url", node.admin_url, "users", "create", "dave",
                          "--email", "dave@example.com"],
                         env=env, capture_output=True, text=True, check=True).stdout
    assert '"secret_key"' in out
    out = subprocess.run([ANODE, "admin", "--url", node.admin_url, "users", "list"], env=env,
                         capture_output=True, text=True, check=True).stdout
    assert '"dave"' in out and "secret_key" not in out
    dave = next(u for u in json.loads(out)["users"] if u["name"] == "dave")
    assert dave["email"] == "dave@example.com"
    bad = subprocess.run([ANODE, "admin", "--url", node.admin_url, "--token", "nope", "users",
                          "list"], capture_output=True, text=True)
    assert bad.returncode == 1


def test_server_refuses_to_start_without_credentials_or_with_bad_config(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANODE_")}
    config = tmp_path / "a.toml"
    config.write_text(f'[storage]\ndata_dir = "{tmp_path}/d"\n')
    result = subprocess.run([ANODE, "server", "--config", str(config)], env=env,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "root credentials are required" in result.stderr
    config.write_text('[storage]\nchunk_size = "huge"\n')
    result = subprocess.run([ANODE, "server", "--config", str(config)], env=env,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "storage.chunk_size" in result.stderr
    config.write_text('[storage]\nchunk_size = "1MiB"\n')
    result = subprocess.run([ANODE, "server", "--config", str(config)],
                            env={**env, "ANODE_NODE_S3_PORT": "1"},
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "ANODE_NODE_S3_PORT" in result.stderr
