"""Multipart uploads: create, parts (reordered, retried, copied), complete, abort, listings."""

from __future__ import annotations

import base64
import hashlib
import io
import os

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError
from s3util import error_code

MiB = 1024 * 1024


def md5_of_md5s(parts: list[bytes]) -> str:
    digest = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
    return f'"{digest}-{len(parts)}"'


def test_50mib_multipart_via_transfer_manager(s3, bucket):
    data = os.urandom(50 * MiB)
    config = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB)
    s3.upload_fileobj(io.BytesIO(data), bucket, "big", Config=config)
    head = s3.head_object(Bucket=bucket, Key="big")
    parts = [data[i:i + 8 * MiB] for i in range(0, len(data), 8 * MiB)]
    assert head["ETag"] == md5_of_md5s(parts)
    assert head["ContentLength"] == len(data)
    out = io.BytesIO()
    s3.download_fileobj(bucket, "big", out, Config=config)
    assert out.getvalue() == data
    part2 = s3.get_object(Bucket=bucket, Key="big", PartNumber=2)
    assert part2["Body"].read() == parts[1]
    assert part2["PartsCount"] == len(parts)


def test_parts_uploaded_out_of_order_and_retried(s3, bucket):
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp", ContentType="text/plain",
                                        Metadata={"k": "v"})["UploadId"]
    p1, p2, p3 = os.urandom(5 * MiB), os.urandom(5 * MiB), b"tail"
    e3 = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=3, Body=p3)["ETag"]
    s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=1, Body=os.urandom(5 * MiB))
    e1 = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=1, Body=p1)["ETag"]
    e2 = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=2, Body=p2)["ETag"]
    listed = s3.list_parts(Bucket=bucket, Key="mp", UploadId=upload)
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in listed["Parts"]] == [
        (1, e1, 5 * MiB), (2, e2, 5 * MiB), (3, e3, 4)]
    done = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2},
                  {"PartNumber": 3, "ETag": e3}]})
    assert done["ETag"] == md5_of_md5s([p1, p2, p3])
    got = s3.get_object(Bucket=bucket, Key="mp")
    assert got["Body"].read() == p1 + p2 + p3
    assert got["Metadata"] == {"k": "v"} and got["ContentType"] == "text/plain"
    # a retried Complete answers like the first one
    again = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2},
                  {"PartNumber": 3, "ETag": e3}]})
    assert again["ETag"] == done["ETag"]


def test_complete_with_subset_of_parts(s3, bucket):
    upload = s3.create_multipart_upload(Bucket=bucket, Key="sub")["UploadId"]
    p1 = os.urandom(5 * MiB)
    e1 = s3.upload_part(Bucket=bucket, Key="sub", UploadId=upload, PartNumber=1, Body=p1)["ETag"]
    s3.upload_part(Bucket=bucket, Key="sub", UploadId=upload, PartNumber=2, Body=b"dropped")
    s3.complete_multipart_upload(Bucket=bucket, Key="sub", UploadId=upload,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}]})
    assert s3.get_object(Bucket=bucket, Key="sub")["Body"].read() == p1


def test_complete_errors(s3, bucket):
    upload = s3.create_multipart_upload(Bucket=bucket, Key="bad")["UploadId"]
    e1 = s3.upload_part(Bucket=bucket, Key="bad", UploadId=upload, PartNumber=1,
                        Body=b"small")["ETag"]
    e2 = s3.upload_part(Bucket=bucket, Key="bad", UploadId=upload, PartNumber=2,
                        Body=b"small")["ETag"]
    cases = [
        ([{"PartNumber": 2, "ETag": e2}, {"PartNumber": 1, "ETag": e1}], ("InvalidPartOrder", 400)),
        ([{"PartNumber": 1, "ETag": '"0123"'}], ("InvalidPart", 400)),
        ([{"PartNumber": 7, "ETag": e1}], ("InvalidPart", 400)),
        ([{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}], ("EntityTooSmall", 400)),
    ]
    for parts, expected in cases:
        with pytest.raises(ClientError) as exc:
            s3.complete_multipart_upload(Bucket=bucket, Key="bad", UploadId=upload,
                                         MultipartUpload={"Parts": parts})
        assert error_code(exc) == expected
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="bad")
    assert error_code(exc)[1] == 404
    # a single small part is a valid (last) part
    s3.complete_multipart_upload(Bucket=bucket, Key="bad", UploadId=upload,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}]})
    assert s3.get_object(Bucket=bucket, Key="bad")["Body"].read() == b"small"


def test_abort_and_no_such_upload(s3, bucket):
    upload = s3.create_multipart_upload(Bucket=bucket, Key="ab")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="ab", UploadId=upload, PartNumber=1, Body=b"x")
    s3.abort_multipart_upload(Bucket=bucket, Key="ab", UploadId=upload)
    for call in (
        lambda: s3.upload_part(Bucket=bucket, Key="ab", UploadId=upload, PartNumber=1, Body=b"x"),
        lambda: s3.list_parts(Bucket=bucket, Key="ab", UploadId=upload),
        lambda: s3.abort_multipart_upload(Bucket=bucket, Key="ab", UploadId=upload),
        lambda: s3.complete_multipart_upload(Bucket=bucket, Key="ab", UploadId=upload,
                                             MultipartUpload={"Parts": [
                                                 {"PartNumber": 1, "ETag": '"x"'}]}),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert error_code(exc) == ("NoSuchUpload", 404)


def test_part_number_out_of_range(s3, bucket):
    upload = s3.create_multipart_upload(Bucket=bucket, Key="pn")["UploadId"]
    for number in (0, 10001):
        with pytest.raises(ClientError) as exc:
            s3.upload_part(Bucket=bucket, Key="pn", UploadId=upload, PartNumber=number, Body=b"x")
        assert error_code(exc) == ("InvalidArgument", 400)


def test_list_multipart_uploads(s3, bucket):
    ids = {key: s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
           for key in ("x/1", "x/2", "y")}
    listed = s3.list_multipart_uploads(Bucket=bucket)
    assert [(u["Key"], u["UploadId"]) for u in listed["Uploads"]] == sorted(ids.items())
    page = s3.list_multipart_uploads(Bucket=bucket, MaxUploads=1)
    assert page["IsTruncated"] and page["NextKeyMarker"] == "x/1"
    rest = s3.list_multipart_uploads(Bucket=bucket, KeyMarker=page["NextKeyMarker"],
                                     UploadIdMarker=page["NextUploadIdMarker"])
    assert [u["Key"] for u in rest["Uploads"]] == ["x/2", "y"]
    grouped = s3.list_multipart_uploads(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in grouped["CommonPrefixes"]] == ["x/"]
    assert [u["Key"] for u in grouped["Uploads"]] == ["y"]


def test_upload_part_copy_with_ranges(s3, bucket):
    source = os.urandom(12 * MiB)
    s3.put_object(Bucket=bucket, Key="source", Body=source)
    upload = s3.create_multipart_upload(Bucket=bucket, Key="copied")["UploadId"]
    r1 = s3.upload_part_copy(Bucket=bucket, Key="copied", UploadId=upload, PartNumber=1,
                             CopySource=f"{bucket}/source",
                             CopySourceRange=f"bytes=0-{6 * MiB - 1}")
    r2 = s3.upload_part_copy(Bucket=bucket, Key="copied", UploadId=upload, PartNumber=2,
                             CopySource=f"{bucket}/source", CopySourceRange="bytes=100-199")
    s3.complete_multipart_upload(Bucket=bucket, Key="copied", UploadId=upload, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": r1["CopyPartResult"]["ETag"]},
                  {"PartNumber": 2, "ETag": r2["CopyPartResult"]["ETag"]}]})
    got = s3.get_object(Bucket=bucket, Key="copied")["Body"].read()
    assert got == source[: 6 * MiB] + source[100:200]
    with pytest.raises(ClientError) as exc:
        s3.upload_part_copy(Bucket=bucket, Key="copied2", UploadId=upload, PartNumber=1,
                            CopySource=f"{bucket}/source", CopySourceRange="bytes=0-99")
    assert error_code(exc) == ("NoSuchUpload", 404)


@pytest.mark.parametrize("bad_range", ["0-2", "bytes=0", "bytes=hello-world", "bytes=0-bar",
                                       "bytes=hello-", "bytes=0-2,3-5", "bytes=3-1"])
def test_upload_part_copy_refuses_a_range_not_of_the_form_bytes_first_last(s3, bucket, bad_range):
    s3.put_object(Bucket=bucket, Key="small-source", Body=b"12345")
    upload = s3.create_multipart_upload(Bucket=bucket, Key="ranged")["UploadId"]
    with pytest.raises(ClientError) as exc:
        s3.upload_part_copy(Bucket=bucket, Key="ranged", UploadId=upload, PartNumber=1,
                            CopySource=f"{bucket}/small-source", CopySourceRange=bad_range)
    assert error_code(exc) == ("InvalidArgument", 400)
    assert s3.list_parts(Bucket=bucket, Key="ranged", UploadId=upload).get("Parts", []) == []
    s3.abort_multipart_upload(Bucket=bucket, Key="ranged", UploadId=upload)


def test_multipart_with_sha256_composite_checksum(s3, bucket):
    upload = s3.create_multipart_upload(Bucket=bucket, Key="ck",
                                        ChecksumAlgorithm="SHA256")["UploadId"]
    p1, p2 = os.urandom(5 * MiB), os.urandom(1000)
    r1 = s3.upload_part(Bucket=bucket, Key="ck", UploadId=upload, PartNumber=1, Body=p1,
                        ChecksumAlgorithm="SHA256")
    r2 = s3.upload_part(Bucket=bucket, Key="ck", UploadId=upload, PartNumber=2, Body=p2,
                        ChecksumAlgorithm="SHA256")
    done = s3.complete_multipart_upload(Bucket=bucket, Key="ck", UploadId=upload, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": r1["ETag"], "ChecksumSHA256": r1["ChecksumSHA256"]},
                  {"PartNumber": 2, "ETag": r2["ETag"], "ChecksumSHA256": r2["ChecksumSHA256"]}]})
    import base64
    raw = hashlib.sha256(hashlib.sha256(p1).digest() + hashlib.sha256(p2).digest()).digest()
    assert done["ChecksumSHA256"] == base64.b64encode(raw).decode() + "-2"
    assert s3.get_object(Bucket=bucket, Key="ck")["Body"].read() == p1 + p2


@pytest.mark.parametrize(
    ("algorithm", "checksum_type"),
    [("CRC32", "FULL_OBJECT"), ("CRC32C", "COMPOSITE"), ("SHA256", "COMPOSITE")],
)
def test_complete_refuses_a_wrong_whole_object_checksum(s3, bucket, algorithm, checksum_type):
    key = f"whole-{algorithm}"
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm=algorithm,
                                        ChecksumType=checksum_type)["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=1, Body=b"abc",
                          ChecksumAlgorithm=algorithm)
    field = f"Checksum{algorithm}"
    parts = {"Parts": [{"PartNumber": 1, "ETag": part["ETag"], field: part[field]}]}
    wrong = base64.b64encode(b"\0" * len(base64.b64decode(part[field]))).decode()
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload,
                                     MultipartUpload=parts, **{field: wrong})
    assert error_code(exc) == ("BadDigest", 400)
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key=key)
    assert error_code(exc)[1] == 404  # nothing stored
    with pytest.raises(ClientError) as exc:  # a checksum of an algorithm the upload lacks
        s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload,
                                     MultipartUpload=parts, ChecksumCRC64NVME="AAAAAAAAAAA=")
    assert error_code(exc) == ("InvalidRequest", 400)
    other_type = "COMPOSITE" if checksum_type == "FULL_OBJECT" else "FULL_OBJECT"
    with pytest.raises(ClientError) as exc:  # AWS: another type than the upload's is BadDigest
        s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload,
                                     MultipartUpload=parts, ChecksumType=other_type)
    assert error_code(exc) == ("BadDigest", 400)
    done = s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload,
                                        MultipartUpload=parts, ChecksumType=checksum_type)
    right = done[field]
    assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == 3
    # a retry of the completion with the right value answers like the first
    again = s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload,
                                         MultipartUpload=parts, **{field: right})
    assert again["ETag"] == done["ETag"]


def test_delete_bucket_takes_its_uploads_in_progress_along(s3):
    """AWS deletes a bucket whose only content is uploads in progress; they do not come back
    with a new bucket of the same name."""
    name = f"uploads-only-{os.urandom(4).hex()}"
    s3.create_bucket(Bucket=name)
    upload = s3.create_multipart_upload(Bucket=name, Key="pending")["UploadId"]
    s3.upload_part(Bucket=name, Key="pending", UploadId=upload, PartNumber=1, Body=b"part")
    s3.delete_bucket(Bucket=name)
    with pytest.raises(ClientError) as exc:
        s3.list_multipart_uploads(Bucket=name)
    assert error_code(exc) == ("NoSuchBucket", 404)
    s3.create_bucket(Bucket=name)
    assert s3.list_multipart_uploads(Bucket=name).get("Uploads", []) == []
    with pytest.raises(ClientError) as exc:
        s3.list_parts(Bucket=name, Key="pending", UploadId=upload)
    assert error_code(exc) == ("NoSuchUpload", 404)
    s3.put_object(Bucket=name, Key="object", Body=b"x")
    with pytest.raises(ClientError) as exc:  # objects still keep a bucket alive
        s3.delete_bucket(Bucket=name)
    assert error_code(exc) == ("BucketNotEmpty", 409)


def test_transfer_manager_full_object_crc_is_reported_as_full_object(s3, bucket):
    """boto3's transfer manager given a whole-object CRC (`ChecksumCRC32=...`) creates the upload
    with ChecksumType FULL_OBJECT and sends the value with the completion; S3 then reports that
    CRC, without a part count, as FULL_OBJECT everywhere (it answered COMPOSITE before)."""
    import zlib

    data = os.urandom(6 * 1024 * 1024)
    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    config = TransferConfig(multipart_threshold=5 * 1024 * 1024,
                            multipart_chunksize=5 * 1024 * 1024)
    s3.upload_fileobj(io.BytesIO(data), bucket, "full", Config=config,
                      ExtraArgs={"ChecksumCRC32": crc})
    head = s3.head_object(Bucket=bucket, Key="full", ChecksumMode="ENABLED")
    assert (head["ChecksumCRC32"], head["ChecksumType"]) == (crc, "FULL_OBJECT")
    assert head["ETag"].strip('"').endswith("-2")  # it really was a multipart upload
    got = s3.get_object(Bucket=bucket, Key="full", ChecksumMode="ENABLED")
    assert got["ChecksumType"] == "FULL_OBJECT"
    assert got["Body"].read() == data  # botocore verified the whole-object CRC on the way
    attrs = s3.get_object_attributes(Bucket=bucket, Key="full", ObjectAttributes=["Checksum"])
    assert attrs["Checksum"] == {"ChecksumCRC32": crc, "ChecksumType": "FULL_OBJECT"}
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="full")["Contents"][0]
    assert listed["ChecksumType"] == "FULL_OBJECT"
    # the same upload without a whole-object value stays COMPOSITE, as AWS documents for CRC32
    s3.upload_fileobj(io.BytesIO(data), bucket, "composite", Config=config,
                      ExtraArgs={"ChecksumAlgorithm": "CRC32"})
    head = s3.head_object(Bucket=bucket, Key="composite", ChecksumMode="ENABLED")
    assert head["ChecksumType"] == "COMPOSITE" and head["ChecksumCRC32"].endswith("-2")


def test_complete_checks_the_expected_object_size(s3, bucket):
    """CompleteMultipartUpload with x-amz-mp-object-size (boto3 MpuObjectSize) that is not the
    size of the listed parts is 400 InvalidRequest on AWS, and nothing is stored (it was
    ignored)."""
    upload = s3.create_multipart_upload(Bucket=bucket, Key="sized")["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key="sized", UploadId=upload, PartNumber=1,
                          Body=b"12345")
    parts = {"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]}
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(Bucket=bucket, Key="sized", UploadId=upload,
                                     MultipartUpload=parts, MpuObjectSize=6)
    assert error_code(exc) == ("InvalidRequest", 400)
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="sized")
    assert error_code(exc)[1] == 404
    s3.complete_multipart_upload(Bucket=bucket, Key="sized", UploadId=upload,
                                 MultipartUpload=parts, MpuObjectSize=5)
    assert s3.get_object(Bucket=bucket, Key="sized")["Body"].read() == b"12345"


def test_part_number_reads_answer_the_part_checksum_of_a_composite_object(s3, bucket):
    """GET/HEAD ?partNumber=N with checksum mode on a COMPOSITE multipart object answer part N's
    own checksum, as AWS does (part-wise downloaders check each part against it; botocore checks
    the body here); a FULL_OBJECT object has no per-part checksum to give."""
    p1, p2 = os.urandom(5 * MiB), os.urandom(1000)
    for algorithm, checksum_type in (("SHA256", "COMPOSITE"), ("CRC32", "FULL_OBJECT")):
        key = f"parts-{algorithm}"
        upload = s3.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm=algorithm,
                                            ChecksumType=checksum_type)["UploadId"]
        field = f"Checksum{algorithm}"
        listed = []
        for number, body in ((1, p1), (2, p2)):
            part = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=number,
                                  Body=body, ChecksumAlgorithm=algorithm)
            listed.append({"PartNumber": number, "ETag": part["ETag"], field: part[field]})
        s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload,
                                     MultipartUpload={"Parts": listed})
        for number, body in ((1, p1), (2, p2)):
            got = s3.get_object(Bucket=bucket, Key=key, PartNumber=number, ChecksumMode="ENABLED")
            head = s3.head_object(Bucket=bucket, Key=key, PartNumber=number,
                                  ChecksumMode="ENABLED")
            assert got["Body"].read() == body
            if checksum_type == "COMPOSITE":
                assert got[field] == head[field] == listed[number - 1][field]
                assert got["ChecksumType"] == "COMPOSITE"
            else:
                assert field not in got and field not in head
