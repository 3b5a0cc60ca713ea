"""How a body arrives: Content-Encoding is the object's, Transfer-Encoding: chunked needs no length.

Raw http.client where boto3 always sends a Content-Length; signed with UNSIGNED-PAYLOAD or the
body's digest as any streaming client would.
"""

from __future__ import annotations

import gzip
import http.client
import os
import socket

import pytest
from botocore.exceptions import ClientError
from s3util import error_code, signed_headers


def _chunked_put(node, path: str, pieces: list[bytes], *, finish: bool = True) -> int | None:
    """PUT `pieces` as HTTP/1.1 chunks with no Content-Length; `finish` False cuts the
    connection before the last chunk (the status then is None)."""
    headers = signed_headers(node, "PUT", path,
                             headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
    headers.pop("Content-Length", None)
    conn = http.client.HTTPConnection("127.0.0.1", node.s3_port, timeout=30)
    conn.putrequest("PUT", path, skip_accept_encoding=True)
    for name, value in headers.items():
        if name.lower() != "host":
            conn.putheader(name, value)
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    for piece in pieces:
        conn.send(b"%x\r\n" % len(piece) + piece + b"\r\n")
    if not finish:
        conn.sock.shutdown(socket.SHUT_RDWR)
        conn.close()
        return None
    conn.send(b"0\r\n\r\n")
    response = conn.getresponse()
    response.read()
    conn.close()
    return response.status


def test_gzip_content_encoding_is_stored_and_returned_as_sent(s3, bucket):
    body = gzip.compress(os.urandom(2000) + b"z" * 50_000)
    s3.put_object(Bucket=bucket, Key="site.js", Body=body, ContentEncoding="gzip")
    got = s3.get_object(Bucket=bucket, Key="site.js")
    assert got["Body"].read() == body and got["ContentEncoding"] == "gzip"


def test_several_content_encodings_come_back_exactly_minus_aws_chunked(s3, bucket):
    s3.put_object(Bucket=bucket, Key="e", Body=b"x", ContentEncoding="deflate, gzip")
    assert s3.head_object(Bucket=bucket, Key="e")["ContentEncoding"] == "deflate, gzip"


@pytest.mark.parametrize("size", [0, 1, 40_000, 5 * 1024 * 1024 + 3])
def test_chunked_put_without_content_length(node, s3, bucket, size):
    body = os.urandom(size)
    pieces = [body[i:i + 65536] for i in range(0, size, 65536)]
    assert _chunked_put(node, f"/{bucket}/streamed-{size}", pieces) == 200
    assert s3.get_object(Bucket=bucket, Key=f"streamed-{size}")["Body"].read() == body


def test_a_cut_chunked_put_stores_nothing(node, s3, bucket):
    s3.put_object(Bucket=bucket, Key="keep", Body=b"the old version")
    _chunked_put(node, f"/{bucket}/keep", [os.urandom(100_000)] * 3, finish=False)
    _chunked_put(node, f"/{bucket}/never", [os.urandom(100_000)] * 3, finish=False)
    assert s3.get_object(Bucket=bucket, Key="keep")["Body"].read() == b"the old version"
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="never")
    assert error_code(exc)[1] == 404
