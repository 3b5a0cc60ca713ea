"""`anode.s3.checksums` agrees with the values botocore (the client side) computes."""

from __future__ import annotations

import base64
import hashlib

import pytest
from botocore import httpchecksum
from multidict import CIMultiDict

from anode.s3.checksums import (
    ALGORITHMS,
    Checksummer,
    combine_full_object,
    combine_multipart,
    header_name,
    requested_algorithm,
)
from anode.s3.errors import ErrorCode, S3Error

BOTOCORE = {
    "CRC32": httpchecksum.CrtCrc32Checksum,
    "CRC32C": httpchecksum.CrtCrc32cChecksum,
    "CRC64NVME": httpchecksum.CrtCrc64NvmeChecksum,
    "SHA1": httpchecksum.Sha1Checksum,
    "SHA256": httpchecksum.Sha256Checksum,
}
DATA = bytes(range(256)) * 1000 + b"tail"


def botocore_b64(algorithm: str, data: bytes) -> str:
    checksum = BOTOCORE[algorithm]()
    checksum.update(data)
    return checksum.b64digest()


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_incremental_digest_equals_botocore_one_shot(algorithm: str) -> None:
    summer = Checksummer(algorithm)
    for start in range(0, len(DATA), 7001):
        summer.update(DATA[start : start + 7001])
    assert summer.b64digest() == botocore_b64(algorithm, DATA)


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        # Published check values of "123456789" for each CRC, big-endian.
        ("CRC32", "cbf43926"),
        ("CRC32C", "e3069283"),
        ("CRC64NVME", "ae8b14860a799888"),
    ],
)
def test_crc_check_values(algorithm: str, expected: str) -> None:
    summer = Checksummer(algorithm)
    summer.update(b"123456789")
    assert summer.digest().hex() == expected


def test_empty_input_digests() -> None:
    assert Checksummer("CRC32").b64digest() == "AAAAAA=="
    assert Checksummer("SHA256").b64digest() == base64.b64encode(
        hashlib.sha256(b"").digest()
    ).decode()


def test_unknown_algorithm_is_refused() -> None:
    with pytest.raises(S3Error) as err:
        Checksummer("MD5")
    assert err.value.code is ErrorCode.InvalidRequest


def test_header_name_is_lowercase_algorithm() -> None:
    assert header_name("CRC64NVME") == "x-amz-checksum-crc64nvme"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"x-amz-sdk-checksum-algorithm": "crc32c"}, "CRC32C"),
        ({"X-Amz-Checksum-Sha256": "abc="}, "SHA256"),
        ({"x-amz-trailer": "x-amz-checksum-crc32"}, "CRC32"),
        ({"x-amz-checksum-algorithm": "CRC64NVME", "x-amz-checksum-type": "FULL_OBJECT"},
         "CRC64NVME"),
        # boto3's PutObject with a trailer sends both, agreeing.
        ({"x-amz-sdk-checksum-algorithm": "CRC32", "x-amz-trailer": "x-amz-checksum-crc32"},
         "CRC32"),
        ({"x-amz-checksum-mode": "ENABLED"}, None),
    ],
)
def test_requested_algorithm(headers: dict[str, str], expected: str | None) -> None:
    assert requested_algorithm(CIMultiDict(headers)) == expected


@pytest.mark.parametrize(
    "headers",
    [
        {"x-amz-sdk-checksum-algorithm": "MD5"},
        {"x-amz-checksum-md5": "abc="},
        {"x-amz-trailer": "x-amz-meta-foo"},
        {"x-amz-trailer": "x-amz-checksum-crc32,x-amz-checksum-sha1"},
        {"x-amz-checksum-crc32": "AAAAAA==", "x-amz-checksum-sha1": "abc="},
        {"x-amz-sdk-checksum-algorithm": "SHA1", "x-amz-checksum-crc32": "AAAAAA=="},
        {"x-amz-sdk-checksum-algorithm": "SHA1", "x-amz-trailer": "x-amz-checksum-crc32"},
    ],
)
def test_requested_algorithm_refuses_unknown_or_conflicting(headers: dict[str, str]) -> None:
    with pytest.raises(S3Error) as err:
        requested_algorithm(CIMultiDict(headers))
    assert err.value.code is ErrorCode.InvalidRequest


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_composite_checksum_hashes_concatenated_raw_part_digests(algorithm: str) -> None:
    parts = [DATA[:100_000], DATA[100_000:200_000], DATA[200_000:]]
    part_digests = [botocore_b64(algorithm, p) for p in parts]
    raw = b"".join(base64.b64decode(d) for d in part_digests)
    assert combine_multipart(algorithm, part_digests) == f"{botocore_b64(algorithm, raw)}-3"


def test_composite_checksum_of_bad_part_digest_is_invalid_argument() -> None:
    with pytest.raises(S3Error) as err:
        combine_multipart("CRC32", ["not base64!"])
    assert err.value.code is ErrorCode.InvalidArgument


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "CRC64NVME"])
def test_full_object_crc_equals_crc_of_whole_object(algorithm: str) -> None:
    parts = [DATA[:100_000], DATA[100_000:100_001], DATA[100_001:]]
    combined = combine_full_object(algorithm, [(botocore_b64(algorithm, p), len(p)) for p in parts])
    assert combined == botocore_b64(algorithm, DATA)


def test_full_object_is_refused_for_sha() -> None:
    with pytest.raises(S3Error):
        combine_full_object("SHA256", [])
