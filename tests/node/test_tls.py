"""TLS on the S3 and admin listeners: start-up validation, a real node serving boto3 over
HTTPS with a self-signed certificate it must verify, and a TLS cluster whose members forward
admin calls to the leader over HTTPS (chunk transfer over TLS: security/test_internode_tls.py)."""

from __future__ import annotations

import socket
import ssl
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import boto3
import pytest
from anode_procs import ACCESS_KEY, SECRET_KEY, ClusterProcesses, NodeProcess
from botocore.config import Config
from botocore.exceptions import SSLError
from selfsigned import make_cert

from anode.config import ConfigError, load_config
from anode.tls import server_context

# ---- start-up validation ----------------------------------------------------------------------


def test_tls_files_are_validated_at_start_up(tmp_path):
    cert, key = make_cert(tmp_path / "a")
    other_cert, _ = make_cert(tmp_path / "b", name="other")
    cases = [
        ({"ANODE_NODE_TLS_CERT_FILE": str(cert)}, "set both, or neither"),
        ({"ANODE_NODE_TLS_KEY_FILE": str(key)}, "set both, or neither"),
        ({"ANODE_NODE_TLS_CERT_FILE": str(tmp_path / "missing.crt"),
          "ANODE_NODE_TLS_KEY_FILE": str(key)}, "node.tls_cert_file: cannot read"),
        ({"ANODE_NODE_TLS_CERT_FILE": str(other_cert), "ANODE_NODE_TLS_KEY_FILE": str(key)},
         "not a matching PEM certificate and key"),
        ({"ANODE_NODE_TLS_CERT_FILE": str(key), "ANODE_NODE_TLS_KEY_FILE": str(key)},
         "not a matching PEM certificate and key"),
    ]
    for env, message in cases:
        with pytest.raises(ConfigError, match=message):
            load_config(None, env=env)
    cfg = load_config(None, env={"ANODE_NODE_TLS_CERT_FILE": str(cert),
                                 "ANODE_NODE_TLS_KEY_FILE": str(key)})
    assert cfg.tls and cfg.scheme == "https"
    assert load_config(None, env={}).scheme == "http"


def test_server_context_refuses_anything_older_than_tls_1_2(tmp_path):
    cert, key = make_cert(tmp_path)
    context = server_context(cert_file=str(cert), key_file=str(key))
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


# ---- one node ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_node(tmp_path_factory):
    root = tmp_path_factory.mktemp("tls")
    # SSE-C refused over plain HTTP (the default), so that it proves this transport is secure
    node = NodeProcess(root / "n", tls=make_cert(root / "certs"), s3_options="").start()
    yield node
    node.stop()


def _boto(url: str, verify: str | bool):
    return boto3.client(
        "s3", endpoint_url=url, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1", verify=verify,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def test_boto3_round_trip_over_https_verifying_the_certificate(tls_node):
    s3 = _boto(tls_node.s3_url, verify=str(tls_node.tls[0]))
    s3.create_bucket(Bucket="secure")
    s3.put_object(Bucket="secure", Key="k", Body=b"over tls" * 1000)
    assert s3.get_object(Bucket="secure", Key="k")["Body"].read() == b"over tls" * 1000
    # SSE-C needs a secure transport, and this one is
    key = b"k" * 32
    s3.put_object(Bucket="secure", Key="c", Body=b"x", SSECustomerAlgorithm="AES256",
                  SSECustomerKey=key)
    got = s3.get_object(Bucket="secure", Key="c", SSECustomerAlgorithm="AES256",
                        SSECustomerKey=key)
    assert got["Body"].read() == b"x"


def test_a_client_that_does_not_trust_the_certificate_is_refused(tls_node, tmp_path):
    stranger, _ = make_cert(tmp_path, name="stranger")
    with pytest.raises(SSLError):
        _boto(tls_node.s3_url, verify=str(stranger)).list_buckets()


def test_plain_http_is_not_served_on_the_tls_ports(tls_node):
    for port in (tls_node.s3_port, tls_node.admin_port):
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=3).read()


def test_admin_over_https_publishes_https_urls_and_negotiates_tls_1_2_or_newer(tls_node):
    status, doc = tls_node.admin("/status")
    assert status == 200
    (member,) = doc["members"]
    assert member["s3_url"] == f"https://127.0.0.1:{tls_node.s3_port}"
    assert member["admin_url"] == f"https://127.0.0.1:{tls_node.admin_port}"
    context = tls_node.ssl_context
    with socket.create_connection(("127.0.0.1", tls_node.admin_port), timeout=3) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.load_verify_locations(str(tls_node.tls[0]))
    with warnings.catch_warnings():  # deprecated, which is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises((ssl.SSLError, OSError)), \
            socket.create_connection(("127.0.0.1", tls_node.admin_port), timeout=3) as raw, \
            old.wrap_socket(raw, server_hostname="127.0.0.1"):
        pass


def test_admin_cli_verifies_the_node_with_cacert(tls_node):
    import subprocess
    import sys

    def cli(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(Path(sys.executable).parent / "anode"), "admin", "--url", tls_node.admin_url,
             "--token", tls_node.secret_key, *extra, "status"],
            capture_output=True, text=True, timeout=60)

    trusted = cli("--cacert", str(tls_node.tls[0]))
    assert trusted.returncode == 0 and '"ready": true' in trusted.stdout, trusted.stderr
    untrusted = cli()
    assert untrusted.returncode == 1 and "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr


# ---- a cluster --------------------------------------------------------------------------------


def test_tls_cluster_forwards_admin_calls_to_the_leader_over_https(tmp_path):
    tls = make_cert(tmp_path / "certs")
    cluster = ClusterProcesses(tmp_path, n=3)
    for node in cluster.nodes:
        node.tls = tls
    cluster.start()
    try:
        status, doc = cluster.nodes[0].admin("/status")
        assert status == 200, doc
        leader = doc["leader"]
        assert all(m["admin_url"].startswith("https://") for m in doc["members"])
        follower = next(n for n in cluster.nodes if n.node_id != leader)
        target = next(n.node_id for n in cluster.nodes if n.node_id not in (leader,
                                                                             follower.node_id))
        # a leader-only step asked of a follower: forwarded to the leader's https admin URL
        status, body = follower.admin("/cluster/leadership", method="POST", body={"to": target})
        assert status == 200, body
        assert body["leader"] == target
        s3 = _boto(follower.s3_url, verify=str(tls[0]))
        s3.create_bucket(Bucket="replicated")
        s3.put_object(Bucket="replicated", Key="k", Body=b"x" * 100_000)
        other = next(n for n in cluster.nodes if n is not follower)
        got = _boto(other.s3_url, verify=str(tls[0])).get_object(Bucket="replicated", Key="k")
        assert got["Body"].read() == b"x" * 100_000
    finally:
        cluster.stop()


def test_web_console_over_https(tls_node):
    """The console on an https admin port: a Secure cookie, and its own S3 requests go to the
    node's https S3 port (trusting the node's certificate)."""
    import requests

    s3 = _boto(tls_node.s3_url, str(tls_node.tls[0]))
    s3.create_bucket(Bucket="console-tls")
    s3.put_object(Bucket="console-tls", Key="a <b>.txt", Body=b"over tls")
    http = requests.Session()
    http.headers["Origin"] = tls_node.admin_url
    ca = str(tls_node.tls[0])  # per request: a CA bundle named in the environment would win
    login = http.post(tls_node.admin_url + "/console/login", allow_redirects=False, timeout=30,
                      data={"access_key": ACCESS_KEY, "secret_key": SECRET_KEY}, verify=ca)
    assert login.status_code == 303 and "Secure" in login.headers["Set-Cookie"]
    page = http.get(tls_node.admin_url + "/console/browse/console-tls", timeout=30, verify=ca)
    assert page.status_code == 200 and "a &lt;b&gt;.txt" in page.text
    got = http.get(tls_node.admin_url + "/console/download/console-tls",
                   params={"key": "a <b>.txt"}, timeout=30, verify=ca)
    assert got.status_code == 200 and got.content == b"over tls"
