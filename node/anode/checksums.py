"""Checksum maths: the CRC32, CRC32C, CRC64NVME, SHA1 and SHA256 digests S3 clients send.

Leaf: pure, no Anode imports. `chunks/ingest.py` feeds a body through a `Checksummer` as it
streams; `s3/checksums.py` picks the algorithm from the request's headers and compares values.
CRCs come from the same code the AWS SDKs use (`zlib` for CRC32, `awscrt` for the others) so
our values are bit-for-bit what clients compute.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from collections.abc import Callable

from awscrt import checksums as crt

ALGORITHMS = ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256")

CRC_WIDTH = {"CRC32": 4, "CRC32C": 4, "CRC64NVME": 8}
_CRC_UPDATE: dict[str, Callable[[bytes, int], int]] = {
    "CRC32": zlib.crc32,
    "CRC32C": crt.crc32c,
    "CRC64NVME": crt.crc64nvme,
}
CRC_COMBINE: dict[str, Callable[[int, int, int], int]] = {
    "CRC32": crt.combine_crc32,
    "CRC32C": crt.combine_crc32c,
    "CRC64NVME": crt.combine_crc64nvme,
}


class Checksummer:
    """An incremental checksum, so a body is checked as it streams and never held whole."""

    def __init__(self, algorithm: str) -> None:
        if algorithm not in ALGORITHMS:
            raise ValueError(f"Unsupported checksum algorithm {algorithm}")
        self.algorithm = algorithm
        self._crc = 0
        self._hash = hashlib.new(algorithm.lower()) if algorithm.startswith("SHA") else None

    def update(self, data: bytes | memoryview) -> None:
        if self._hash is not None:
            self._hash.update(data)
        else:
            self._crc = _CRC_UPDATE[self.algorithm](data, self._crc)

    def digest(self) -> bytes:
        """The raw big-endian digest, the byte string S3 base64-encodes."""
        if self._hash is not None:
            return self._hash.digest()
        return self._crc.to_bytes(CRC_WIDTH[self.algorithm], "big")

    def b64digest(self) -> str:
        return base64.b64encode(self.digest()).decode("ascii")
