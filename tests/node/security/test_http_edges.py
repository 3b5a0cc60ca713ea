"""Requests that are malformed or contradictory get a clear answer and cost one log line.

- `Range` together with `partNumber`: 400 InvalidRequest, as AWS (not the whole part as 206).
- HTTP that cannot be parsed (bad header, bad Content-Length, bad chunk size): anyone can send
  it, so the node logs one INFO line, not an ERROR with the parser's traceback.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from anode_procs import NodeProcess
from botocore.exceptions import ClientError
from s3util import error_code


def test_range_with_part_number_is_invalid_request(s3, bucket):
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    parts = []
    for number, fill in ((1, b"a"), (2, b"b")):
        etag = s3.upload_part(
            Bucket=bucket,
            Key="mp",
            UploadId=upload,
            PartNumber=number,
            Body=fill * (5 * 1024 * 1024 if number == 1 else 10),
        )["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=upload, MultipartUpload={"Parts": parts}
    )
    for call in (s3.get_object, s3.head_object):
        with pytest.raises(ClientError) as exc:
            call(Bucket=bucket, Key="mp", PartNumber=2, Range="bytes=0-1")
        assert error_code(exc)[1] == 400
        if call is s3.get_object:
            assert error_code(exc)[0] == "InvalidRequest"
            assert "partNumber" in exc.value.response["Error"]["Message"]
    got = s3.get_object(Bucket=bucket, Key="mp", PartNumber=2)
    assert got["Body"].read() == b"b" * 10 and got["PartsCount"] == 2
    assert s3.get_object(Bucket=bucket, Key="mp", Range="bytes=0-1")["Body"].read() == b"aa"


MALFORMED = [
    b"GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nX: \x01\r\n\r\n",
    b"PUT /b/k HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
]


def _send(port: int, raw: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        sock.shutdown(socket.SHUT_WR)
        try:
            while sock.recv(65536):
                pass
        except OSError:
            pass  # the server may reset a connection it refused


def test_malformed_http_is_one_info_line(tmp_path: Path):
    proc = NodeProcess(tmp_path / "data").start()
    log = tmp_path / "data.log"
    try:
        for raw in MALFORMED:
            _send(proc.s3_port, raw)
        deadline = time.monotonic() + 30
        while log.read_text().count("malformed HTTP request from") < len(MALFORMED):
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.1)
        assert proc.client().list_buckets()["Buckets"] == []  # still serving
    finally:
        proc.stop()
    text = log.read_text()
    assert "Traceback" not in text and " ERROR " not in text, text[-3000:]
    lines = [line for line in text.splitlines() if "malformed HTTP request from" in line]
    assert all(" INFO aiohttp.server " in line for line in lines), lines
