"""Conditional deletes (AWS, 2025): DeleteObject with If-Match and DeleteObjects with a per-object
<ETag> delete only while the current version has that ETag ("*": any current version). A
mismatch is 412 PreconditionFailed, no current version (none, or a delete marker) is 404
NoSuchKey, and a refused delete changes nothing: no delete marker, no lost object."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from s3util import error_code


def test_delete_object_if_match(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="k", Body=b"one")["ETag"]
    with pytest.raises(ClientError) as exc:
        s3.delete_object(Bucket=bucket, Key="k", IfMatch='"0123456789abcdef0123456789abcdef"')
    assert error_code(exc) == ("PreconditionFailed", 412)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"one"  # still there
    s3.delete_object(Bucket=bucket, Key="k", IfMatch=etag)
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="k")
    assert error_code(exc)[1] == 404
    for condition in (etag, "*"):  # nothing left to match
        with pytest.raises(ClientError) as exc:
            s3.delete_object(Bucket=bucket, Key="k", IfMatch=condition)
        assert error_code(exc) == ("NoSuchKey", 404)
    s3.put_object(Bucket=bucket, Key="k", Body=b"two")
    s3.delete_object(Bucket=bucket, Key="k", IfMatch="*")
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_delete_object_if_match_in_a_versioned_bucket_looks_at_the_current_version(s3, bucket):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket=bucket, Key="k", Body=b"one")
    s3.put_object(Bucket=bucket, Key="k", Body=b"two")
    with pytest.raises(ClientError) as exc:  # the ETag of an older version does not hold
        s3.delete_object(Bucket=bucket, Key="k", IfMatch=first["ETag"])
    assert error_code(exc) == ("PreconditionFailed", 412)
    assert len(s3.list_object_versions(Bucket=bucket).get("DeleteMarkers", [])) == 0
    done = s3.delete_object(Bucket=bucket, Key="k", IfMatch="*")
    assert done["DeleteMarker"] is True
    with pytest.raises(ClientError) as exc:  # the current version is now a delete marker
        s3.delete_object(Bucket=bucket, Key="k", IfMatch="*")
    assert error_code(exc) == ("NoSuchKey", 404)
    versions = s3.list_object_versions(Bucket=bucket)
    assert (len(versions["Versions"]), len(versions["DeleteMarkers"])) == (2, 1)


def test_delete_objects_with_etags(s3, bucket):
    right = s3.put_object(Bucket=bucket, Key="right", Body=b"r")["ETag"]
    s3.put_object(Bucket=bucket, Key="wrong", Body=b"w")
    s3.put_object(Bucket=bucket, Key="plain", Body=b"p")
    result = s3.delete_objects(Bucket=bucket, Delete={"Objects": [
        {"Key": "right", "ETag": right},
        {"Key": "wrong", "ETag": right},
        {"Key": "absent", "ETag": "*"},
        {"Key": "plain"},
    ]})
    assert sorted(d["Key"] for d in result["Deleted"]) == ["plain", "right"]
    assert sorted((e["Key"], e["Code"]) for e in result["Errors"]) == [
        ("absent", "NoSuchKey"), ("wrong", "PreconditionFailed")]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["wrong"]
