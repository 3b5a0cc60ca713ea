"""GetObjectAttributes (ETag, checksums, parts with their checksums, storage class, size) and the
bucket sub-resources Anode answers as "nothing configured" (logging, notification, request
payment, accelerate, website, replication), through boto3 and raw requests."""

from __future__ import annotations

import base64
import hashlib
import zlib

import pytest
from botocore.exceptions import ClientError
from s3util import error_code, raw_request

PART = 5 * 1024 * 1024
ALL = ["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"]


def crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def test_attributes_of_a_simple_object(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"hello", ChecksumAlgorithm="CRC32",
                  StorageClass="STANDARD_IA")
    got = s3.get_object_attributes(Bucket=bucket, Key="k", ObjectAttributes=ALL)
    assert got["ETag"] == hashlib.md5(b"hello").hexdigest()  # no quotes, as S3 answers it
    assert got["Checksum"]["ChecksumCRC32"] == crc32(b"hello")
    assert got["Checksum"]["ChecksumType"] == "FULL_OBJECT"
    assert "ObjectParts" not in got  # a single-part object has none
    assert got["StorageClass"] == "STANDARD_IA"
    assert got["ObjectSize"] == 5
    assert got["LastModified"] == s3.head_object(Bucket=bucket, Key="k")["LastModified"]


def test_only_the_requested_attributes_are_answered(node, s3, bucket):
    assert raw_request(node, "PUT", f"/{bucket}/k", body=b"abc")[0] == 200  # no checksum
    got = s3.get_object_attributes(Bucket=bucket, Key="k", ObjectAttributes=["ObjectSize"])
    assert got["ObjectSize"] == 3
    assert not {"ETag", "Checksum", "StorageClass", "ObjectParts"} & set(got)
    got = s3.get_object_attributes(Bucket=bucket, Key="k", ObjectAttributes=["Checksum",
                                                                            "ETag"])
    assert "Checksum" not in got and got["ETag"] == hashlib.md5(b"abc").hexdigest()


def test_multipart_object_lists_its_parts_with_checksums(s3, bucket):
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp", ChecksumAlgorithm="CRC32")
    bodies = [b"a" * PART, b"b" * PART, b"c" * 10]
    parts = []
    for number, body in enumerate(bodies, 1):
        answer = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload["UploadId"],
                                PartNumber=number, Body=body, ChecksumAlgorithm="CRC32")
        parts.append({"PartNumber": number, "ETag": answer["ETag"],
                      "ChecksumCRC32": answer["ChecksumCRC32"]})
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload["UploadId"],
                                 MultipartUpload={"Parts": parts})
    got = s3.get_object_attributes(Bucket=bucket, Key="mp", ObjectAttributes=ALL)
    assert got["ETag"].endswith("-3") and got["ObjectSize"] == 2 * PART + 10
    assert got["Checksum"]["ChecksumType"] == "COMPOSITE"
    head = s3.head_object(Bucket=bucket, Key="mp", ChecksumMode="ENABLED")["ChecksumCRC32"]
    assert head.endswith("-3") and got["Checksum"]["ChecksumCRC32"] == head[:-2]
    object_parts = got["ObjectParts"]
    assert object_parts["TotalPartsCount"] == 3 and object_parts["IsTruncated"] is False
    assert [(p["PartNumber"], p["Size"], p["ChecksumCRC32"]) for p in object_parts["Parts"]] == [
        (i, len(b), crc32(b)) for i, b in enumerate(bodies, 1)]
    page = s3.get_object_attributes(Bucket=bucket, Key="mp", ObjectAttributes=["ObjectParts"],
                                    MaxParts=2)["ObjectParts"]
    assert [p["PartNumber"] for p in page["Parts"]] == [1, 2]
    assert page["IsTruncated"] is True and page["NextPartNumberMarker"] == 2
    rest = s3.get_object_attributes(Bucket=bucket, Key="mp", ObjectAttributes=["ObjectParts"],
                                    PartNumberMarker=2)["ObjectParts"]
    assert [p["PartNumber"] for p in rest["Parts"]] == [3] and rest["IsTruncated"] is False


def test_multipart_without_checksums_counts_parts_only(node, bucket):
    s3 = node.client(request_checksum_calculation="when_required")  # no checksums at all
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")
    etags = [s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload["UploadId"],
                            PartNumber=n, Body=b"x" * (PART if n == 1 else 3))["ETag"]
             for n in (1, 2)]
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload["UploadId"],
                                 MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e}
                                                            for n, e in enumerate(etags, 1)]})
    parts = s3.get_object_attributes(Bucket=bucket, Key="mp",
                                     ObjectAttributes=["ObjectParts"])["ObjectParts"]
    assert parts["TotalPartsCount"] == 2 and "Parts" not in parts


def test_attributes_by_version_and_of_missing_things(s3, bucket):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket=bucket, Key="k", Body=b"one")["VersionId"]
    s3.put_object(Bucket=bucket, Key="k", Body=b"three")
    got = s3.get_object_attributes(Bucket=bucket, Key="k", VersionId=first,
                                   ObjectAttributes=["ObjectSize"])
    assert got["ObjectSize"] == 3 and got["VersionId"] == first
    assert s3.get_object_attributes(Bucket=bucket, Key="k",
                                    ObjectAttributes=["ObjectSize"])["ObjectSize"] == 5
    with pytest.raises(ClientError) as exc:
        s3.get_object_attributes(Bucket=bucket, Key="missing", ObjectAttributes=["ETag"])
    assert error_code(exc) == ("NoSuchKey", 404)
    with pytest.raises(ClientError) as exc:
        s3.get_object_attributes(Bucket=bucket, Key="k", VersionId="A" * 32,
                                 ObjectAttributes=["ETag"])
    assert error_code(exc) == ("NoSuchVersion", 404)


def test_missing_or_unknown_attribute_names_are_invalid_argument(node, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    status, body = raw_request(node, "GET", f"/{bucket}/k?attributes")
    assert status == 400 and b"<Code>InvalidArgument</Code>" in body
    status, body = raw_request(node, "GET", f"/{bucket}/k?attributes",
                               headers={"x-amz-object-attributes": "ETag,Colour"})
    assert status == 400 and b"<Code>InvalidArgument</Code>" in body


# ---- bucket sub-resources with nothing configured ---------------------------------------------


def test_unconfigured_sub_resources_answer_like_s3(s3, bucket):
    assert "LoggingEnabled" not in s3.get_bucket_logging(Bucket=bucket)
    notification = s3.get_bucket_notification_configuration(Bucket=bucket)
    assert not {"TopicConfigurations", "QueueConfigurations",
                "LambdaFunctionConfigurations"} & set(notification)
    assert s3.get_bucket_request_payment(Bucket=bucket)["Payer"] == "BucketOwner"
    assert "Status" not in s3.get_bucket_accelerate_configuration(Bucket=bucket)
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_website(Bucket=bucket)
    assert error_code(exc) == ("NoSuchWebsiteConfiguration", 404)
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_replication(Bucket=bucket)
    assert error_code(exc) == ("ReplicationConfigurationNotFoundError", 404)
    assert s3.delete_bucket_website(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert s3.delete_bucket_replication(
        Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_puts_that_configure_nothing_succeed_and_others_are_not_implemented(s3, bucket):
    s3.put_bucket_logging(Bucket=bucket, BucketLoggingStatus={})
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={})
    s3.put_bucket_request_payment(Bucket=bucket,
                                  RequestPaymentConfiguration={"Payer": "BucketOwner"})
    s3.put_bucket_accelerate_configuration(Bucket=bucket,
                                           AccelerateConfiguration={"Status": "Suspended"})
    refused = [
        lambda: s3.put_bucket_logging(Bucket=bucket, BucketLoggingStatus={"LoggingEnabled": {
            "TargetBucket": bucket, "TargetPrefix": "logs/"}}),
        lambda: s3.put_bucket_request_payment(
            Bucket=bucket, RequestPaymentConfiguration={"Payer": "Requester"}),
        lambda: s3.put_bucket_accelerate_configuration(
            Bucket=bucket, AccelerateConfiguration={"Status": "Enabled"}),
        lambda: s3.put_bucket_website(Bucket=bucket, WebsiteConfiguration={
            "IndexDocument": {"Suffix": "index.html"}}),
    ]
    for call in refused:
        with pytest.raises(ClientError) as exc:
            call()
        assert error_code(exc) == ("NotImplemented", 501)
    assert s3.get_bucket_request_payment(Bucket=bucket)["Payer"] == "BucketOwner"


def test_sub_resources_of_a_missing_bucket_are_no_such_bucket(s3):
    for call in (lambda: s3.get_bucket_logging(Bucket="no-such-bucket-sub"),
                 lambda: s3.get_bucket_website(Bucket="no-such-bucket-sub"),
                 lambda: s3.get_bucket_request_payment(Bucket="no-such-bucket-sub")):
        with pytest.raises(ClientError) as exc:
            call()
        assert error_code(exc) == ("NoSuchBucket", 404)


def test_other_users_may_not_read_sub_resources(node, s3, bucket):
    import botocore

    anon = node.client(signature_version=botocore.UNSIGNED)
    with pytest.raises(ClientError) as exc:
        anon.get_bucket_logging(Bucket=bucket)
    assert error_code(exc) == ("AccessDenied", 403)
