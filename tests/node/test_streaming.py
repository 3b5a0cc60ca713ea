"""`anode.s3.streaming`: aws-chunked and plain bodies, verified as they stream.

Bodies go through a real `aiohttp.StreamReader` (fed in small slices, as a socket would), and
once end to end through a real aiohttp server on 127.0.0.1 with boto3 as the client. The signed
example is the AWS documentation's ("Transferring Payload in Multiple Chunks", Example: PUT
Object), whose signatures are published; the trailer bodies are botocore's own encoder's.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import boto3
import pytest
from aiohttp import StreamReader, web
from aiohttp.base_protocol import BaseProtocol
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.httpchecksum import AwsChunkedWrapper, Crc32Checksum
from multidict import CIMultiDict

from anode.s3 import sigv4
from anode.s3.checksums import Checksummer, requested_algorithm
from anode.s3.errors import ErrorCode, S3Error
from anode.s3.streaming import AwsChunkedReader, PlainBodyReader, body_reader

# ---- the AWS documentation example --------------------------------------------------------

DOC_ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
DOC_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
DOC_HEADERS = {
    "Host": "s3.amazonaws.com",
    "x-amz-date": "20130524T000000Z",
    "x-amz-storage-class": "REDUCED_REDUNDANCY",
    "Authorization": "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
    "aws4_request,SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;"
    "x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,"
    "Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
    "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
    "Content-Encoding": "aws-chunked",
    "x-amz-decoded-content-length": "66560",
    "Content-Length": "66824",
}
DOC_CHUNK_SIGNATURES = (
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
)
DOC_PAYLOAD = b"a" * 66560


def doc_body(signatures: tuple[str, ...] = DOC_CHUNK_SIGNATURES) -> bytes:
    return (
        f"10000;chunk-signature={signatures[0]}\r\n".encode() + b"a" * 65536 + b"\r\n"
        + f"400;chunk-signature={signatures[1]}\r\n".encode() + b"a" * 1024 + b"\r\n"
        + f"0;chunk-signature={signatures[2]}\r\n\r\n".encode()
    )


def doc_auth(**header_changes: str) -> tuple[sigv4.AuthContext, CIMultiDict[str]]:
    headers = CIMultiDict({**DOC_HEADERS, **header_changes})
    auth = sigv4.authenticate(
        method="PUT", raw_path="/examplebucket/chunkObject.txt", raw_query="", headers=headers,
        lookup={DOC_ACCESS_KEY: DOC_SECRET}.get, now=datetime(2013, 5, 24, 0, 5, tzinfo=UTC),
    )
    assert auth is not None
    return auth, headers


# ---- feeding bodies through a real StreamReader ---------------------------------------------


class _SocketlessTransport(asyncio.Transport):
    """Stands in for the socket under aiohttp's protocol: flow control has nothing to pause."""

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


_feeders: set[asyncio.Task[None]] = set()  # strong references while they run


async def _stream(body: bytes, *, slice_size: int, truncate_at: int | None) -> StreamReader:
    loop = asyncio.get_running_loop()
    protocol = BaseProtocol(loop)
    protocol.transport = _SocketlessTransport()
    stream = StreamReader(protocol, 2**16, loop=loop)

    async def feed() -> None:
        end = len(body) if truncate_at is None else truncate_at
        for start in range(0, end, slice_size):
            stream.feed_data(body[start : min(start + slice_size, end)])
            await asyncio.sleep(0)
        stream.feed_eof()

    task = asyncio.ensure_future(feed())
    _feeders.add(task)
    task.add_done_callback(_feeders.discard)
    return stream


def read_all(
    body: bytes,
    headers: CIMultiDict[str],
    auth: sigv4.AuthContext | None,
    *,
    slice_size: int = 1000,
    truncate_at: int | None = None,
) -> tuple[bytes, dict[str, str], list[int]]:
    """Decoded payload, trailers and the size of each piece `read_chunk` returned."""

    async def run() -> tuple[bytes, dict[str, str], list[int]]:
        stream = await _stream(body, slice_size=slice_size, truncate_at=truncate_at)
        reader = body_reader(stream, auth, headers)
        pieces = []
        while piece := await reader.read_chunk():
            pieces.append(piece)
        assert await reader.read_chunk() == b""
        return b"".join(pieces), reader.trailers, [len(p) for p in pieces]

    return asyncio.run(run())


def assert_refused(code: ErrorCode, *args: object, **kwargs: object) -> S3Error:
    with pytest.raises(S3Error) as err:
        read_all(*args, **kwargs)  # type: ignore[arg-type]
    assert err.value.code is code, err.value.message
    return err.value


# ---- signed chunks (the documentation example) ---------------------------------------------


def test_doc_example_seed_signature_is_accepted_with_streaming_context() -> None:
    auth, _ = doc_auth()
    assert auth.streaming and auth.signed_chunks and not auth.trailer
    assert auth.seed_signature == DOC_HEADERS["Authorization"].rsplit("=", 1)[1]


@pytest.mark.parametrize("slice_size", [1, 997, 70000])
def test_doc_example_chunks_verify_and_decode(slice_size: int) -> None:
    auth, headers = doc_auth()
    body = doc_body()
    assert len(body) == int(DOC_HEADERS["Content-Length"])
    payload, trailers, pieces = read_all(body, headers, auth, slice_size=slice_size)
    assert payload == DOC_PAYLOAD
    assert trailers == {}
    assert pieces == [65536, 1024]  # each signed chunk is verified whole before it is returned


def test_doc_example_without_final_crlf_is_accepted() -> None:
    auth, headers = doc_auth()
    assert read_all(doc_body()[:-2], headers, auth)[0] == DOC_PAYLOAD


@pytest.mark.parametrize("index", [0, 1, 2])
def test_doc_example_bad_chunk_signature_is_refused(index: int) -> None:
    auth, headers = doc_auth()
    signatures = list(DOC_CHUNK_SIGNATURES)
    signatures[index] = signatures[index][::-1]
    assert_refused(ErrorCode.SignatureDoesNotMatch, doc_body(tuple(signatures)), headers, auth)


def test_doc_example_tampered_chunk_data_is_refused() -> None:
    auth, headers = doc_auth()
    body = bytearray(doc_body())
    body[5000] = ord("b")
    assert_refused(ErrorCode.SignatureDoesNotMatch, bytes(body), headers, auth)


def test_doc_example_chunks_do_not_verify_against_another_seed() -> None:
    auth, headers = doc_auth()
    other = sigv4.AuthContext(**{**auth.__dict__, "seed_signature": "0" * 64})
    assert_refused(ErrorCode.SignatureDoesNotMatch, doc_body(), headers, other)


@pytest.mark.parametrize("cut", [10, 100, 65600, 66000, len(doc_body()) - 40])
def test_doc_example_truncated_is_incomplete_body(cut: int) -> None:
    auth, headers = doc_auth()
    assert_refused(ErrorCode.IncompleteBody, doc_body(), headers, auth, truncate_at=cut)


@pytest.mark.parametrize("declared", ["66559", "66561", "0"])
def test_wrong_decoded_content_length_is_incomplete_body(declared: str) -> None:
    auth, headers = doc_auth()
    headers["x-amz-decoded-content-length"] = declared  # as if signed that way
    assert_refused(ErrorCode.IncompleteBody, doc_body(), headers, auth)


# ---- signed chunks with a signed trailer (independent test signer) ---------------------------

AMZ_DATE = "20240102T030405Z"
SCOPE = "20240102/us-east-1/s3/aws4_request"
KEY = sigv4.signing_key("secret", "20240102", "us-east-1", "s3")
SEED = "a" * 64


def _hmac_hex(string_to_sign: str) -> str:
    return hmac.new(KEY, string_to_sign.encode(), hashlib.sha256).hexdigest()


def signed_body(chunks: list[bytes], trailers: list[tuple[str, str]] | None) -> bytes:
    """Per the AWS docs: each chunk signs the previous signature; the trailer signs the last."""
    out, previous = [], SEED
    for data in [*chunks, b""]:
        previous = _hmac_hex("\n".join(("AWS4-HMAC-SHA256-PAYLOAD", AMZ_DATE, SCOPE, previous,
                                        sigv4.EMPTY_SHA256, hashlib.sha256(data).hexdigest())))
        out.append(f"{len(data):x};chunk-signature={previous}\r\n".encode() + data)
        if data:
            out.append(b"\r\n")
    if trailers is not None:
        canonical = "".join(f"{n}:{v}\n" for n, v in trailers)
        signature = _hmac_hex("\n".join(("AWS4-HMAC-SHA256-TRAILER", AMZ_DATE, SCOPE, previous,
                                         hashlib.sha256(canonical.encode()).hexdigest())))
        out.extend(f"{n}:{v}\r\n".encode() for n, v in trailers)
        out.append(f"x-amz-trailer-signature:{signature}\r\n".encode())
    out.append(b"\r\n")
    return b"".join(out)


def signed_auth(mode: str) -> sigv4.AuthContext:
    return sigv4.AuthContext(
        access_key="AKID", payload_sha256=mode, streaming=True, signed_chunks=True,
        trailer=mode.endswith("TRAILER"), seed_signature=SEED, signing_key=KEY, amz_date=AMZ_DATE,
        scope=SCOPE,
    )


def crc32_b64(data: bytes) -> str:
    summer = Checksummer("CRC32")
    summer.update(data)
    return summer.b64digest()


PAYLOAD = bytes(range(256)) * 300  # 76800 bytes
CHUNKS = [PAYLOAD[:65536], PAYLOAD[65536:]]


def trailer_headers(length: int = len(PAYLOAD)) -> CIMultiDict[str]:
    return CIMultiDict({
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(length),
        "x-amz-trailer": "x-amz-checksum-crc32",
    })


def test_signed_trailer_verifies_and_exposes_the_checksum() -> None:
    body = signed_body(CHUNKS, [("x-amz-checksum-crc32", crc32_b64(PAYLOAD))])
    auth = signed_auth(sigv4.STREAMING_SIGNED_TRAILER)
    payload, trailers, _ = read_all(body, trailer_headers(), auth, slice_size=333)
    assert payload == PAYLOAD
    assert trailers == {"x-amz-checksum-crc32": crc32_b64(PAYLOAD)}


def test_signed_trailer_with_tampered_value_is_refused() -> None:
    body = signed_body(CHUNKS, [("x-amz-checksum-crc32", crc32_b64(PAYLOAD))])
    tampered = body.replace(crc32_b64(PAYLOAD).encode(), crc32_b64(b"other").encode())
    assert_refused(ErrorCode.SignatureDoesNotMatch, tampered, trailer_headers(),
                   signed_auth(sigv4.STREAMING_SIGNED_TRAILER))


def test_signed_trailer_without_signature_is_refused() -> None:
    body = signed_body(CHUNKS, [("x-amz-checksum-crc32", "AAAAAA==")])
    without = b"".join(line for line in body.splitlines(keepends=True)
                       if not line.startswith(b"x-amz-trailer-signature"))
    assert_refused(ErrorCode.SignatureDoesNotMatch, without, trailer_headers(),
                   signed_auth(sigv4.STREAMING_SIGNED_TRAILER))


def test_trailer_in_signed_mode_without_trailer_is_refused() -> None:
    body = signed_body(CHUNKS, [("x-amz-checksum-crc32", crc32_b64(PAYLOAD))])
    assert_refused(ErrorCode.InvalidRequest, body, trailer_headers(),
                   signed_auth(sigv4.STREAMING_SIGNED))


def test_short_signed_chunk_before_the_last_is_refused() -> None:
    body = signed_body([PAYLOAD[:100], PAYLOAD[100:]], None)
    assert_refused(ErrorCode.InvalidChunkSizeError, body, trailer_headers(),
                   signed_auth(sigv4.STREAMING_SIGNED))


def test_data_after_the_end_is_refused() -> None:
    body = signed_body(CHUNKS, None) + b"junk"
    assert_refused(ErrorCode.InvalidRequest, body, trailer_headers(),
                   signed_auth(sigv4.STREAMING_SIGNED))


# ---- unsigned trailers, encoded by botocore ------------------------------------------------


def botocore_chunked(payload: bytes, chunk_size: int = 8192) -> bytes:
    wrapper = AwsChunkedWrapper(io.BytesIO(payload), checksum_cls=Crc32Checksum,
                                checksum_name="x-amz-checksum-crc32", chunk_size=chunk_size)
    return b"".join(wrapper)


def unsigned_trailer_auth() -> sigv4.AuthContext:
    return sigv4.unsigned_context(sigv4.STREAMING_UNSIGNED_TRAILER)


def test_botocore_unsigned_trailer_body_decodes_with_its_crc32() -> None:
    body = botocore_chunked(PAYLOAD)
    headers = trailer_headers()
    payload, trailers, pieces = read_all(body, headers, unsigned_trailer_auth(), slice_size=4099)
    assert payload == PAYLOAD
    assert requested_algorithm(headers) == "CRC32"
    assert trailers["x-amz-checksum-crc32"] == crc32_b64(PAYLOAD)
    assert max(pieces) <= 8192


def test_anonymous_unsigned_trailer_body_is_read() -> None:
    headers = trailer_headers()
    headers["x-amz-content-sha256"] = sigv4.STREAMING_UNSIGNED_TRAILER
    assert read_all(botocore_chunked(PAYLOAD), headers, None)[0] == PAYLOAD


def test_large_unsigned_chunks_are_handed_out_in_bounded_pieces() -> None:
    payload = b"x" * (3 << 20)
    body = botocore_chunked(payload, chunk_size=3 << 20)
    headers = trailer_headers(len(payload))
    got, _, pieces = read_all(body, headers, unsigned_trailer_auth(), slice_size=1 << 16)
    assert got == payload
    assert max(pieces) <= 1 << 20


@pytest.mark.parametrize("cut", [3, 9000, len(botocore_chunked(PAYLOAD)) - 20])
def test_unsigned_trailer_truncated_is_incomplete_body(cut: int) -> None:
    assert_refused(ErrorCode.IncompleteBody, botocore_chunked(PAYLOAD), trailer_headers(),
                   unsigned_trailer_auth(), truncate_at=cut)


def test_unsigned_trailer_wrong_decoded_length_is_incomplete_body() -> None:
    assert_refused(ErrorCode.IncompleteBody, botocore_chunked(PAYLOAD),
                   trailer_headers(len(PAYLOAD) + 1), unsigned_trailer_auth())


@pytest.mark.parametrize(
    "body",
    [
        b"zz\r\nab\r\n0\r\n\r\n",  # not hex
        b"-2\r\nab\r\n0\r\n\r\n",
        b"\r\nab\r\n0\r\n\r\n",  # empty size
        b"2\r\nabXX0\r\n\r\n",  # chunk data not followed by CRLF
        b"2000000\r\n",  # 32 MiB chunk: over the cap
        b"2\r\nab\r\n0\r\nno colon here\r\n\r\n",
        b"1" * 10000 + b"\r\n",  # endless size line
    ],
)
def test_malformed_framing_is_invalid_request(body: bytes) -> None:
    assert_refused(ErrorCode.InvalidRequest, body, CIMultiDict({"Content-Encoding": "aws-chunked"}),
                   unsigned_trailer_auth())


def test_hex_payload_hash_with_aws_chunked_is_refused() -> None:
    auth = sigv4.unsigned_context("0" * 64)
    assert_refused(ErrorCode.InvalidRequest, b"0\r\n\r\n",
                   CIMultiDict({"Content-Encoding": "gzip, aws-chunked"}), auth)


# ---- plain bodies ---------------------------------------------------------------------------


def plain_auth(payload_sha256: str) -> sigv4.AuthContext:
    return sigv4.unsigned_context(payload_sha256)


def test_plain_body_with_matching_sha256_is_read_in_bounded_pieces() -> None:
    payload = b"y" * (2 << 20) + b"z"
    headers = CIMultiDict({"Content-Length": str(len(payload))})
    auth = plain_auth(hashlib.sha256(payload).hexdigest().upper())
    got, _, pieces = read_all(payload, headers, auth, slice_size=1 << 16)
    assert got == payload and max(pieces) <= 1 << 20


def test_plain_body_with_other_sha256_is_mismatch() -> None:
    headers = CIMultiDict({"Content-Length": "5"})
    assert_refused(ErrorCode.XAmzContentSHA256Mismatch, b"hello", headers,
                   plain_auth(hashlib.sha256(b"HELLO").hexdigest()))


def test_plain_unsigned_payload_is_not_hashed() -> None:
    headers = CIMultiDict({"Content-Length": "5"})
    assert read_all(b"hello", headers, plain_auth(sigv4.UNSIGNED_PAYLOAD))[0] == b"hello"


def test_plain_body_shorter_than_content_length_is_incomplete() -> None:
    headers = CIMultiDict({"Content-Length": "10"})
    assert_refused(ErrorCode.IncompleteBody, b"hello", headers, None)


def test_plain_body_reader_is_chosen_without_aws_chunked() -> None:
    async def run() -> object:
        stream = await _stream(b"", slice_size=1, truncate_at=None)
        return body_reader(stream, None, CIMultiDict({"Content-Encoding": "gzip"}))

    assert isinstance(asyncio.run(run()), PlainBodyReader)


def test_aws_chunked_reader_is_chosen_for_streaming_mode_without_content_encoding() -> None:
    async def run() -> object:
        stream = await _stream(b"", slice_size=1, truncate_at=None)
        return body_reader(stream, unsigned_trailer_auth(), CIMultiDict())

    assert isinstance(asyncio.run(run()), AwsChunkedReader)


# ---- end to end: a real aiohttp server, boto3 and a raw socket --------------------------------

ACCESS_KEY, SECRET_KEY = "AKIDE2E", "e2e-secret"
RESULTS = web.AppKey("results", list)


async def _put_handler(request: web.Request) -> web.Response:
    """A stand-in PUT handler doing what the real one will: authenticate, read, check."""
    try:
        auth = sigv4.authenticate(
            method=request.method, raw_path=request.raw_path,
            raw_query=request.rel_url.raw_query_string, headers=request.headers,
            lookup={ACCESS_KEY: SECRET_KEY}.get, now=datetime.now(UTC),
        )
        reader = body_reader(request.content, auth, request.headers)
        algorithm = requested_algorithm(request.headers)
        summer = Checksummer(algorithm or "SHA256")
        size = 0
        while piece := await reader.read_chunk():
            summer.update(piece)
            size += len(piece)
        expected = {**request.headers, **reader.trailers}.get(f"x-amz-checksum-{algorithm}".lower())
        if algorithm and expected != summer.b64digest():
            raise S3Error(ErrorCode.BadDigest)
    except S3Error as err:
        request.app[RESULTS].append(err.code)
        body = f"<Error><Code>{err.code.name}</Code><Message>{err.message}</Message></Error>"
        return web.Response(status=err.status, text=body, content_type="application/xml")
    request.app[RESULTS].append((size, algorithm))
    return web.Response(headers={"ETag": '"0"'})


@pytest.fixture
def server() -> Iterator[tuple[int, list[object]]]:
    """An aiohttp server in its own thread (boto3 is synchronous)."""
    loop = asyncio.new_event_loop()
    app = web.Application()
    app[RESULTS] = []
    app.router.add_put("/{tail:.*}", _put_handler)
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield port, app[RESULTS]
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def e2e_client(port: int) -> object:
    return boto3.client(
        "s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                      retries={"max_attempts": 1}),
    )


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"])
def test_boto3_put_object_is_authenticated_and_verified(
    server: tuple[int, list[object]], algorithm: str
) -> None:
    port, results = server
    body = PAYLOAD * 3
    e2e_client(port).put_object(Bucket="b", Key="dir/k ü+", Body=body, ChecksumAlgorithm=algorithm)
    assert results == [(len(body), algorithm)]


def test_boto3_put_object_with_wrong_secret_is_refused(server: tuple[int, list[object]]) -> None:
    port, results = server
    client = boto3.client(
        "s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key="wrong",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )
    with pytest.raises(ClientError) as err:
        client.put_object(Bucket="b", Key="k", Body=b"x")
    assert err.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert results == [ErrorCode.SignatureDoesNotMatch]


def test_presigned_put_over_the_wire_is_accepted(server: tuple[int, list[object]]) -> None:
    port, results = server
    url = e2e_client(port).generate_presigned_url(
        "put_object", Params={"Bucket": "b", "Key": "a/b c"}, ExpiresIn=60
    )

    async def put() -> int:
        import aiohttp

        async with aiohttp.ClientSession() as session, session.put(
            aiohttp.client.URL(url, encoded=True), data=b"presigned body"
        ) as response:
            return response.status

    assert asyncio.run(put()) == 200
    assert results == [(len(b"presigned body"), None)]


def test_client_hanging_up_mid_body_is_incomplete_body(server: tuple[int, list[object]]) -> None:
    port, results = server
    body = botocore_chunked(PAYLOAD)
    head = (
        "PUT /b/k HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Encoding: aws-chunked\r\n"
        f"x-amz-content-sha256: {sigv4.STREAMING_UNSIGNED_TRAILER}\r\n"
        f"x-amz-decoded-content-length: {len(PAYLOAD)}\r\n"
        "x-amz-trailer: x-amz-checksum-crc32\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(head.encode() + body[: len(body) // 2])
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(10)
        try:
            while sock.recv(65536):
                pass
        except OSError:
            pass
    for _ in range(100):
        if results:
            break
        threading.Event().wait(0.05)
    assert results == [ErrorCode.IncompleteBody]
