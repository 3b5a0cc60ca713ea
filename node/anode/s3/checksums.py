"""S3 additional checksums (CRC32, CRC32C, CRC64NVME, SHA1, SHA256): compute, pick, combine.

Handlers feed the decoded body (from `streaming`) through a `Checksummer` and compare its
`b64digest()` with the `x-amz-checksum-<algo>` header or trailer that the client sent. CRCs
come from the same code the AWS SDKs use (`zlib` for CRC32, `awscrt` for the others) so our
values are bit-for-bit what clients compute.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import zlib
from collections.abc import Callable, Mapping

from awscrt import checksums as crt

from anode.s3.errors import ErrorCode, S3Error

ALGORITHMS = ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256")

HEADER_PREFIX = "x-amz-checksum-"
# Headers that share the prefix but carry no checksum value.
_NON_VALUE_HEADERS = frozenset(
    {"x-amz-checksum-algorithm", "x-amz-checksum-type", "x-amz-checksum-mode"}
)

_CRC_WIDTH = {"CRC32": 4, "CRC32C": 4, "CRC64NVME": 8}
_CRC_UPDATE: dict[str, Callable[[bytes, int], int]] = {
    "CRC32": zlib.crc32,
    "CRC32C": crt.crc32c,
    "CRC64NVME": crt.crc64nvme,
}
_CRC_COMBINE: dict[str, Callable[[int, int, int], int]] = {
    "CRC32": crt.combine_crc32,
    "CRC32C": crt.combine_crc32c,
    "CRC64NVME": crt.combine_crc64nvme,
}


def header_name(algorithm: str) -> str:
    """The header (or trailer) that carries `algorithm`'s value, e.g. `x-amz-checksum-crc32c`."""
    return HEADER_PREFIX + algorithm.lower()


class Checksummer:
    """An incremental checksum, so a body is checked as it streams and never held whole."""

    def __init__(self, algorithm: str) -> None:
        if algorithm not in ALGORITHMS:
            raise S3Error(ErrorCode.InvalidRequest, f"Unsupported checksum algorithm {algorithm}")
        self.algorithm = algorithm
        self._crc = 0
        self._hash = hashlib.new(algorithm.lower()) if algorithm.startswith("SHA") else None

    def update(self, data: bytes) -> None:
        if self._hash is not None:
            self._hash.update(data)
        else:
            self._crc = _CRC_UPDATE[self.algorithm](data, self._crc)

    def digest(self) -> bytes:
        """The raw big-endian digest, the byte string S3 base64-encodes."""
        if self._hash is not None:
            return self._hash.digest()
        return self._crc.to_bytes(_CRC_WIDTH[self.algorithm], "big")

    def b64digest(self) -> str:
        return base64.b64encode(self.digest()).decode("ascii")


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
    expected = _CRC_WIDTH.get(algorithm) or hashlib.new(algorithm.lower()).digest_size
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
    if algorithm not in _CRC_COMBINE:
        raise S3Error(
            ErrorCode.InvalidRequest,
            f"The FULL_OBJECT checksum type is not supported for {algorithm}",
        )
    crc = 0
    for b64, size in parts:
        part_crc = int.from_bytes(_raw_digest(algorithm, b64), "big")
        crc = _CRC_COMBINE[algorithm](crc, part_crc, size)
    return base64.b64encode(crc.to_bytes(_CRC_WIDTH[algorithm], "big")).decode("ascii")
