"""Object lock through boto3 (single node and cluster): lock-enabled buckets, default retention,
Put/GetObjectRetention, legal holds, x-amz-bypass-governance-retention, and the deletes and
retention changes that a lock refuses."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from botocore.exceptions import ClientError
from s3util import error_code

_names = count()


def lock_bucket(s3, **kwargs) -> str:
    name = f"lock-{os.getpid()}-{next(_names)}"
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True, **kwargs)
    return name


def future(seconds: float) -> datetime:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).replace(microsecond=0)


def test_lock_enabled_bucket_is_versioned_and_has_a_configuration(s3):
    name = lock_bucket(s3)
    assert s3.get_bucket_versioning(Bucket=name)["Status"] == "Enabled"
    config = s3.get_object_lock_configuration(Bucket=name)["ObjectLockConfiguration"]
    assert config == {"ObjectLockEnabled": "Enabled"}
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Suspended"})
    assert error_code(exc) == ("InvalidBucketState", 409)


def test_plain_bucket_has_no_lock_configuration(s3, bucket):
    with pytest.raises(ClientError) as exc:
        s3.get_object_lock_configuration(Bucket=bucket)
    assert error_code(exc) == ("ObjectLockConfigurationNotFoundError", 404)
    with pytest.raises(ClientError) as exc:
        s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled"})
    assert error_code(exc) == ("InvalidBucketState", 409)
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", ObjectLockMode="GOVERNANCE",
                      ObjectLockRetainUntilDate=future(60))
    assert error_code(exc) == ("InvalidRequest", 400)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(ClientError) as exc:
        s3.get_object_retention(Bucket=bucket, Key="k")
    assert error_code(exc) == ("InvalidRequest", 400)


def test_lock_can_be_enabled_on_a_versioned_bucket(s3, bucket):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled"})
    config = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    assert config == {"ObjectLockEnabled": "Enabled"}
    vid = s3.put_object(Bucket=bucket, Key="k", Body=b"x", ObjectLockLegalHoldStatus="ON")[
        "VersionId"]
    with pytest.raises(ClientError) as exc:
        s3.delete_object(Bucket=bucket, Key="k", VersionId=vid)
    assert error_code(exc) == ("AccessDenied", 403)
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    assert error_code(exc) == ("InvalidBucketState", 409)


def test_default_retention_applies_to_new_versions(s3):
    name = lock_bucket(s3)
    rule = {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}
    s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": rule})
    config = s3.get_object_lock_configuration(Bucket=name)["ObjectLockConfiguration"]
    assert config["Rule"] == rule
    vid = s3.put_object(Bucket=name, Key="k", Body=b"data")["VersionId"]
    retention = s3.get_object_retention(Bucket=name, Key="k", VersionId=vid)["Retention"]
    assert retention["Mode"] == "GOVERNANCE"
    expected = datetime.now(UTC) + timedelta(days=1)
    assert abs((retention["RetainUntilDate"] - expected).total_seconds()) < 60
    head = s3.head_object(Bucket=name, Key="k")
    assert head["ObjectLockMode"] == "GOVERNANCE"
    with pytest.raises(ClientError) as exc:
        s3.delete_object(Bucket=name, Key="k", VersionId=vid)
    assert error_code(exc) == ("AccessDenied", 403)
    s3.delete_object(Bucket=name, Key="k", VersionId=vid, BypassGovernanceRetention=True)
    assert s3.list_object_versions(Bucket=name).get("Versions") is None


@pytest.mark.parametrize("rule", [
    {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1, "Years": 1}},
    {"DefaultRetention": {"Mode": "FROZEN", "Days": 1}},
])
def test_invalid_lock_configuration_is_malformed(s3, rule):
    name = lock_bucket(s3)
    with pytest.raises(ClientError) as exc:
        s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled", "Rule": rule})
    assert error_code(exc) == ("MalformedXML", 400)
    with pytest.raises(ClientError) as exc:
        s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 0}}})
    assert error_code(exc) == ("InvalidArgument", 400)


def test_governance_retention_refuses_version_delete_without_bypass(s3):
    name = lock_bucket(s3)
    vid = s3.put_object(Bucket=name, Key="k", Body=b"x", ObjectLockMode="GOVERNANCE",
                        ObjectLockRetainUntilDate=future(3600))["VersionId"]
    with pytest.raises(ClientError) as exc:
        s3.delete_object(Bucket=name, Key="k", VersionId=vid)
    assert error_code(exc) == ("AccessDenied", 403)
    result = s3.delete_objects(Bucket=name, Delete={"Objects": [{"Key": "k", "VersionId": vid}]})
    assert result["Errors"][0]["Code"] == "AccessDenied"
    assert "Deleted" not in result
    # A delete without a version id only adds a delete marker, as in S3.
    marker = s3.delete_object(Bucket=name, Key="k")
    assert marker["DeleteMarker"] is True
    assert s3.get_object(Bucket=name, Key="k", VersionId=vid)["Body"].read() == b"x"
    # Shortening needs the bypass; extending does not.
    with pytest.raises(ClientError) as exc:
        s3.put_object_retention(Bucket=name, Key="k", VersionId=vid, Retention={
            "Mode": "GOVERNANCE", "RetainUntilDate": future(60)})
    assert error_code(exc) == ("AccessDenied", 403)
    s3.put_object_retention(Bucket=name, Key="k", VersionId=vid, Retention={
        "Mode": "GOVERNANCE", "RetainUntilDate": future(7200)})
    # Changing the mode, even to the stricter COMPLIANCE, alters the lock: bypass needed.
    with pytest.raises(ClientError) as exc:
        s3.put_object_retention(Bucket=name, Key="k", VersionId=vid, Retention={
            "Mode": "COMPLIANCE", "RetainUntilDate": future(7200)})
    assert error_code(exc) == ("AccessDenied", 403)
    assert s3.get_object_retention(Bucket=name, Key="k", VersionId=vid)["Retention"][
        "Mode"] == "GOVERNANCE"
    s3.put_object_retention(Bucket=name, Key="k", VersionId=vid, BypassGovernanceRetention=True,
                            Retention={"Mode": "GOVERNANCE", "RetainUntilDate": future(60)})
    s3.delete_objects(Bucket=name, BypassGovernanceRetention=True,
                      Delete={"Objects": [{"Key": "k", "VersionId": vid}]})
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=name, Key="k", VersionId=vid)
    assert error_code(exc)[1] == 404


def test_compliance_retention_cannot_be_shortened_or_bypassed(s3):
    name = lock_bucket(s3)
    until = future(4)
    vid = s3.put_object(Bucket=name, Key="k", Body=b"x", ObjectLockMode="COMPLIANCE",
                        ObjectLockRetainUntilDate=until)["VersionId"]
    got = s3.get_object_retention(Bucket=name, Key="k")["Retention"]
    assert got == {"Mode": "COMPLIANCE", "RetainUntilDate": until}
    for retention in ({"Mode": "GOVERNANCE", "RetainUntilDate": future(3600)},
                      {"Mode": "COMPLIANCE", "RetainUntilDate": future(2)}):
        with pytest.raises(ClientError) as exc:
            s3.put_object_retention(Bucket=name, Key="k", Retention=retention,
                                    BypassGovernanceRetention=True)
        assert error_code(exc) == ("AccessDenied", 403)
    with pytest.raises(ClientError) as exc:
        s3.delete_object(Bucket=name, Key="k", VersionId=vid, BypassGovernanceRetention=True)
    assert error_code(exc) == ("AccessDenied", 403)
    time.sleep(max(0.0, (until - datetime.now(UTC)).total_seconds()) + 0.5)
    s3.delete_object(Bucket=name, Key="k", VersionId=vid)  # expired: an ordinary version


def test_legal_hold_protects_until_released(s3):
    name = lock_bucket(s3)
    vid = s3.put_object(Bucket=name, Key="k", Body=b"x",
                        ObjectLockLegalHoldStatus="ON")["VersionId"]
    assert s3.get_object_legal_hold(Bucket=name, Key="k")["LegalHold"] == {"Status": "ON"}
    assert s3.head_object(Bucket=name, Key="k")["ObjectLockLegalHoldStatus"] == "ON"
    with pytest.raises(ClientError) as exc:
        s3.delete_object(Bucket=name, Key="k", VersionId=vid, BypassGovernanceRetention=True)
    assert error_code(exc) == ("AccessDenied", 403)
    s3.put_object_legal_hold(Bucket=name, Key="k", VersionId=vid, LegalHold={"Status": "OFF"})
    assert s3.get_object_legal_hold(Bucket=name, Key="k")["LegalHold"] == {"Status": "OFF"}
    s3.delete_object(Bucket=name, Key="k", VersionId=vid)
    vid = s3.put_object(Bucket=name, Key="plain", Body=b"x")["VersionId"]
    with pytest.raises(ClientError) as exc:
        s3.get_object_legal_hold(Bucket=name, Key="plain")
    assert error_code(exc) == ("NoSuchObjectLockConfiguration", 404)
    with pytest.raises(ClientError) as exc:
        s3.get_object_retention(Bucket=name, Key="plain")
    assert error_code(exc) == ("NoSuchObjectLockConfiguration", 404)
    with pytest.raises(ClientError) as exc:
        s3.put_object_legal_hold(Bucket=name, Key="plain", LegalHold={"Status": "MAYBE"})
    assert error_code(exc) == ("MalformedXML", 400)


def test_lock_headers_are_validated(s3):
    name = lock_bucket(s3)
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=name, Key="k", Body=b"x", ObjectLockMode="GOVERNANCE")
    assert error_code(exc) == ("InvalidArgument", 400)
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=name, Key="k", Body=b"x", ObjectLockMode="GOVERNANCE",
                      ObjectLockRetainUntilDate=datetime.now(UTC) - timedelta(days=1))
    assert error_code(exc) == ("InvalidArgument", 400)
    with pytest.raises(ClientError) as exc:
        s3.put_object_retention(Bucket=name, Key="missing", Retention={
            "Mode": "GOVERNANCE", "RetainUntilDate": future(60)})
    assert error_code(exc) == ("NoSuchKey", 404)


def test_copy_and_multipart_take_the_requested_lock(s3):
    name = lock_bucket(s3)
    src = s3.put_object(Bucket=name, Key="src", Body=b"x",
                        ObjectLockLegalHoldStatus="ON")["VersionId"]
    s3.copy_object(Bucket=name, Key="dst", CopySource={"Bucket": name, "Key": "src"},
                   ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=future(3600))
    head = s3.head_object(Bucket=name, Key="dst")
    assert head["ObjectLockMode"] == "GOVERNANCE"
    assert "ObjectLockLegalHoldStatus" not in head  # the source's hold is not copied
    upload = s3.create_multipart_upload(Bucket=name, Key="mp", ObjectLockLegalHoldStatus="ON")
    etag = s3.upload_part(Bucket=name, Key="mp", UploadId=upload["UploadId"], PartNumber=1,
                          Body=b"part")["ETag"]
    vid = s3.complete_multipart_upload(
        Bucket=name, Key="mp", UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})["VersionId"]
    assert s3.get_object_legal_hold(Bucket=name, Key="mp", VersionId=vid)["LegalHold"] == {
        "Status": "ON"}
    with pytest.raises(ClientError) as exc:
        s3.delete_object(Bucket=name, Key="mp", VersionId=vid)
    assert error_code(exc) == ("AccessDenied", 403)
    for key, version in (("mp", vid), ("src", src)):
        s3.put_object_legal_hold(Bucket=name, Key=key, VersionId=version,
                                 LegalHold={"Status": "OFF"})


def test_bypass_needs_the_bypass_permission(node, s3):
    keys = {"name": "lock-bob", "access_key": "LOCKBOBKEY", "secret_key": "lock-bob-secret"}
    status, doc = node.admin("/users", method="POST", body=keys)
    assert status in (200, 201), doc
    bob = node.client(keys["access_key"], keys["secret_key"])
    name = lock_bucket(s3)
    vid = s3.put_object(Bucket=name, Key="k", Body=b"x", ObjectLockMode="GOVERNANCE",
                        ObjectLockRetainUntilDate=future(3600))["VersionId"]
    principal = {"AWS": ["arn:aws:iam::1:user/lock-bob"]}

    def allow(*actions: str) -> None:
        s3.put_bucket_policy(Bucket=name, Policy=json.dumps({
            "Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": principal, "Action": list(actions),
                "Resource": [f"arn:aws:s3:::{name}/*"]}]}))

    allow("s3:GetObject", "s3:DeleteObjectVersion")
    # Lock headers go only to callers who may read the retention (AWS).
    assert "ObjectLockMode" not in bob.head_object(Bucket=name, Key="k")
    assert s3.head_object(Bucket=name, Key="k")["ObjectLockMode"] == "GOVERNANCE"
    with pytest.raises(ClientError) as exc:
        bob.delete_object(Bucket=name, Key="k", VersionId=vid, BypassGovernanceRetention=True)
    assert error_code(exc) == ("AccessDenied", 403)
    allow("s3:GetObject", "s3:DeleteObjectVersion", "s3:BypassGovernanceRetention",
          "s3:GetObjectRetention")
    assert bob.head_object(Bucket=name, Key="k")["ObjectLockMode"] == "GOVERNANCE"
    bob.delete_object(Bucket=name, Key="k", VersionId=vid, BypassGovernanceRetention=True)


def test_browser_post_upload_gets_the_default_retention(s3):
    from test_post_upload import post, presigned

    name = lock_bucket(s3)
    s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 1}}})
    url, fields = presigned(s3, name, "form.bin")
    status, headers, _ = post(url, fields, b"x")
    assert status == 204
    vid = headers["x-amz-version-id"]
    assert s3.get_object_retention(Bucket=name, Key="form.bin")["Retention"]["Mode"] == "COMPLIANCE"
    with pytest.raises(ClientError) as exc:
        s3.delete_object(Bucket=name, Key="form.bin", VersionId=vid)
    assert error_code(exc) == ("AccessDenied", 403)


def test_locked_bodies_need_content_md5_or_a_checksum(node, s3):
    """AWS refuses a body that would be locked unless its integrity is checked on the way in."""
    bare = node.client(request_checksum_calculation="when_required")
    name = lock_bucket(s3)
    s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}})
    with pytest.raises(ClientError) as exc:
        bare.put_object(Bucket=name, Key="k", Body=b"x")
    assert error_code(exc) == ("InvalidRequest", 400)
    uid = bare.create_multipart_upload(Bucket=name, Key="mp")["UploadId"]
    with pytest.raises(ClientError) as exc:
        bare.upload_part(Bucket=name, Key="mp", UploadId=uid, PartNumber=1, Body=b"x")
    assert error_code(exc) == ("InvalidRequest", 400)
    digest = base64.b64encode(hashlib.md5(b"x").digest()).decode()
    vid = bare.put_object(Bucket=name, Key="k", Body=b"x", ContentMD5=digest)["VersionId"]
    s3.put_object(Bucket=name, Key="k", Body=b"y")  # boto3's default CRC32 is enough
    s3.delete_object(Bucket=name, Key="k", VersionId=vid, BypassGovernanceRetention=True)
