"""Bad input: every refusal is an S3 XML error with the right code and status; nothing stored."""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError
from s3util import error_code, raw_request


def assert_absent(s3, bucket, key):
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key=key)
    assert error_code(exc)[1] == 404


def xml_code(body: bytes) -> str:
    import xml.etree.ElementTree as ET

    return ET.fromstring(body).findtext("Code")


def test_wrong_secret_is_signature_does_not_match(node, bucket):
    client = node.client(secret_key="not-the-secret")
    with pytest.raises(ClientError) as exc:
        client.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert error_code(exc) == ("SignatureDoesNotMatch", 403)
    assert_absent(node.client(), bucket, "k")


def test_unknown_access_key(node, bucket):
    with pytest.raises(ClientError) as exc:
        node.client(access_key="NOSUCHKEY").list_objects_v2(Bucket=bucket)
    assert error_code(exc) == ("InvalidAccessKeyId", 403)


def test_anonymous_request_is_denied(node, bucket):
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(f"{node.s3_url}/{bucket}/k")
    assert exc.value.code == 403
    assert xml_code(exc.value.read()) == "AccessDenied"


def test_expired_presigned_url(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"},
                                    ExpiresIn=1)
    time.sleep(2.1)
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(url)
    assert exc.value.code == 403
    body = exc.value.read()
    assert xml_code(body) == "AccessDenied"
    assert b"expired" in body


def test_wrong_checksum_is_bad_digest(s3, bucket):
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="k", Body=b"hello", ChecksumCRC32="AAAAAA==")
    assert error_code(exc) == ("BadDigest", 400)
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="k", Body=b"hello",
                      ChecksumSHA256="47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")
    assert error_code(exc) == ("BadDigest", 400)
    assert_absent(s3, bucket, "k")


def test_payload_hash_mismatch_with_valid_signature(node, s3, bucket):
    # the signature covers the hash of b"AAAA"; the body sent is another of the same length
    status, body = raw_request(node, "PUT", f"/{bucket}/k", body=b"AAAA", send_body=b"BBBB")
    assert (status, xml_code(body)) == (400, "XAmzContentSHA256Mismatch")
    assert_absent(s3, bucket, "k")


def test_client_disconnecting_mid_body_stores_nothing(node, s3, bucket):
    body = os.urandom(100_000)
    raw_request(node, "PUT", f"/{bucket}/cut", body=body, send_body=body[:40_000],
                headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD"}, half_close=True)
    assert_absent(s3, bucket, "cut")
    assert s3.list_buckets()  # still serving


def test_truncated_aws_chunked_body_is_incomplete_body(node, s3, bucket):
    data = os.urandom(50)
    framed = b"32\r\n" + data + b"\r\n0\r\n\r\n"  # 50 bytes framed, 100 declared
    status, response = raw_request(
        node, "PUT", f"/{bucket}/trunc", body=framed,
        headers={"x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
                 "Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": "100"})
    assert (status, xml_code(response)) == (400, "IncompleteBody")
    assert_absent(s3, bucket, "trunc")


@pytest.mark.parametrize("payload", [b"<Delete><Object><Key>a</Key>", b"not xml at all",
                                     b"<Wrong/>", b""])
def test_malformed_delete_objects_xml(node, s3, bucket, payload):
    import base64
    import hashlib

    s3.put_object(Bucket=bucket, Key="a", Body=b"x")
    md5 = base64.b64encode(hashlib.md5(payload).digest()).decode()
    status, response = raw_request(node, "POST", f"/{bucket}?delete", body=payload,
                                   headers={"Content-MD5": md5})
    assert (status, xml_code(response)) == (400, "MalformedXML")
    assert s3.get_object(Bucket=bucket, Key="a")["Body"].read() == b"x"


def test_malformed_complete_multipart_xml(node, s3, bucket):
    upload = s3.create_multipart_upload(Bucket=bucket, Key="m")["UploadId"]
    status, response = raw_request(node, "POST", f"/{bucket}/m?uploadId={upload}",
                                   body=b"<CompleteMultipartUpload><Part>")
    assert (status, xml_code(response)) == (400, "MalformedXML")
    assert_absent(s3, bucket, "m")


def test_xml_entities_are_refused(node, s3, bucket):
    bomb = (b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa">]>'
            b"<Delete><Object><Key>&a;</Key></Object></Delete>")
    status, response = raw_request(node, "POST", f"/{bucket}?delete", body=bomb)
    assert (status, xml_code(response)) == (400, "MalformedXML")


@pytest.mark.parametrize("name", ["UPPERCASE", "ab", "a..b", "192.168.1.1", "-start", "end-",
                                  "has_underscore", "xn--punycode", "a" * 64])
def test_invalid_bucket_names(s3, name):
    with pytest.raises(ClientError) as exc:
        s3.create_bucket(Bucket=name)
    assert error_code(exc) == ("InvalidBucketName", 400)
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_key_over_1024_bytes(s3, bucket):
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="k" * 1025, Body=b"x")
    assert error_code(exc) == ("KeyTooLongError", 400)
    s3.put_object(Bucket=bucket, Key="é" * 512, Body=b"x")  # exactly 1024 bytes is fine
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 1


def test_user_metadata_over_2kib(s3, bucket):
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", Metadata={"big": "v" * 2100})
    assert error_code(exc) == ("MetadataTooLarge", 400)
    assert_absent(s3, bucket, "k")


def test_huge_headers(node, s3, bucket):
    status, response = raw_request(node, "PUT", f"/{bucket}/h", body=b"x",
                                   headers={"x-amz-meta-pad": "p" * 20_000})
    assert status == 400
    assert xml_code(response) in ("RequestHeaderSectionTooLarge", "MetadataTooLarge")
    status, _ = raw_request(node, "PUT", f"/{bucket}/h", body=b"x",
                            headers={"X-Pad": "p" * 200_000})
    assert 400 <= status < 500
    assert_absent(s3, bucket, "h")
    assert s3.list_buckets()  # the server is still serving


def test_unimplemented_operations_answer_not_implemented(s3, bucket):
    for call in (lambda: s3.get_bucket_analytics_configuration(Bucket=bucket, Id="a"),
                 lambda: s3.get_bucket_inventory_configuration(Bucket=bucket, Id="i"),
                 lambda: s3.get_object_torrent(Bucket=bucket, Key="k")):
        with pytest.raises(ClientError) as exc:
            call()
        assert error_code(exc) == ("NotImplemented", 501)


def test_errors_carry_request_id_and_resource(node, bucket):
    status, response = raw_request(node, "GET", f"/{bucket}/missing-key")
    assert status == 404
    import xml.etree.ElementTree as ET

    doc = ET.fromstring(response)
    assert doc.findtext("Code") == "NoSuchKey"
    assert len(doc.findtext("RequestId")) >= 16
    assert doc.findtext("Resource") == f"/{bucket}/missing-key"


def test_recreating_an_own_bucket_in_us_east_1_answers_200_and_resets_its_acl(s3, bucket):
    s3.put_object(Bucket=bucket, Key="kept", Body=b"x")
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read")
    s3.create_bucket(Bucket=bucket)  # AWS's legacy behaviour in us-east-1: 200, ACL reset
    grants = s3.get_bucket_acl(Bucket=bucket)["Grants"]
    assert [g["Permission"] for g in grants] == ["FULL_CONTROL"]
    assert s3.get_object(Bucket=bucket, Key="kept")["Body"].read() == b"x"
    s3.create_bucket(Bucket=bucket, ACL="public-read")
    assert len(s3.get_bucket_acl(Bucket=bucket)["Grants"]) == 2


def test_bucket_lifecycle_errors(s3, bucket):
    with pytest.raises(ClientError) as exc:
        s3.create_bucket(Bucket=bucket,
                         CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert error_code(exc) == ("BucketAlreadyOwnedByYou", 409)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(ClientError) as exc:
        s3.delete_bucket(Bucket=bucket)
    assert error_code(exc) == ("BucketNotEmpty", 409)
    s3.delete_object(Bucket=bucket, Key="k")
    s3.delete_bucket(Bucket=bucket)
    with pytest.raises(ClientError) as exc:
        s3.head_bucket(Bucket=bucket)
    assert error_code(exc)[1] == 404
    with pytest.raises(ClientError) as exc:
        s3.delete_bucket(Bucket=bucket)
    assert error_code(exc) == ("NoSuchBucket", 404)


@pytest.mark.parametrize("what", ["metadata", "tagging"])
def test_copy_with_an_unknown_directive_is_invalid_argument(s3, bucket, what):
    s3.put_object(Bucket=bucket, Key="src", Body=b"x")
    kwargs = {"MetadataDirective": "MOVE"} if what == "metadata" else {"TaggingDirective": "MOVE"}
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"},
                       **kwargs)
    assert error_code(exc) == ("InvalidArgument", 400)
    assert exc.value.response["Error"]["ArgumentName"] == f"x-amz-{what}-directive"
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="dst")
