"""ListObjects V1/V2, ListBuckets: prefixes, delimiters, paging, encoding."""

from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError
from s3util import error_code, raw_request

KEYS = ["a/1", "a/2", "a/b/3", "b/1", "c", "d/x/y", "e+f g", "z"]


@pytest.fixture
def filled(s3, bucket):
    for key in KEYS:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    return bucket


def all_pages_v2(s3, bucket, **kwargs):
    keys, prefixes, token = [], [], None
    while True:
        args = dict(kwargs, **({"ContinuationToken": token} if token else {}))
        page = s3.list_objects_v2(Bucket=bucket, **args)
        contents, common = page.get("Contents", []), page.get("CommonPrefixes", [])
        keys += [o["Key"] for o in contents]
        prefixes += [p["Prefix"] for p in common]
        assert page["KeyCount"] == len(contents) + len(common)
        if not page["IsTruncated"]:
            return keys, prefixes
        token = page["NextContinuationToken"]


def test_list_v2_all_keys_in_order(s3, filled):
    page = s3.list_objects_v2(Bucket=filled)
    assert [o["Key"] for o in page["Contents"]] == sorted(KEYS)
    assert page["Contents"][0]["Size"] == len(b"a/1")
    assert page["Contents"][0]["ETag"].startswith('"')
    assert "Owner" not in page["Contents"][0]


def test_list_v2_prefix_and_delimiter(s3, filled):
    page = s3.list_objects_v2(Bucket=filled, Delimiter="/")
    assert [o["Key"] for o in page["Contents"]] == ["c", "e+f g", "z"]
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["a/", "b/", "d/"]
    page = s3.list_objects_v2(Bucket=filled, Prefix="a/", Delimiter="/")
    assert [o["Key"] for o in page["Contents"]] == ["a/1", "a/2"]
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["a/b/"]


@pytest.mark.parametrize("max_keys", [1, 2, 3, 5])
def test_list_v2_paging_with_delimiter_visits_everything_once(s3, filled, max_keys):
    keys, prefixes = all_pages_v2(s3, filled, Delimiter="/", MaxKeys=max_keys)
    assert keys == ["c", "e+f g", "z"]
    assert prefixes == ["a/", "b/", "d/"]


@pytest.mark.parametrize("max_keys", [1, 3, 7])
def test_list_v2_paging_without_delimiter(s3, filled, max_keys):
    keys, _ = all_pages_v2(s3, filled, MaxKeys=max_keys)
    assert keys == sorted(KEYS)


def test_list_v2_start_after_and_fetch_owner(s3, filled):
    page = s3.list_objects_v2(Bucket=filled, StartAfter="b/1", FetchOwner=True)
    assert [o["Key"] for o in page["Contents"]] == ["c", "d/x/y", "e+f g", "z"]
    assert page["Contents"][0]["Owner"]["DisplayName"] == "root"
    assert len(page["Contents"][0]["Owner"]["ID"]) == 64


def test_list_v1_marker_and_next_marker(s3, filled):
    page = s3.list_objects(Bucket=filled, MaxKeys=2)
    assert [o["Key"] for o in page["Contents"]] == ["a/1", "a/2"]
    assert page["IsTruncated"]
    page = s3.list_objects(Bucket=filled, Marker="a/2", MaxKeys=100)
    assert [o["Key"] for o in page["Contents"]] == sorted(KEYS)[2:]
    assert page["Contents"][0]["Owner"]["DisplayName"] == "root"
    page = s3.list_objects(Bucket=filled, Delimiter="/", MaxKeys=2)
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["a/", "b/"]
    assert page["NextMarker"] == "b/"
    page = s3.list_objects(Bucket=filled, Delimiter="/", Marker=page["NextMarker"])
    assert [o["Key"] for o in page["Contents"]] == ["c", "e+f g", "z"]
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["d/"]


def test_list_encoding_type_url(s3, filled):
    # boto3 asks for url encoding by default and decodes; asked explicitly, it leaves keys encoded
    page = s3.list_objects_v2(Bucket=filled, Prefix="e")
    assert [o["Key"] for o in page["Contents"]] == ["e+f g"]
    page = s3.list_objects_v2(Bucket=filled, Prefix="e", EncodingType="url")
    assert [o["Key"] for o in page["Contents"]] == ["e%2Bf%20g"]
    raw = []
    s3.meta.events.register("after-call.s3.ListObjectsV2",
                            lambda http_response, **_: raw.append(http_response.content))
    s3.list_objects_v2(Bucket=filled, Prefix="e", EncodingType="url")
    assert b"<Key>e%2Bf%20g</Key>" in raw[0]


def test_list_max_keys_zero_and_invalid(s3, filled):
    page = s3.list_objects_v2(Bucket=filled, MaxKeys=0)
    assert page["KeyCount"] == 0 and not page.get("Contents")
    with pytest.raises(ClientError) as exc:
        s3.list_objects_v2(Bucket=filled, ContinuationToken="***not-a-token***")
    assert error_code(exc) == ("InvalidArgument", 400)


def test_list_buckets_shows_owner_and_buckets(s3, bucket):
    result = s3.list_buckets()
    assert bucket in [b["Name"] for b in result["Buckets"]]
    assert result["Owner"]["DisplayName"] == "root"


def test_list_buckets_pages_by_max_buckets_prefix_and_region(s3, node):
    prefix = f"pg{uuid.uuid4().hex[:8]}-"
    names = [f"{prefix}{i}" for i in range(5)]
    for name in names:
        s3.create_bucket(Bucket=name)
    seen, token, pages = [], None, 0
    while True:
        page = s3.list_buckets(MaxBuckets=2, Prefix=prefix,
                               **({"ContinuationToken": token} if token else {}))
        pages += 1
        seen += [b["Name"] for b in page["Buckets"]]
        assert page["Prefix"] == prefix and len(page["Buckets"]) <= 2
        token = page.get("ContinuationToken")
        if token is None:
            break
    assert seen == names and pages == 3
    assert [b["Name"] for b in s3.list_buckets(Prefix=prefix)["Buckets"]] == names
    assert s3.list_buckets(Prefix=prefix, BucketRegion="us-east-1")["Buckets"]
    assert s3.list_buckets(Prefix=prefix, BucketRegion="eu-west-3")["Buckets"] == []
    for bad in ("0", "10001", "x"):
        status, body = raw_request(node, "GET", f"/?max-buckets={bad}")
        assert status == 400 and b"<Code>InvalidArgument</Code>" in body
    with pytest.raises(ClientError) as exc:
        s3.list_buckets(ContinuationToken="***not-a-token***")
    assert error_code(exc) == ("InvalidArgument", 400)


def test_list_missing_bucket(s3):
    with pytest.raises(ClientError) as exc:
        s3.list_objects_v2(Bucket="no-such-bucket-here")
    assert error_code(exc) == ("NoSuchBucket", 404)
