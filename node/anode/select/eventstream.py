"""Encoder for the AWS binary event stream that carries SelectObjectContent results.

Each message: 4-byte total length, 4-byte headers length, CRC32 of those 8 bytes, headers
(name, type 7 = string, value), payload, then CRC32 of everything before it. This is what
botocore's ``EventStreamBuffer`` decodes for ``select_object_content``.
"""

from __future__ import annotations

import struct
import zlib

_STRING_TYPE = 7
MAX_RECORDS_PAYLOAD = 1 << 20  # split Records events above 1 MiB of payload


def encode_message(headers: dict[str, str], payload: bytes = b"") -> bytes:
    encoded_headers = b"".join(_header(name, value) for name, value in headers.items())
    total = 12 + len(encoded_headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(encoded_headers))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    body = prelude + encoded_headers + payload
    return body + struct.pack(">I", zlib.crc32(body))


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return (
        struct.pack(">B", len(raw_name))
        + raw_name
        + struct.pack(">BH", _STRING_TYPE, len(raw_value))
        + raw_value
    )


def records_event(payload: bytes) -> bytes:
    return encode_message(
        {
            ":event-type": "Records",
            ":content-type": "application/octet-stream",
            ":message-type": "event",
        },
        payload,
    )


def continuation_event() -> bytes:
    """Cont: a keep-alive sent while a long scan has no records to report yet."""
    return encode_message({":event-type": "Cont", ":message-type": "event"})


def _stats_xml(tag: str, scanned: int, processed: int, returned: int) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><{tag}>'
        f"<BytesScanned>{scanned}</BytesScanned>"
        f"<BytesProcessed>{processed}</BytesProcessed>"
        f"<BytesReturned>{returned}</BytesReturned></{tag}>"
    ).encode()


def progress_event(scanned: int, processed: int, returned: int) -> bytes:
    return encode_message(
        {":event-type": "Progress", ":content-type": "text/xml", ":message-type": "event"},
        _stats_xml("Progress", scanned, processed, returned),
    )


def stats_event(scanned: int, processed: int, returned: int) -> bytes:
    return encode_message(
        {":event-type": "Stats", ":content-type": "text/xml", ":message-type": "event"},
        _stats_xml("Stats", scanned, processed, returned),
    )


def end_event() -> bytes:
    return encode_message({":event-type": "End", ":message-type": "event"})


def error_event(code: str, message: str) -> bytes:
    return encode_message(
        {":error-code": code, ":error-message": message, ":message-type": "error"}
    )
