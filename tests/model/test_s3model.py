"""The model's own rules (pure logic): what S3 answers for ranges, versions, SSE-C and SSE-KMS."""

from __future__ import annotations

from s3model import (
    KMS_KEY,
    NULL,
    Bucket,
    Enc,
    Expect,
    Version,
    etag_of_parts,
    expect_read,
    md5_etag,
    multipart_etag,
    parse_range,
)


def test_ranges_follow_rfc_9110():
    assert parse_range("bytes=0-9", 100) == (0, 10)
    assert parse_range("bytes=90-", 100) == (90, 100)
    assert parse_range("bytes=95-200", 100) == (95, 100)
    assert parse_range("bytes=-10", 100) == (90, 100)
    assert parse_range("bytes=-200", 100) == (0, 100)
    assert parse_range("bytes=9-3", 100) is None  # invalid: ignored, the whole body
    assert parse_range("bytes=100-", 100) == Expect(416, "InvalidRange")
    assert parse_range("bytes=-0", 100) == Expect(416, "InvalidRange")
    assert parse_range("bytes=-5", 0) == Expect(416, "InvalidRange")


def test_versioning_states():
    b = Bucket("b", "root")
    b.put("k", Version("ignored", b"1"))
    b.put("k", Version("ignored", b"2"))
    assert b.shapes("k") == [(NULL, False, 1)]  # unversioned: one null version
    b.versioning = "Enabled"
    b.put("k", Version("v3", b"333"))
    b.delete("k", "m4")
    assert b.shapes("k") == [("m4", True, 0), ("v3", False, 3), (NULL, False, 1)]
    assert b.find("k", None) == Expect(404, "NoSuchKey")
    assert b.find("k", "m4") == Expect(405, "MethodNotAllowed")
    assert b.find("k", "v9") == Expect(404, "NoSuchVersion")
    b.versioning = "Suspended"
    b.put("k", Version("ignored", b"55555"))  # replaces the null version, keeps the others
    assert b.shapes("k") == [(NULL, False, 5), ("m4", True, 0), ("v3", False, 3)]
    b.delete("k", None)  # a null delete marker in place of the null version
    assert b.shapes("k") == [(NULL, True, 0), ("m4", True, 0), ("v3", False, 3)]
    for vid in (NULL, "m4", "v3"):
        b.delete_version("k", vid)
    assert "k" not in b.keys


def test_sse_c_keys_and_part_numbers():
    sealed = Version("v", b"abcdef", Enc("C", 1), parts=(4, 2))
    assert expect_read(sealed, None) == Expect(400, "InvalidRequest")
    assert expect_read(sealed, 0) == Expect(403, "AccessDenied")
    assert expect_read(sealed, 1, part_number=2) == Expect(
        206, body=b"ef", content_range="bytes 4-5/6"
    )
    assert expect_read(sealed, 1, part_number=3) == Expect(416, "InvalidPartNumber")
    plain = Version("v", b"abc")
    assert expect_read(plain, 2) == Expect(400, "InvalidRequest")
    assert expect_read(plain, None, part_number=1) == Expect(200, body=b"abc")
    assert expect_read(Version("v", b"abc", parts=None), None, part_number=1) is None


def test_sse_kms_answers_name_the_key_and_need_no_read_headers():
    kms = Version("v", b"abc", Enc("KMS", 2))
    assert expect_read(kms, None) == Expect(200, body=b"abc")
    assert expect_read(kms, 0) == Expect(400, "InvalidRequest")  # SSE-C headers: refused
    answer = Enc("KMS", 2).answer()
    assert answer["ServerSideEncryption"] == "aws:kms" and answer["SSECustomerAlgorithm"] is None
    assert answer["SSEKMSKeyId"] == f":key/{KMS_KEY}" and answer["SSEKMSEncryptionContext"]
    assert Enc("KMS", 0).answer()["SSEKMSKeyId"] == ":key/aws/s3"
    assert Enc("S3").answer() == {
        "ServerSideEncryption": "AES256",
        "SSECustomerAlgorithm": None,
        "SSEKMSKeyId": None,
        "SSEKMSEncryptionContext": None,
    }


def test_a_completed_upload_etag_is_the_md5_of_its_part_etags():
    parts = [b"a" * 10, b"b"]
    assert etag_of_parts([md5_etag(p) for p in parts]) == multipart_etag(parts)
