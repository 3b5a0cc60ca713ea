"""Bucket versioning through boto3 (single node and cluster), and the state machine's version
bookkeeping (references, the pre-versioning `null` version) as units."""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET

import pytest
from botocore.exceptions import ClientError
from s3util import error_code, raw_request

from anode.meta import commands as c
from anode.meta.store import MetaStore, open_db

MISSING_VERSION = "A" * 32  # well-formed, never issued


def enable(s3, bucket: str, status: str = "Enabled") -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": status})


def versions_of(node, bucket: str) -> list[tuple[str, str, bool, bool]]:
    """(key, version id, is latest, is delete marker) in the order of the raw listing (boto3
    splits versions from delete markers and so loses it)."""
    status, body = raw_request(node, "GET", f"/{bucket}?versions")
    assert status == 200, body
    entries = []
    for element in ET.fromstring(body):
        name = element.tag.rsplit("}", 1)[-1]
        if name in ("Version", "DeleteMarker"):
            fields = {child.tag.rsplit("}", 1)[-1]: child.text for child in element}
            entries.append((fields["Key"], fields["VersionId"], fields["IsLatest"] == "true",
                            name == "DeleteMarker"))
    return entries


# ---- configuration ----------------------------------------------------------------------------


def test_new_bucket_has_no_versioning_status(s3, bucket):
    config = s3.get_bucket_versioning(Bucket=bucket)
    assert "Status" not in config


def test_versioning_can_be_enabled_and_suspended(s3, bucket):
    enable(s3, bucket)
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    enable(s3, bucket, "Suspended")
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Suspended"


@pytest.mark.parametrize("body", [
    b"",
    b"not xml",
    b"<VersioningConfiguration><Status>On</Status></VersioningConfiguration>",
    b"<Versioning><Status>Enabled</Status></Versioning>",
    b"<VersioningConfiguration><Status>Enabled</Status><MfaDelete>Maybe</MfaDelete>"
    b"</VersioningConfiguration>",
])
def test_bad_versioning_configuration_is_malformed_xml(node, s3, bucket, body):
    status, answer = raw_request(node, "PUT", f"/{bucket}?versioning", body=body)
    assert status == 400 and b"<Code>MalformedXML</Code>" in answer
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)


def test_versioning_of_a_missing_bucket_is_no_such_bucket(s3):
    with pytest.raises(ClientError) as e:
        s3.get_bucket_versioning(Bucket="no-such-bucket-for-versioning")
    assert error_code(e) == ("NoSuchBucket", 404)


# ---- writes and reads by version --------------------------------------------------------------


def test_unversioned_bucket_sends_no_version_headers(s3, bucket):
    put = s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert "VersionId" not in put
    assert "VersionId" not in s3.head_object(Bucket=bucket, Key="k")
    deleted = s3.delete_object(Bucket=bucket, Key="k")
    assert "VersionId" not in deleted and "DeleteMarker" not in deleted


def test_each_put_makes_a_version_readable_by_id(node, s3, bucket):
    enable(s3, bucket)
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"one")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="k", Body=b"two")["VersionId"]
    assert v1 != v2 and "null" not in (v1, v2)
    current = s3.get_object(Bucket=bucket, Key="k")
    assert current["Body"].read() == b"two" and current["VersionId"] == v2
    old = s3.get_object(Bucket=bucket, Key="k", VersionId=v1)
    assert old["Body"].read() == b"one" and old["VersionId"] == v1
    assert s3.head_object(Bucket=bucket, Key="k", VersionId=v1)["ContentLength"] == 3
    assert versions_of(node, bucket) == [("k", v2, True, False), ("k", v1, False, False)]


def test_wrong_version_ids(s3, bucket):
    enable(s3, bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="k", VersionId=MISSING_VERSION)
    assert error_code(e) == ("NoSuchVersion", 404)
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="k", VersionId=MISSING_VERSION)
    assert error_code(e)[1] == 404
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="k", VersionId="not-a-version")
    assert error_code(e) == ("InvalidArgument", 400)
    with pytest.raises(ClientError) as e:
        s3.get_object_tagging(Bucket=bucket, Key="k", VersionId=MISSING_VERSION)
    assert error_code(e) == ("NoSuchVersion", 404)


def test_delete_leaves_a_marker_and_old_versions(node, s3, bucket):
    enable(s3, bucket)
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"one")["VersionId"]
    deleted = s3.delete_object(Bucket=bucket, Key="k")
    assert deleted["DeleteMarker"] is True
    marker = deleted["VersionId"]
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="k")
    assert error_code(e) == ("NoSuchKey", 404)
    headers = e.value.response["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-amz-delete-marker"] == "true" and headers["x-amz-version-id"] == marker
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="k", VersionId=marker)
    assert error_code(e) == ("MethodNotAllowed", 405)
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    assert s3.get_object(Bucket=bucket, Key="k", VersionId=v1)["Body"].read() == b"one"
    assert versions_of(node, bucket) == [("k", marker, True, True), ("k", v1, False, False)]


def test_deleting_the_marker_restores_the_object(s3, bucket):
    enable(s3, bucket)
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"one")["VersionId"]
    marker = s3.delete_object(Bucket=bucket, Key="k")["VersionId"]
    undone = s3.delete_object(Bucket=bucket, Key="k", VersionId=marker)
    assert undone["DeleteMarker"] is True and undone["VersionId"] == marker
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["Body"].read() == b"one" and got["VersionId"] == v1


def test_deleting_versions_permanently_empties_the_bucket(node, s3, bucket):
    enable(s3, bucket)
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"one")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="k", Body=b"two")["VersionId"]
    with pytest.raises(ClientError) as e:
        s3.delete_bucket(Bucket=bucket)
    assert error_code(e) == ("BucketNotEmpty", 409)
    gone = s3.delete_object(Bucket=bucket, Key="k", VersionId=v2)
    assert gone["VersionId"] == v2 and "DeleteMarker" not in gone
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"one"  # v1 is current again
    s3.delete_object(Bucket=bucket, Key="k", VersionId=v1)
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="k")
    assert error_code(e)[1] == 404
    assert versions_of(node, bucket) == []
    s3.delete_bucket(Bucket=bucket)


def test_deleting_a_missing_version_succeeds(s3, bucket):
    enable(s3, bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    answer = s3.delete_object(Bucket=bucket, Key="k", VersionId=MISSING_VERSION)
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"
    with pytest.raises(ClientError) as e:
        s3.delete_object(Bucket=bucket, Key="k", VersionId="bad id")
    assert error_code(e) == ("InvalidArgument", 400)


def test_objects_written_before_versioning_become_the_null_version(node, s3, bucket):
    s3.put_object(Bucket=bucket, Key="old", Body=b"before")
    enable(s3, bucket)
    assert s3.head_object(Bucket=bucket, Key="old")["VersionId"] == "null"
    v1 = s3.put_object(Bucket=bucket, Key="old", Body=b"after")["VersionId"]
    assert s3.get_object(Bucket=bucket, Key="old", VersionId="null")["Body"].read() == b"before"
    assert versions_of(node, bucket) == [("old", v1, True, False), ("old", "null", False, False)]
    s3.delete_object(Bucket=bucket, Key="old", VersionId="null")
    assert versions_of(node, bucket) == [("old", v1, True, False)]


def test_listing_merges_pre_versioning_keys_with_versioned_ones(node, s3, bucket):
    for key in ("a", "c", "e"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"old")
    enable(s3, bucket)
    b1 = s3.put_object(Bucket=bucket, Key="b", Body=b"new")["VersionId"]
    c1 = s3.put_object(Bucket=bucket, Key="c", Body=b"new")["VersionId"]
    d1 = s3.delete_object(Bucket=bucket, Key="d")["VersionId"]
    assert versions_of(node, bucket) == [
        ("a", "null", True, False), ("b", b1, True, False), ("c", c1, True, False),
        ("c", "null", False, False), ("d", d1, True, True), ("e", "null", True, False)]
    page = s3.list_object_versions(Bucket=bucket, KeyMarker="c", VersionIdMarker=c1)
    assert [(v["Key"], v["VersionId"]) for v in page["Versions"]] == [("c", "null"), ("e", "null")]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["a", "b", "c", "e"]


def test_part_copy_from_a_source_version(s3, bucket):
    enable(s3, bucket)
    v1 = s3.put_object(Bucket=bucket, Key="src", Body=b"first")["VersionId"]
    s3.put_object(Bucket=bucket, Key="src", Body=b"second")
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    part = s3.upload_part_copy(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=1,
                               CopySource={"Bucket": bucket, "Key": "src", "VersionId": v1})
    assert part["CopySourceVersionId"] == v1
    s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["CopyPartResult"]["ETag"]}]})
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == b"first"


def test_listing_versions_of_a_never_versioned_bucket_shows_null_versions(node, s3, bucket):
    s3.put_object(Bucket=bucket, Key="a", Body=b"x")
    s3.put_object(Bucket=bucket, Key="b", Body=b"y")
    assert versions_of(node, bucket) == [("a", "null", True, False), ("b", "null", True, False)]


def test_suspended_bucket_overwrites_the_null_version_and_keeps_the_others(node, s3, bucket):
    enable(s3, bucket)
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"one")["VersionId"]
    enable(s3, bucket, "Suspended")
    put = s3.put_object(Bucket=bucket, Key="k", Body=b"two")
    assert "VersionId" not in put  # S3 names no `null` version it creates
    s3.put_object(Bucket=bucket, Key="k", Body=b"three")
    assert versions_of(node, bucket) == [("k", "null", True, False), ("k", v1, False, False)]
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"three"
    deleted = s3.delete_object(Bucket=bucket, Key="k")
    assert deleted["DeleteMarker"] is True and deleted["VersionId"] == "null"
    assert versions_of(node, bucket) == [("k", "null", True, True), ("k", v1, False, False)]
    enable(s3, bucket)
    v3 = s3.put_object(Bucket=bucket, Key="k", Body=b"four")["VersionId"]
    assert versions_of(node, bucket) == [
        ("k", v3, True, False), ("k", "null", False, True), ("k", v1, False, False)]


def test_copy_from_an_old_version_restores_it(node, s3, bucket):
    enable(s3, bucket)
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"one")["VersionId"]
    s3.put_object(Bucket=bucket, Key="k", Body=b"two")
    copied = s3.copy_object(Bucket=bucket, Key="k",
                            CopySource={"Bucket": bucket, "Key": "k", "VersionId": v1})
    assert copied["CopySourceVersionId"] == v1
    assert copied["VersionId"] not in (v1, "null")
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["Body"].read() == b"one" and got["VersionId"] == copied["VersionId"]
    assert len(versions_of(node, bucket)) == 3


def test_copy_source_version_errors(s3, bucket):
    enable(s3, bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"one")
    marker = s3.delete_object(Bucket=bucket, Key="k")["VersionId"]
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="dst",
                       CopySource={"Bucket": bucket, "Key": "k", "VersionId": MISSING_VERSION})
    assert error_code(e) == ("NoSuchVersion", 404)
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="dst",
                       CopySource={"Bucket": bucket, "Key": "k", "VersionId": marker})
    assert error_code(e) == ("InvalidRequest", 400)
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "k"})
    assert error_code(e) == ("NoSuchKey", 404)


def test_multipart_upload_gets_a_version_id(node, s3, bucket):
    enable(s3, bucket)
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=1, Body=b"abc")
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    assert done["VersionId"] == s3.head_object(Bucket=bucket, Key="mp")["VersionId"]
    assert versions_of(node, bucket) == [("mp", done["VersionId"], True, False)]


def test_delete_objects_with_and_without_version_ids(node, s3, bucket):
    enable(s3, bucket)
    a1 = s3.put_object(Bucket=bucket, Key="a", Body=b"1")["VersionId"]
    b1 = s3.put_object(Bucket=bucket, Key="b", Body=b"1")["VersionId"]
    answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": [
        {"Key": "a"}, {"Key": "b", "VersionId": b1}, {"Key": "c", "VersionId": "bad"}]})
    deleted = {d["Key"]: d for d in answer["Deleted"]}
    assert deleted["a"]["DeleteMarker"] is True and deleted["a"]["DeleteMarkerVersionId"]
    assert deleted["b"]["VersionId"] == b1 and "DeleteMarker" not in deleted["b"]
    assert [(e["Key"], e["Code"]) for e in answer["Errors"]] == [("c", "NoSuchVersion")]
    marker = deleted["a"]["DeleteMarkerVersionId"]
    assert versions_of(node, bucket) == [("a", marker, True, True), ("a", a1, False, False)]
    again = s3.delete_objects(Bucket=bucket, Delete={"Objects": [
        {"Key": "a", "VersionId": marker}, {"Key": "a", "VersionId": a1}]})
    entries = {d["VersionId"]: d for d in again["Deleted"]}
    assert entries[marker]["DeleteMarker"] is True
    assert entries[marker]["DeleteMarkerVersionId"] == marker
    assert versions_of(node, bucket) == []


def test_delete_on_an_enabled_bucket_marks_even_a_missing_key(node, s3, bucket):
    enable(s3, bucket)
    deleted = s3.delete_object(Bucket=bucket, Key="never")
    assert deleted["DeleteMarker"] is True
    assert versions_of(node, bucket) == [("never", deleted["VersionId"], True, True)]


# ---- ListObjectVersions -----------------------------------------------------------------------


def test_list_versions_pages_with_key_and_version_markers(s3, bucket):
    enable(s3, bucket)
    expected = []
    for key in ("a", "b", "c"):
        ids = [s3.put_object(Bucket=bucket, Key=key, Body=b"x")["VersionId"] for _ in range(3)]
        expected += [(key, vid) for vid in reversed(ids)]
    seen = []
    kwargs: dict = {}
    pages = 0
    while True:
        page = s3.list_object_versions(Bucket=bucket, MaxKeys=2, **kwargs)
        pages += 1
        assert page["MaxKeys"] == 2
        seen += [(v["Key"], v["VersionId"]) for v in page.get("Versions", [])]
        if not page["IsTruncated"]:
            break
        assert page["NextVersionIdMarker"] == seen[-1][1]
        kwargs = {"KeyMarker": page["NextKeyMarker"],
                  "VersionIdMarker": page["NextVersionIdMarker"]}
    assert seen == expected and pages == 5
    paginated = [(v["Key"], v["VersionId"])
                 for p in s3.get_paginator("list_object_versions").paginate(
                     Bucket=bucket, PaginationConfig={"PageSize": 4})
                 for v in p.get("Versions", [])]
    assert paginated == expected


def test_list_versions_key_marker_alone_skips_that_key(s3, bucket):
    enable(s3, bucket)
    for key in ("a", "b"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
        s3.put_object(Bucket=bucket, Key=key, Body=b"y")
    listing = s3.list_object_versions(Bucket=bucket, KeyMarker="a")
    assert [v["Key"] for v in listing["Versions"]] == ["b", "b"]
    assert [v["IsLatest"] for v in listing["Versions"]] == [True, False]


def test_list_versions_prefix_and_delimiter(s3, bucket):
    enable(s3, bucket)
    for key in ("dir/a", "dir/b", "dir/sub/c", "top", "zz/x"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    s3.delete_object(Bucket=bucket, Key="top")
    root = s3.list_object_versions(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in root["CommonPrefixes"]] == ["dir/", "zz/"]
    assert [v["Key"] for v in root["Versions"]] == ["top"]
    assert [m["Key"] for m in root["DeleteMarkers"]] == ["top"]
    inner = s3.list_object_versions(Bucket=bucket, Prefix="dir/", Delimiter="/")
    assert [v["Key"] for v in inner["Versions"]] == ["dir/a", "dir/b"]
    assert [p["Prefix"] for p in inner["CommonPrefixes"]] == ["dir/sub/"]
    assert inner["Prefix"] == "dir/" and inner["Delimiter"] == "/"
    first = s3.list_object_versions(Bucket=bucket, Delimiter="/", MaxKeys=1)
    assert first["IsTruncated"] and first["NextKeyMarker"] == "dir/"
    second = s3.list_object_versions(Bucket=bucket, Delimiter="/", MaxKeys=1,
                                     KeyMarker=first["NextKeyMarker"])
    assert second.get("Versions", []) == [] and second.get("DeleteMarkers", [])[0]["Key"] == "top"


def test_list_versions_argument_errors(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.list_object_versions(Bucket=bucket, VersionIdMarker=MISSING_VERSION)
    assert error_code(e) == ("InvalidArgument", 400)
    with pytest.raises(ClientError) as e:
        s3.list_object_versions(Bucket=bucket, KeyMarker="a", VersionIdMarker="nope")
    assert error_code(e) == ("InvalidArgument", 400)


def test_list_versions_xml_interleaves_markers_in_order(node, s3, bucket):
    enable(s3, bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    s3.delete_object(Bucket=bucket, Key="k")
    s3.put_object(Bucket=bucket, Key="k", Body=b"y")
    status, body = raw_request(node, "GET", f"/{bucket}?versions")
    assert status == 200
    text = body.decode()
    assert text.index("<Version>") < text.index("<DeleteMarker>") < text.rindex("<Version>")
    assert text.count("<IsLatest>true</IsLatest>") == 1


# ---- the state machine ------------------------------------------------------------------------


@pytest.fixture
def meta(tmp_path):
    store = MetaStore(open_db(tmp_path / "meta"))
    store.state_machine.apply(c.CreateBucket(bucket="b", owner="root", created=1.0))
    yield store
    store.close()


def _record(data: bytes) -> dict:
    digest = hashlib.sha256(data).digest()
    return {"size": len(data), "etag": f'"{hashlib.md5(data).hexdigest()}"', "mtime": 1.0,
            "chunks": [[digest, len(data)]], "owner": "root"}


def test_every_version_holds_its_chunks_until_deleted_permanently(meta):
    sm = meta.state_machine
    one, two = _record(b"one"), _record(b"two")
    sm.apply(c.PutObject(bucket="b", key="k", record=one))  # before versioning: O/ only
    sm.apply(c.SetBucketVersioning(bucket="b", status="Enabled"))
    v2 = sm.apply(c.PutObject(bucket="b", key="k", record=two, version_id="v2"))["version_id"]
    assert v2 == "v2"
    d1, d2 = one["chunks"][0][0], two["chunks"][0][0]
    assert meta.chunk_refs(d1) == 1 and meta.chunk_refs(d2) == 1
    [marker] = sm.apply(c.DeleteObjects(bucket="b", keys=("k",), marker_ids=("m",), mtime=2.0,
                                        owner="root"))
    assert marker == {"key": "k", "vid": None, "marker": True, "marker_vid": "m"}
    assert meta.object("b", "k") is None and meta.chunk_refs(d2) == 1
    assert [v["vid"] for v in meta.key_versions("b", "k")] == ["m", "v2", "null"]
    sm.apply(c.DeleteObjects(bucket="b", keys=("k", "k"), version_ids=("null", "v2")))
    assert meta.chunk_refs(d1) == 0 and meta.chunk_refs(d2) == 0
    assert set(meta.garbage()) == {d1, d2}
    assert isinstance(sm.apply(c.DeleteBucket(bucket="b")), c.Rejected)  # the marker is left
    sm.apply(c.DeleteObjects(bucket="b", keys=("k",), version_ids=("m",)))
    assert meta.stats()["objects"] == 0 and meta.stats()["logical_bytes"] == 0
    assert sm.apply(c.DeleteBucket(bucket="b")) is None


def test_one_command_sees_its_own_version_writes(meta):
    """DeleteObjects may name a key twice: the second delete must see the first's marker."""
    sm = meta.state_machine
    sm.apply(c.SetBucketVersioning(bucket="b", status="Enabled"))
    sm.apply(c.PutObject(bucket="b", key="k", record=_record(b"x"), version_id="v1"))
    results = sm.apply(c.DeleteObjects(bucket="b", keys=("k", "k", "k"),
                                       version_ids=(None, None, "m1"), marker_ids=("m1", "m2", "")))
    assert [r.get("marker_vid") for r in results] == ["m1", "m2", "m1"]
    assert [v["vid"] for v in meta.key_versions("b", "k")] == ["m2", "v1"]
    sm.apply(c.SetBucketVersioning(bucket="b", status="Suspended"))
    sm.apply(c.DeleteObjects(bucket="b", keys=("k", "k")))
    assert [v["vid"] for v in meta.key_versions("b", "k")] == ["null", "m2", "v1"]
    sm.apply(c.DeleteObjects(bucket="b", keys=("k",), version_ids=("m2",)))
    assert meta.object("b", "k") is None  # the null marker is still the newest


def test_force_deleting_a_versioned_bucket_releases_every_version(meta):
    sm = meta.state_machine
    sm.apply(c.SetBucketVersioning(bucket="b", status="Enabled"))
    records = [_record(bytes([i])) for i in range(3)]
    for i, record in enumerate(records):
        sm.apply(c.PutObject(bucket="b", key="k", record=record, version_id=f"v{i}"))
    assert sm.apply(c.DeleteBucket(bucket="b", force=True)) is None
    assert all(meta.chunk_refs(r["chunks"][0][0]) == 0 for r in records)
    assert meta.stats()["objects"] == 0


def test_a_version_id_is_derived_deterministically_when_the_proposer_gave_none(meta):
    sm = meta.state_machine
    sm.apply(c.SetBucketVersioning(bucket="b", status="Enabled"))
    vid = sm.apply(c.PutObject(bucket="b", key="k", record=_record(b"x")))["version_id"]
    assert vid and len(vid) == 32


def test_new_commands_survive_encoding():
    commands = [
        c.SetBucketVersioning(bucket="b", status="Enabled"),
        c.SetObjectTagging(bucket="b", key="k", version_id=None, tags=(("a", "1"),)),
        c.SetBucketTagging(bucket="b", tags=None),
        c.DeleteObjects(bucket="b", keys=("k",), version_ids=(None,), marker_ids=("m",)),
    ]
    for command in commands:
        assert c.decode(c.encode(command)) == command


# ---- more edges, through S3 -----------------------------------------------------------------


def test_head_of_a_delete_marker_version_is_method_not_allowed(s3, bucket):
    enable(s3, bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    marker = s3.delete_object(Bucket=bucket, Key="k")["VersionId"]
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="k", VersionId=marker)
    headers = e.value.response["ResponseMetadata"]["HTTPHeaders"]
    assert error_code(e)[1] == 405 and headers["x-amz-delete-marker"] == "true"
    assert "last-modified" in headers
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="k")
    headers = e.value.response["ResponseMetadata"]["HTTPHeaders"]
    assert error_code(e)[1] == 404 and headers["x-amz-version-id"] == marker


def test_mfa_delete_is_not_implemented(node, bucket):
    body = (b"<VersioningConfiguration><Status>Enabled</Status><MfaDelete>Enabled</MfaDelete>"
            b"</VersioningConfiguration>")
    status, answer = raw_request(node, "PUT", f"/{bucket}?versioning", body=body)
    assert status == 501 and b"<Code>NotImplemented</Code>" in answer


def test_list_versions_url_encoding_and_zero_max_keys(s3, bucket):
    enable(s3, bucket)
    s3.put_object(Bucket=bucket, Key="a b+c", Body=b"x")
    listing = s3.list_object_versions(Bucket=bucket, EncodingType="url")
    assert listing["EncodingType"] == "url"
    assert [v["Key"] for v in listing["Versions"]] == ["a%20b%2Bc"]
    empty = s3.list_object_versions(Bucket=bucket, MaxKeys=0)
    assert empty["IsTruncated"] is False and "Versions" not in empty


def test_delete_objects_in_a_suspended_bucket_replaces_the_null_version(node, s3, bucket):
    enable(s3, bucket)
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"1")["VersionId"]
    enable(s3, bucket, "Suspended")
    s3.put_object(Bucket=bucket, Key="k", Body=b"null")
    answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "k"}]})
    assert answer["Deleted"] == [
        {"Key": "k", "DeleteMarker": True, "DeleteMarkerVersionId": "null"}]
    assert versions_of(node, bucket) == [("k", "null", True, True), ("k", v1, False, False)]


def test_versions_listing_shows_owner_size_and_etag(s3, bucket):
    enable(s3, bucket)
    put = s3.put_object(Bucket=bucket, Key="k", Body=b"hello")
    s3.delete_object(Bucket=bucket, Key="k")
    listing = s3.list_object_versions(Bucket=bucket)
    [version] = listing["Versions"]
    assert version["ETag"] == put["ETag"] and version["Size"] == 5
    assert version["StorageClass"] == "STANDARD" and version["Owner"]["ID"]
    [marker] = listing["DeleteMarkers"]
    assert marker["IsLatest"] is True and marker["Owner"]["ID"] == version["Owner"]["ID"]
    assert listing["Name"] == bucket and listing["KeyMarker"] == ""
