"""Verified request bodies: plain (Content-Length, optional x-amz-content-sha256) and aws-chunked.

`sigv4.authenticate` checks the request line and headers; this module checks the body as it
streams, using the `AuthContext` it returned: chunk signatures chained from the seed signature,
the trailer signature, declared lengths and the whole-body SHA-256. Handlers read decoded
payload with `read_chunk()` until b"" and must discard what they stored if it raises; only
then are `trailers` (e.g. `x-amz-checksum-crc32`) complete, for `checksums` to compare.
Memory stays bounded: at most one aws-chunked chunk (capped) or one 1 MiB piece is held.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Mapping

from aiohttp import StreamReader
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong

from anode.s3 import sigv4
from anode.s3.errors import ErrorCode, S3Error

PIECE_SIZE = 1 << 20  # what read_chunk hands out at most, where the framing allows
MAX_CHUNK_SIZE = 16 << 20  # largest aws-chunked chunk we hold (and verify) in memory
MIN_SIGNED_CHUNK_SIZE = 8192  # S3's minimum for every signed chunk but the last
MAX_LINE = 4096  # a chunk header or trailer line; real ones are < 200 bytes
MAX_TRAILERS = 16

# What aiohttp raises when the client goes away or the framing under us is cut short.
_TRUNCATED = (asyncio.IncompleteReadError, ConnectionError, HttpProcessingError, ValueError)


def _incomplete(message: str = "The request body terminated unexpectedly") -> S3Error:
    return S3Error(ErrorCode.IncompleteBody, message)


def _malformed(message: str) -> S3Error:
    return S3Error(ErrorCode.InvalidRequest, message)


class AwsChunkedReader:
    """Decodes (and for signed modes verifies) an `aws-chunked` body.

    Framing: `<hex size>[;chunk-signature=<sig>]\\r\\n<data>\\r\\n` repeated, a zero-size chunk,
    then either `\\r\\n` or trailer lines (`name:value\\r\\n`, for signed trailers ending with
    `x-amz-trailer-signature:<sig>\\r\\n`) and a final `\\r\\n`.
    """

    def __init__(
        self, stream: StreamReader, auth: sigv4.AuthContext, *, decoded_length: int | None
    ) -> None:
        self.trailers: dict[str, str] = {}
        self._stream = stream
        self._auth = auth
        self._decoded_length = decoded_length
        self._total = 0
        self._previous_signature = auth.seed_signature
        self._left_in_chunk = 0  # unsigned chunks are handed out in pieces
        self._last_chunk_was_short = False
        self._done = False

    async def read_chunk(self) -> bytes:
        if self._done:
            return b""
        try:
            return await self._read_chunk()
        except LineTooLong as exc:
            raise _malformed("Chunk header or trailer line too long") from exc
        except _TRUNCATED as exc:
            raise _incomplete() from exc

    async def _read_chunk(self) -> bytes:
        if self._left_in_chunk:
            return await self._read_piece()
        while True:
            size, signature = await self._read_chunk_header()
            if size == 0:
                self._verify_chunk(signature, b"")
                await self._read_trailers()
                self._finish()
                return b""
            self._count(size)
            if self._auth.signed_chunks:
                data = await self._stream.readexactly(size)
                self._verify_chunk(signature, data)
                await self._read_crlf()
                return data
            self._left_in_chunk = size
            return await self._read_piece()

    async def _read_piece(self) -> bytes:
        data = await self._stream.readexactly(min(self._left_in_chunk, PIECE_SIZE))
        self._left_in_chunk -= len(data)
        if not self._left_in_chunk:
            await self._read_crlf()
        return data

    async def _read_line(self) -> bytes:
        line = await self._stream.readuntil(b"\r\n", max_size=MAX_LINE)
        if not line.endswith(b"\r\n"):
            raise _incomplete()
        return line[:-2]

    async def _read_crlf(self) -> None:
        if await self._stream.readexactly(2) != b"\r\n":
            raise _malformed("Chunk data is not followed by CRLF")

    async def _read_chunk_header(self) -> tuple[int, str | None]:
        line = await self._read_line()
        size_field, _, extensions = line.partition(b";")
        size = _parse_size(size_field)
        signature = None
        if extensions.startswith(b"chunk-signature="):
            signature = extensions[len(b"chunk-signature=") :].decode("ascii", "replace")
        if self._auth.signed_chunks:
            if signature is None:
                raise _malformed("Missing chunk-signature")
            if size and self._last_chunk_was_short:
                raise S3Error(ErrorCode.InvalidChunkSizeError)
            self._last_chunk_was_short = size < MIN_SIGNED_CHUNK_SIZE
        return size, signature

    def _count(self, size: int) -> None:
        if size > MAX_CHUNK_SIZE:
            raise _malformed(f"Chunk size {size} exceeds the maximum of {MAX_CHUNK_SIZE}")
        self._total += size
        if self._decoded_length is not None and self._total > self._decoded_length:
            raise _incomplete("The body is longer than x-amz-decoded-content-length")

    def _verify_chunk(self, signature: str | None, data: bytes) -> None:
        if not self._auth.signed_chunks:
            return
        expected = self._sign(
            "AWS4-HMAC-SHA256-PAYLOAD", sigv4.EMPTY_SHA256, hashlib.sha256(data).hexdigest()
        )
        if signature is None or not sigv4.signatures_equal(expected, signature):
            raise S3Error(ErrorCode.SignatureDoesNotMatch, "Chunk signature does not match")
        self._previous_signature = expected

    def _sign(self, kind: str, *hashes: str) -> str:
        auth = self._auth
        string_to_sign = "\n".join(
            (kind, auth.amz_date, auth.scope, self._previous_signature, *hashes)
        )
        return hmac.new(auth.signing_key, string_to_sign.encode(), hashlib.sha256).hexdigest()

    async def _read_trailers(self) -> None:
        """Trailer lines up to the blank line (tolerating EOF in its place)."""
        canonical = []
        signature = None
        while True:
            line = await self._stream.readuntil(b"\r\n", max_size=MAX_LINE)
            if line in (b"", b"\r\n"):
                break
            if not line.endswith(b"\r\n"):
                raise _incomplete()
            name, colon, value = line[:-2].decode("utf-8", "replace").partition(":")
            name, value = name.strip().lower(), value.strip()
            if not colon or not name:
                raise _malformed(f"Malformed trailer line {line[:100]!r}")
            if name == "x-amz-trailer-signature":
                signature = value
                continue
            if len(self.trailers) >= MAX_TRAILERS:
                raise _malformed("Too many trailing headers")
            self.trailers[name] = value
            canonical.append(f"{name}:{value}\n")
        self._verify_trailers(canonical, signature)
        if await self._stream.read(1):
            raise _malformed("Data after the end of the aws-chunked body")

    def _verify_trailers(self, canonical: list[str], signature: str | None) -> None:
        if not self._auth.signed_chunks:
            return
        if not self._auth.trailer:
            if self.trailers or signature is not None:
                raise _malformed("Trailing headers sent without a trailer payload mode")
            return
        trailer_hash = hashlib.sha256("".join(canonical).encode()).hexdigest()
        expected = self._sign("AWS4-HMAC-SHA256-TRAILER", trailer_hash)
        if signature is None or not sigv4.signatures_equal(expected, signature):
            raise S3Error(ErrorCode.SignatureDoesNotMatch, "Trailer signature does not match")

    def _finish(self) -> None:
        if self._decoded_length is not None and self._total != self._decoded_length:
            raise _incomplete(
                f"Received {self._total} bytes, x-amz-decoded-content-length says "
                f"{self._decoded_length}"
            )
        self._done = True


def _parse_size(field: bytes) -> int:
    text = field.strip()
    if not text or len(text) > 16 or any(c not in b"0123456789abcdefABCDEF" for c in text):
        raise _malformed(f"Malformed chunk size {field[:32]!r}")
    return int(text, 16)


class PlainBodyReader:
    """A body sent as is: checks its declared length and, when signed, its SHA-256."""

    def __init__(
        self,
        stream: StreamReader,
        auth: sigv4.AuthContext | None,
        *,
        content_length: int | None,
    ) -> None:
        self.trailers: dict[str, str] = {}
        self._stream = stream
        self._content_length = content_length
        self._total = 0
        self._expected_sha256 = None
        self._sha256 = None
        if auth is not None and len(auth.payload_sha256) == 64:
            self._expected_sha256 = auth.payload_sha256.lower()
            self._sha256 = hashlib.sha256()
        self._done = False

    async def read_chunk(self) -> bytes:
        if self._done:
            return b""
        try:
            data = await self._stream.read(PIECE_SIZE)
        except _TRUNCATED as exc:
            raise _incomplete() from exc
        if not data:
            self._finish()
            return b""
        self._total += len(data)
        if self._content_length is not None and self._total > self._content_length:
            raise _incomplete("The body is longer than Content-Length")
        if self._sha256 is not None:
            self._sha256.update(data)
        return data

    def _finish(self) -> None:
        if self._content_length is not None and self._total != self._content_length:
            raise _incomplete()
        if self._sha256 is not None and self._sha256.hexdigest() != self._expected_sha256:
            raise S3Error(
                ErrorCode.XAmzContentSHA256Mismatch,
                ClientComputedContentSHA256=self._expected_sha256 or "",
                S3ComputedContentSHA256=self._sha256.hexdigest(),
            )
        self._done = True


def body_reader(
    stream: StreamReader, auth: sigv4.AuthContext | None, headers: Mapping[str, str]
) -> AwsChunkedReader | PlainBodyReader:
    """The right verifying reader for a request's body.

    aws-chunked when Content-Encoding lists it or the payload mode is STREAMING-*. Anonymous
    requests get an unsigned context, so their x-amz-content-sha256 and trailers still count.
    """
    if auth is None:
        auth = sigv4.unsigned_context(headers.get("x-amz-content-sha256", sigv4.UNSIGNED_PAYLOAD))
    encodings = [e.strip().lower() for e in headers.get("Content-Encoding", "").split(",")]
    if auth.streaming or "aws-chunked" in encodings:
        if len(auth.payload_sha256) == 64:
            raise _malformed("An aws-chunked body needs a STREAMING-* x-amz-content-sha256")
        return AwsChunkedReader(
            stream, auth, decoded_length=_length_header(headers, "x-amz-decoded-content-length")
        )
    return PlainBodyReader(stream, auth, content_length=_length_header(headers, "Content-Length"))


def _length_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    if not value.strip().isdigit():
        raise S3Error(ErrorCode.InvalidArgument, f"Invalid {name} {value[:32]!r}",
                      ArgumentName=name, ArgumentValue=value[:64])
    return int(value)
