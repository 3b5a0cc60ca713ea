"""S3 additional checksums (CRC32, CRC32C, CRC64NVME, SHA1, SHA256): pick, compare, combine.

Handlers feed the decoded body (from `streaming`) through a `Checksummer` (the maths are the
leaf `anode/checksums.py`) and compare its `b64digest()` with the `x-amz-checksum-<algo>`
header or trailer that the client sent; every refusal here is an `S3Error`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping

from .. import checksums
from ..checksums import ALGORITHMS, CRC_COMBINE, CRC_WIDTH
from .errors import ErrorCode, S3Error

HEADER_PREFIX = "x-amz-checksum-"
# Headers that share the prefix but carry no checksum value.
_NON_VALUE_HEADERS = frozenset(
    {"x-amz-checksum-algorithm", "x-amz-checksum-type", "x-amz-checksum-mode"}
)


def header_name(algorithm: str) -> str:
    """The header (or trailer) that carries `algorithm`'s value, e.g. `x-amz-checksum-crc32c`."""
    return HEADER_PREFIX + algorithm.lower()


class Checksummer(checksums.Checksummer):
    """The leaf's incremental checksum, refusing an unknown algorithm in S3's shape."""

    def __init__(self, algorithm: str) -> None:
        if algorithm not in ALGORITHMS:
            raise S3Error(ErrorCode.InvalidRequest, f"Unsupported checksum algorithm {algorithm}")
        super().__init__(algorithm)


def _parse_algorithm(value: str, source: str) -> str:
    algorithm = value.strip().upper()
    if algorithm not in ALGORITHMS:
        raise S3Error(ErrorCode.InvalidRequest, f"Value for {source} header is invalid.")
    return algorithm


def _algorithm_of_header(name: str) -> str:
    return _parse_algorithm(name[len(HEADER_PREFIX) :], name)


def requested_algorithm(headers: Mapping[str, str]) -> str | None:
    """The one checksum algorithm a request asks for, or None; conflicting asks are errors.

    Sources: `x-amz-sdk-checksum-algorithm`, `x-amz-checksum-algorithm` (CreateMultipartUpload),
    a value header `x-amz-checksum-<algo>`, and `x-amz-trailer` (value sent after the body).
    """
    found: dict[str, str] = {}
    for source in ("x-amz-sdk-checksum-algorithm", "x-amz-checksum-algorithm"):
        if (value := headers.get(source)) is not None:
            found[source] = _parse_algorithm(value, source)
    value_headers = {
        name.lower()
        for name in headers
        if name.lower().startswith(HEADER_PREFIX) and name.lower() not in _NON_VALUE_HEADERS
    }
    if len(value_headers) > 1:
        raise S3Error(
            ErrorCode.InvalidRequest,
            "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
        )
    for name in value_headers:
        found[name] = _algorithm_of_header(name)
    if (trailer := headers.get("x-amz-trailer")) is not None:
        found["x-amz-trailer"] = _trailer_algorithm(trailer)
    algorithms = set(found.values())
    if len(algorithms) > 1:
        raise S3Error(
            ErrorCode.InvalidRequest,
            "Conflicting checksum algorithms: "
            + ", ".join(f"{k}={v}" for k, v in sorted(found.items())),
        )
    return algorithms.pop() if algorithms else None


def check_whole_object(headers: Mapping[str, str], computed: Mapping[str, str]) -> None:
    """Refuse a CompleteMultipartUpload whose `x-amz-checksum-<algo>` header disagrees with the
    checksum computed from the parts (a composite one may be sent with or without its `-N`)."""
    for name, value in headers.items():
        name = name.lower()
        if not name.startswith(HEADER_PREFIX) or name in _NON_VALUE_HEADERS:
            continue
        algorithm = _algorithm_of_header(name)
        if algorithm not in computed:
            raise S3Error(
                ErrorCode.InvalidRequest,
                f"The upload was not created with the {algorithm} checksum algorithm",
            )
        if value.strip().partition("-")[0] != computed[algorithm].partition("-")[0]:
            raise S3Error(
                ErrorCode.BadDigest,
                f"The {algorithm} you specified did not match the calculated checksum.",
            )


def _trailer_algorithm(value: str) -> str:
    names = [n.strip().lower() for n in value.split(",") if n.strip()]
    if len(names) != 1 or not names[0].startswith(HEADER_PREFIX):
        raise S3Error(
            ErrorCode.InvalidRequest,
            "The value specified in the x-amz-trailer header is not supported",
        )
    return _algorithm_of_header(names[0])


def _raw_digest(algorithm: str, b64: str) -> bytes:
    try:
        raw = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    expected = CRC_WIDTH.get(algorithm) or hashlib.new(algorithm.lower()).digest_size
    if len(raw) != expected:
        raise S3Error(ErrorCode.InvalidArgument, f"Invalid {algorithm} checksum value {b64!r}")
    return raw


def combine_multipart(algorithm: str, part_b64_digests: list[str]) -> str:
    """The COMPOSITE checksum of a multipart object: `b64(hash(raw part digests...))-N`."""
    combined = Checksummer(algorithm)
    for b64 in part_b64_digests:
        combined.update(_raw_digest(algorithm, b64))
    return f"{combined.b64digest()}-{len(part_b64_digests)}"


def combine_full_object(algorithm: str, parts: list[tuple[str, int]]) -> str:
    """The FULL_OBJECT CRC of a multipart object from (part b64 CRC, part size) pairs.

    CRCs compose without rereading data, which is why S3 only offers FULL_OBJECT for CRCs.
    """
    if algorithm not in CRC_COMBINE:
        raise S3Error(
            ErrorCode.InvalidRequest,
            f"The FULL_OBJECT checksum type is not supported for {algorithm}",
        )
    crc = 0
    for b64, size in parts:
        part_crc = int.from_bytes(_raw_digest(algorithm, b64), "big")
        crc = CRC_COMBINE[algorithm](crc, part_crc, size)
    return base64.b64encode(crc.to_bytes(CRC_WIDTH[algorithm], "big")).decode("ascii")
