"""Object and bucket tags through boto3 (single node and cluster): the x-amz-tagging header,
Put/Get/DeleteObjectTagging (by version too), limits, copy and multipart, bucket tags."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from s3util import error_code, raw_request


def tag_set(pairs: dict[str, str]) -> dict:
    return {"TagSet": [{"Key": k, "Value": v} for k, v in pairs.items()]}


def tags_of(s3, bucket: str, key: str, **kwargs) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in s3.get_object_tagging(
        Bucket=bucket, Key=key, **kwargs)["TagSet"]}


# ---- object tags ------------------------------------------------------------------------------


def test_tag_sets_come_back_in_key_order(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", Tagging="foo=bar&bar")
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == [
        {"Key": "bar", "Value": ""}, {"Key": "foo", "Value": "bar"}]
    s3.put_bucket_tagging(Bucket=bucket, Tagging=tag_set({"z": "1", "a": "2"}))
    assert [t["Key"] for t in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]] == ["a", "z"]


def test_put_object_with_tagging_header_round_trips_url_encoded_tags(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", Tagging="team=data&note=a%20b%26c&empty=")
    assert tags_of(s3, bucket, "k") == {"team": "data", "note": "a b&c", "empty": ""}
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["TagCount"] == 3
    headers = s3.head_object(Bucket=bucket, Key="k")["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-amz-tagging-count"] == "3"


def test_untagged_object_has_empty_tag_set_and_no_count(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == []
    assert "TagCount" not in s3.get_object(Bucket=bucket, Key="k")


def test_put_get_delete_object_tagging(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", Tagging="old=1")
    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=tag_set({"a": "1", "b": "2"}))
    assert tags_of(s3, bucket, "k") == {"a": "1", "b": "2"}
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"  # data untouched
    deleted = s3.delete_object_tagging(Bucket=bucket, Key="k")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert tags_of(s3, bucket, "k") == {}


def test_tagging_a_missing_object_is_no_such_key(s3, bucket):
    for call in (
        lambda: s3.get_object_tagging(Bucket=bucket, Key="missing"),
        lambda: s3.put_object_tagging(Bucket=bucket, Key="missing", Tagging=tag_set({"a": "1"})),
        lambda: s3.delete_object_tagging(Bucket=bucket, Key="missing"),
    ):
        with pytest.raises(ClientError) as e:
            call()
        assert error_code(e) == ("NoSuchKey", 404)


def test_ten_tags_with_longest_key_and_value_are_accepted(s3, bucket):
    tags = {f"{i}".ljust(128, "k"): "v" * 256 for i in range(10)}
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=tag_set(tags))
    assert tags_of(s3, bucket, "k") == tags


def test_limits_count_unicode_characters_not_bytes(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    tags = {"é" * 128: "ü" * 256}
    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=tag_set(tags))
    assert tags_of(s3, bucket, "k") == tags


@pytest.mark.parametrize("tags", [
    {f"k{i}": "v" for i in range(11)},
    {"k" * 129: "v"},
    {"k": "v" * 257},
    {"aws:reserved": "v"},
], ids=["eleven-tags", "long-key", "long-value", "aws-prefix"])
def test_invalid_tag_sets_are_refused(s3, bucket, tags):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", Tagging="keep=1")
    with pytest.raises(ClientError) as e:
        s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=tag_set(tags))
    assert error_code(e) == ("InvalidTag", 400)
    assert tags_of(s3, bucket, "k") == {"keep": "1"}


def test_duplicate_tag_keys_are_refused(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    duplicated = {"TagSet": [{"Key": "a", "Value": "1"}, {"Key": "a", "Value": "2"}]}
    with pytest.raises(ClientError) as e:
        s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=duplicated)
    assert error_code(e) == ("InvalidTag", 400)
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="k2", Body=b"x", Tagging="a=1&a=2")
    assert error_code(e) == ("InvalidTag", 400)


@pytest.mark.parametrize("header", ["&".join(f"k{i}=v" for i in range(11)), "=v"],
                         ids=["eleven-tags", "empty-key"])
def test_invalid_tagging_header_refuses_the_put(s3, bucket, header):
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", Tagging=header)
    assert error_code(e) == ("InvalidTag", 400)
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="k")
    assert error_code(e)[1] == 404


@pytest.mark.parametrize("body", [
    b"",
    b"<Tagging>",
    b"<Tagging></Tagging>",
    b"<Tagging><TagSet><Tag><Key>a</Key></Tag></TagSet></Tagging>",
    b"<Tags><TagSet></TagSet></Tags>",
])
def test_malformed_tagging_xml(node, s3, bucket, body):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    status, answer = raw_request(node, "PUT", f"/{bucket}/k?tagging", body=body)
    assert status == 400 and b"<Code>MalformedXML</Code>" in answer


def test_tags_of_each_version_are_separate(s3, bucket):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"1", Tagging="v=1")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="k", Body=b"2", Tagging="v=2")["VersionId"]
    assert tags_of(s3, bucket, "k") == {"v": "2"}
    assert tags_of(s3, bucket, "k", VersionId=v1) == {"v": "1"}
    put = s3.put_object_tagging(Bucket=bucket, Key="k", VersionId=v1,
                                Tagging=tag_set({"v": "one"}))
    assert put["VersionId"] == v1
    got = s3.get_object_tagging(Bucket=bucket, Key="k", VersionId=v1)
    assert got["VersionId"] == v1 and got["TagSet"] == [{"Key": "v", "Value": "one"}]
    assert tags_of(s3, bucket, "k") == {"v": "2"}
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["VersionId"] == v2
    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=tag_set({"v": "two"}))
    assert s3.get_object(Bucket=bucket, Key="k", VersionId=v2)["TagCount"] == 1
    assert tags_of(s3, bucket, "k", VersionId=v2) == {"v": "two"}
    s3.delete_object_tagging(Bucket=bucket, Key="k", VersionId=v1)
    assert tags_of(s3, bucket, "k", VersionId=v1) == {}
    assert tags_of(s3, bucket, "k") == {"v": "two"}


def test_tagging_versions_that_do_not_exist_or_are_markers(s3, bucket):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=bucket, Key="k", Body=b"1")
    marker = s3.delete_object(Bucket=bucket, Key="k")["VersionId"]
    with pytest.raises(ClientError) as e:
        s3.put_object_tagging(Bucket=bucket, Key="k", VersionId="A" * 32,
                              Tagging=tag_set({"a": "1"}))
    assert error_code(e) == ("NoSuchVersion", 404)
    with pytest.raises(ClientError) as e:
        s3.put_object_tagging(Bucket=bucket, Key="k", VersionId=marker,
                              Tagging=tag_set({"a": "1"}))
    assert error_code(e) == ("MethodNotAllowed", 405)
    with pytest.raises(ClientError) as e:
        s3.get_object_tagging(Bucket=bucket, Key="k")
    assert error_code(e) == ("NoSuchKey", 404)


def test_copy_keeps_tags_or_replaces_them_by_directive(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"x", Tagging="a=1&b=2")
    source = {"Bucket": bucket, "Key": "src"}
    s3.copy_object(Bucket=bucket, Key="copied", CopySource=source)
    assert tags_of(s3, bucket, "copied") == {"a": "1", "b": "2"}
    s3.copy_object(Bucket=bucket, Key="replaced", CopySource=source, Tagging="c=3",
                   TaggingDirective="REPLACE")
    assert tags_of(s3, bucket, "replaced") == {"c": "3"}
    s3.copy_object(Bucket=bucket, Key="cleared", CopySource=source, TaggingDirective="REPLACE")
    assert tags_of(s3, bucket, "cleared") == {}
    s3.copy_object(Bucket=bucket, Key="meta", CopySource=source, MetadataDirective="REPLACE",
                   Metadata={"m": "1"})
    assert tags_of(s3, bucket, "meta") == {"a": "1", "b": "2"}


def test_copy_with_bad_tagging_directive_or_tags(node, s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"x")
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"},
                       Tagging="&".join(f"k{i}=v" for i in range(11)),
                       TaggingDirective="REPLACE")
    assert error_code(e) == ("InvalidTag", 400)
    status, answer = raw_request(node, "PUT", f"/{bucket}/dst", headers={
        "x-amz-copy-source": f"/{bucket}/src", "x-amz-tagging-directive": "MERGE"})
    assert status == 400 and b"<Code>InvalidArgument</Code>" in answer


def test_multipart_upload_keeps_the_tags_it_was_created_with(s3, bucket):
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp", Tagging="kind=mp")["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=1, Body=b"abc")
    s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    assert tags_of(s3, bucket, "mp") == {"kind": "mp"}
    with pytest.raises(ClientError) as e:
        s3.create_multipart_upload(Bucket=bucket, Key="bad", Tagging="k=" + "v" * 257)
    assert error_code(e) == ("InvalidTag", 400)


# ---- bucket tags ------------------------------------------------------------------------------


def test_bucket_without_tags_is_no_such_tag_set(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.get_bucket_tagging(Bucket=bucket)
    assert error_code(e) == ("NoSuchTagSet", 404)


def test_put_get_delete_bucket_tagging(s3, bucket):
    tags = {f"key{i}": f"value{i}" for i in range(50)}
    answer = s3.put_bucket_tagging(Bucket=bucket, Tagging=tag_set(tags))
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 204
    got = s3.get_bucket_tagging(Bucket=bucket)["TagSet"]
    assert {t["Key"]: t["Value"] for t in got} == tags
    s3.put_bucket_tagging(Bucket=bucket, Tagging=tag_set({"only": "one"}))
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "only", "Value": "one"}]
    deleted = s3.delete_bucket_tagging(Bucket=bucket)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as e:
        s3.get_bucket_tagging(Bucket=bucket)
    assert error_code(e) == ("NoSuchTagSet", 404)


def test_bucket_tag_limits(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.put_bucket_tagging(Bucket=bucket, Tagging=tag_set({f"k{i}": "v" for i in range(51)}))
    assert error_code(e) == ("InvalidTag", 400)
    duplicated = {"TagSet": [{"Key": "a", "Value": "1"}, {"Key": "a", "Value": "2"}]}
    with pytest.raises(ClientError) as e:
        s3.put_bucket_tagging(Bucket=bucket, Tagging=duplicated)
    assert error_code(e) == ("InvalidTag", 400)
    with pytest.raises(ClientError) as e:
        s3.get_bucket_tagging(Bucket=bucket)
    assert error_code(e) == ("NoSuchTagSet", 404)


def test_bucket_tagging_of_a_missing_bucket(s3):
    with pytest.raises(ClientError) as e:
        s3.get_bucket_tagging(Bucket="no-such-bucket-for-tags")
    assert error_code(e) == ("NoSuchBucket", 404)
