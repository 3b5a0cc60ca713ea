"""Small helpers shared by the node tests (imported as a plain module by pytest's rootdir path)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = exc.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def signed_headers(node, method: str, path: str, *, body: bytes = b"", headers=None,
                   payload_hash: str | None = None) -> dict[str, str]:
    """Headers of a SigV4-signed request (botocore's signer), for hand-made requests."""
    import hashlib

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    headers = dict(headers or {})
    headers.setdefault("x-amz-content-sha256", payload_hash or hashlib.sha256(body).hexdigest())
    request = AWSRequest(method=method, url=node.s3_url + path, data=body, headers=headers)
    # SigV4Auth (not S3SigV4Auth) signs whatever x-amz-content-sha256 we put, so tests can lie
    SigV4Auth(Credentials(node.access_key, node.secret_key), "s3", "us-east-1").add_auth(request)
    return dict(request.headers.items())


def raw_request(node, method: str, path: str, *, body: bytes = b"", headers=None,
                send_body: bytes | None = None, timeout: float = 10,
                half_close: bool = False) -> tuple[int, bytes]:
    """Send a signed request over a plain socket; `send_body` may differ from what was signed
    (e.g. truncated, then `half_close`). Returns (status, response body)."""
    import socket

    all_headers = signed_headers(node, method, path, body=body, headers=headers)
    payload = body if send_body is None else send_body
    all_headers.setdefault("Content-Length", str(len(body)))
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{node.s3_port}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in all_headers.items() if k.lower() != "host"]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", node.s3_port), timeout=timeout) as sock:
        sock.sendall(head + payload)
        if half_close:  # the body ends early: tell the server nothing more is coming
            sock.shutdown(socket.SHUT_WR)
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    if not response:
        return 0, b""  # the server closed without answering (e.g. the client hung up)
    status_line, _, rest = response.partition(b"\r\n")
    _, _, response_body = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), response_body


def caught_up(node, bucket: str) -> None:
    """Every member has applied what was committed. PutObject skips the read barrier, so the
    bucket settings it is admitted under may be milliseconds old on a follower (README,
    "Cluster"); any other request, such as this HeadBucket on each member, passes one first."""
    members = getattr(getattr(node, "cluster", None), "nodes", None) or [node]
    for member in members:
        member.client().head_bucket(Bucket=bucket)
