"""Slow, silent and idle clients on the node's HTTP listeners (issue 12, item 5).

Before: slow request heads, a PUT that declared 5 GB and sent nothing, and idle sockets all
stayed open (aiohttp's only timer, keep-alive, defaulted to an hour), and with a low descriptor
limit idle sockets made authenticated requests fail. A node here runs with short timeouts
(configured through the environment) and a low descriptor limit; all traffic goes to 127.0.0.1
and every wait is bounded.
"""

from __future__ import annotations

import resource
import socket
import time

import pytest
from anode_procs import NodeProcess
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

HEADER, BODY, IDLE = 2.0, 2.0, 5.0
FD_LIMIT = 256  # the S3 port then keeps at most (256 - 128) / 2 = 64 connections
GRACE = 6.0  # the node checks every half second; the machine may be busy


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    env = {
        "ANODE_NODE_HEADER_TIMEOUT": f"{HEADER}s",
        "ANODE_NODE_BODY_TIMEOUT": f"{BODY}s",
        "ANODE_NODE_IDLE_TIMEOUT": f"{IDLE}s",
    }
    proc = NodeProcess(tmp_path_factory.mktemp("timeouts") / "n", env=env)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(FD_LIMIT, hard), hard))
    try:  # the node inherits the limit
        proc.start(wait=False)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    proc.wait_ready()
    proc.client().create_bucket(Bucket="slow")
    yield proc
    proc.stop()


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def _closed(sock: socket.socket, within: float) -> tuple[bool, bytes]:
    """(closed by the node within `within` s, what it sent before closing)."""
    sock.settimeout(min(0.2, within))
    received = b""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except TimeoutError:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return True, received
        if not data:
            return True, received
        received += data
    return False, received


def test_a_request_head_sent_slowly_is_cut_off(node):
    socks = [_connect(node.s3_port) for _ in range(5)]
    start = time.monotonic()
    for s in socks:
        s.sendall(b"GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    closed = []
    while time.monotonic() - start < HEADER + GRACE and len(closed) < len(socks):
        for s in socks:  # a header byte every 0.3 s: the connection is never silent
            if s in closed:
                continue
            try:
                s.sendall(b"X")
            except OSError:
                closed.append(s)
        time.sleep(0.3)
    for s in socks:
        s.close()
    assert len(closed) == len(socks), "a slow request head kept its connection"


def test_idle_connections_are_closed_on_every_port(node):
    socks = [_connect(port) for port in (node.s3_port, node.admin_port) for _ in range(3)]
    try:
        assert all(_closed(s, IDLE + GRACE)[0] for s in socks)
    finally:
        for s in socks:
            s.close()


def _signed_head(node: NodeProcess, method: str, key: str, headers: dict[str, str]) -> bytes:
    url = f"{node.s3_url}/slow/{key}"
    headers = {"x-amz-content-sha256": "UNSIGNED-PAYLOAD", **headers}
    request = AWSRequest(method=method, url=url, headers=headers)
    S3SigV4Auth(Credentials(node.access_key, node.secret_key), "s3", "us-east-1").add_auth(request)
    lines = [f"{method} /slow/{key} HTTP/1.1", f"Host: 127.0.0.1:{node.s3_port}"]
    lines += [f"{k}: {v}" for k, v in request.headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_a_body_that_stops_coming_is_answered_request_timeout(node):
    with _connect(node.s3_port) as s:
        s.sendall(_signed_head(node, "PUT", "big", {"Content-Length": "5000000000"}) + b"x" * 1000)
        closed, answer = _closed(s, BODY + GRACE)
    assert closed, "a PUT that stopped sending kept its connection"
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert b"<Code>RequestTimeout</Code>" in answer
    s3 = node.client()
    assert s3.list_objects_v2(Bucket="slow").get("KeyCount") == 0  # nothing partial stored
    s3.put_object(Bucket="slow", Key="after", Body=b"fine")  # the node is well


def test_a_client_that_stops_reading_a_response_is_cut_off(node):
    size = 32 << 20  # far more than the socket buffers on both ends hold
    node.client().put_object(Bucket="slow", Key="large", Body=b"y" * size)
    with _connect(node.s3_port) as s:
        s.sendall(_signed_head(node, "GET", "large", {}))
        time.sleep(BODY + GRACE)  # reading nothing
        received, deadline = 0, time.monotonic() + 30
        s.settimeout(1)
        while received < size and time.monotonic() < deadline:
            try:
                data = s.recv(1 << 20)
            except TimeoutError:
                continue
            except ConnectionResetError:
                break
            if not data:
                break
            received += len(data)
    assert received < size, "the node kept a connection whose client stopped reading"
    assert node.client().head_object(Bucket="slow", Key="large")["ContentLength"] == size


def test_idle_sockets_beyond_the_limit_do_not_lock_clients_out(node):
    """More idle sockets than the descriptor limit allows: before, requests then failed."""
    socks = []
    try:
        start = time.monotonic()
        for _ in range(FD_LIMIT):
            try:
                socks.append(_connect(node.s3_port))
            except OSError:
                break
        socks += [_connect(node.admin_port) for _ in range(10)]
        first = socks[: FD_LIMIT // 2]
        evicted = sum(_closed(s, 0.02)[0] for s in first)
        assert time.monotonic() - start < IDLE, "too slow to tell eviction from idle timeout"
        assert evicted >= len(first) - FD_LIMIT // 4, "idle sockets beyond the limit were kept"
        s3 = node.client()
        for i in range(5):
            s3.put_object(Bucket="slow", Key=f"k{i}", Body=b"hello")
            assert s3.get_object(Bucket="slow", Key=f"k{i}")["Body"].read() == b"hello"
        status, _ = node.admin("/status")
        assert status == 200
    finally:
        for s in socks:
            s.close()
