"""Wire behaviour real clients rely on: Expect: 100-continue and signed aws-chunked uploads."""

from __future__ import annotations

import hashlib
import hmac
import os
import socket

import pytest
from s3util import signed_headers

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def send_head(node, method: str, path: str, headers: dict[str, str]) -> socket.socket:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{node.s3_port}"]
    lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() != "host"]
    sock = socket.create_connection(("127.0.0.1", node.s3_port), timeout=10)
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return sock


def read_response_head(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def read_response(sock: socket.socket) -> tuple[int, bytes]:
    """(status, body) of one response with a Content-Length."""
    data = read_response_head(sock)
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(head.split()[1]), body


def test_expect_100_continue_then_body(node, s3, bucket):
    body = os.urandom(200_000)
    headers = signed_headers(node, "PUT", f"/{bucket}/expect", body=body,
                             headers={"Expect": "100-continue"})
    headers["Content-Length"] = str(len(body))
    with send_head(node, "PUT", f"/{bucket}/expect", headers) as sock:
        interim = read_response_head(sock)
        assert interim.startswith(b"HTTP/1.1 100")
        sock.sendall(body)
        final = read_response_head(sock)
        assert final.startswith(b"HTTP/1.1 200")
    assert s3.get_object(Bucket=bucket, Key="expect")["Body"].read() == body


def test_expect_100_continue_refused_before_the_body_is_sent(node, s3, bucket):
    body = os.urandom(1000)
    headers = signed_headers(node, "PUT", f"/{bucket}/refused", body=body,
                             headers={"Expect": "100-continue"})
    headers["Content-Length"] = str(len(body))
    headers["Authorization"] = headers["Authorization"][:-4] + "0000"
    with send_head(node, "PUT", f"/{bucket}/refused", headers) as sock:
        status, answer = read_response(sock)  # answered before we send a single body byte
    assert status == 403 and b"SignatureDoesNotMatch" in answer


@pytest.mark.parametrize(("path", "status", "code"), [
    ("/{bucket}/anonymous", 403, b"AccessDenied"),  # a private bucket, no signature
    ("/no-such-bucket-for-expect/k", 404, b"NoSuchBucket"),
])
def test_expect_100_continue_refused_when_the_upload_may_not_happen(node, bucket, path, status,
                                                                    code):
    headers = {"Expect": "100-continue", "Content-Length": "1000"}
    with send_head(node, "PUT", path.format(bucket=bucket), headers) as sock:
        got, answer = read_response(sock)  # no 100 Continue: the answer comes first
    assert got == status and code in answer


def signing_key(secret: str, date: str) -> bytes:
    key = f"AWS4{secret}".encode()
    for part in (date, "us-east-1", "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def signed_chunked(node, path: str, payload: bytes, chunk_size: int, *,
                   tamper: bool = False) -> tuple[dict[str, str], bytes]:
    """A STREAMING-AWS4-HMAC-SHA256-PAYLOAD request as the Java/Go SDKs send it."""
    pieces = [payload[i:i + chunk_size] for i in range(0, len(payload), chunk_size)] + [b""]
    framed_length = sum(len(f"{len(p):x};chunk-signature={'0' * 64}\r\n") + len(p) + 2
                        for p in pieces)
    headers = signed_headers(node, "PUT", path, headers={
        "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(len(payload)),
        "Content-Length": str(framed_length)})
    amz_date = headers["X-Amz-Date"]
    scope = f"{amz_date[:8]}/us-east-1/s3/aws4_request"
    previous = headers["Authorization"].rsplit("Signature=", 1)[1]
    key = signing_key(node.secret_key, amz_date[:8])
    body = b""
    for piece in pieces:
        to_sign = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, previous, EMPTY_SHA256,
                             hashlib.sha256(piece).hexdigest()])
        previous = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        data = piece[:-1] + b"?" if tamper and len(piece) > 0 else piece
        body += f"{len(piece):x};chunk-signature={previous}\r\n".encode() + data + b"\r\n"
    return headers, body


@pytest.mark.parametrize("size", [0, 100, 64 * 1024 + 3])
def test_signed_aws_chunked_upload(node, s3, bucket, size):
    payload = os.urandom(size)
    headers, body = signed_chunked(node, f"/{bucket}/chunked", payload, 16 * 1024)
    with send_head(node, "PUT", f"/{bucket}/chunked", headers) as sock:
        sock.sendall(body)
        assert read_response_head(sock).startswith(b"HTTP/1.1 200")
    got = s3.get_object(Bucket=bucket, Key="chunked")
    assert got["Body"].read() == payload
    assert "ContentEncoding" not in got  # aws-chunked is framing, not the object's encoding


def test_signed_aws_chunked_upload_with_a_forged_chunk_is_refused(node, s3, bucket):
    headers, body = signed_chunked(node, f"/{bucket}/forged", os.urandom(40_000), 16 * 1024,
                                   tamper=True)
    with send_head(node, "PUT", f"/{bucket}/forged", headers) as sock:
        sock.sendall(body)
        status, answer = read_response(sock)
    assert status == 403 and b"SignatureDoesNotMatch" in answer
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
