"""Chunk transfer between members over TLS (issue 12, item 7).

A 3-node cluster whose members serve one self-signed certificate: the internode port speaks
only TLS (1.3 here), chunks of a new object reach every member through it, and a peer that
does not trust the certificate gets nothing. Before, chunks crossed as plain HTTP.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import ssl
import time
import urllib.request

import boto3
import pytest
from anode_procs import ACCESS_KEY, SECRET_KEY, ClusterProcesses, NodeProcess
from botocore.config import Config
from selfsigned import make_cert

from anode.config import ConfigError, load_config
from anode.internode.client import InternodeClient, PeerError
from anode.tls import peer_context

MiB = 1 << 20


def _s3(node: NodeProcess):
    return boto3.client(
        "s3",
        endpoint_url=node.s3_url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1",
        verify=str(node.tls[0]),
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("internode-tls")
    tls = make_cert(root / "certs")
    c = ClusterProcesses(root, n=3, storage_options='chunk_size = "1MiB"')
    for node in c.nodes:
        node.tls = tls
    c.start()
    yield c
    c.stop()


def test_the_internode_port_refuses_plain_http_and_speaks_tls_1_3(cluster):
    node = cluster.nodes[0]
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{node.data_port}/health", timeout=5).read()
    context = peer_context(cert_file=str(node.tls[0]))
    with urllib.request.urlopen(
        f"https://127.0.0.1:{node.data_port}/health", timeout=5, context=context
    ) as r:
        assert r.status == 200
    with (
        socket.create_connection(("127.0.0.1", node.data_port), timeout=5) as raw,
        context.wrap_socket(raw) as tls,
    ):
        assert tls.version() == "TLSv1.3"
    status, doc = node.admin("/status")
    assert status == 200
    urls = [m["data_url"] for m in doc["members"]]
    assert len(urls) == 3 and all(u.startswith("https://") for u in urls), urls


def test_chunks_replicate_over_tls_and_untrusting_peers_get_nothing(cluster, tmp_path):
    first = cluster.nodes[0]
    s3 = _s3(first)
    s3.create_bucket(Bucket="replicated")
    body = os.urandom(3 * MiB + 5)
    s3.put_object(Bucket="replicated", Key="k", Body=body)
    digests = {hashlib.sha256(body[i : i + MiB]).hexdigest() for i in range(0, len(body), MiB)}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        held = [digests & {p.name for p in n.chunk_files()} for n in cluster.nodes]
        if all(h == digests for h in held):
            break
        time.sleep(0.2)
    assert all(h == digests for h in held), "a member lacks chunks of the object"
    for node in cluster.nodes[1:]:
        got = _s3(node).get_object(Bucket="replicated", Key="k")
        assert got["Body"].read() == body

    digest = bytes.fromhex(sorted(digests)[0])
    data_url = f"https://127.0.0.1:{cluster.nodes[1].data_port}"
    stranger, _ = make_cert(tmp_path, name="stranger")

    async def fetch(trusting) -> bytes:
        client = InternodeClient(
            secret=ClusterProcesses.SECRET, ssl=peer_context(cert_file=str(trusting))
        )
        try:
            return await client.get_chunk(data_url, digest)
        finally:
            await client.close()

    assert hashlib.sha256(asyncio.run(fetch(first.tls[0]))).digest() == digest
    with pytest.raises(PeerError, match="CERTIFICATE_VERIFY_FAILED"):
        asyncio.run(fetch(stranger))


def test_internode_tls_is_on_with_node_tls_unless_turned_off(tmp_path):
    cert, key = make_cert(tmp_path)
    files = {"ANODE_NODE_TLS_CERT_FILE": str(cert), "ANODE_NODE_TLS_KEY_FILE": str(key)}
    assert load_config(None, env=files).internode_tls
    assert not load_config(None, env={**files, "ANODE_NODE_INTERNODE_TLS": "false"}).internode_tls
    assert not load_config(None, env={}).internode_tls
    with pytest.raises(ConfigError, match=r"node\.internode_tls: needs"):
        load_config(None, env={"ANODE_NODE_INTERNODE_TLS": "true"})
    with pytest.raises(ConfigError, match=r"node\.tls_ca_file"):
        load_config(None, env={**files, "ANODE_NODE_TLS_CA_FILE": str(tmp_path / "missing")})
    cfg = load_config(None, env={**files, "ANODE_NODE_TLS_CA_FILE": str(cert)})
    assert cfg.peer_ca_file == str(cert)
    assert ssl.TLSVersion.TLSv1_2 <= peer_context(cert_file=str(cert)).minimum_version
