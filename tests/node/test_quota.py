"""Bucket quotas: usage counted in the same batch as the versions, refused at apply time, set
and reported through the admin API, and answered to S3 clients as 403 QuotaExceeded."""

from __future__ import annotations

import json
import random

import pytest
from botocore.exceptions import ClientError
from s3util import error_code

from anode.meta import commands as c
from anode.meta import layout as L
from anode.meta.quota import over_quota, scan_usage, validate_limit

# ---- pure -------------------------------------------------------------------------------------


def test_only_growth_past_a_limit_is_over_quota():
    q = {"bytes": 100, "objects": 2}
    assert over_quota(None, before=(0, 0), after=(9, 9999)) is None
    assert over_quota(q, before=(1, 50), after=(2, 100)) is None  # exactly full is allowed
    assert "101 bytes" in (over_quota(q, before=(1, 50), after=(2, 101)) or "")
    assert "3 objects" in (over_quota(q, before=(2, 50), after=(3, 60)) or "")
    # already over (the quota was lowered): shrinking or same-count writes pass
    assert over_quota(q, before=(5, 500), after=(5, 400)) is None
    assert over_quota(q, before=(5, 500), after=(4, 600)) is not None  # bytes still grow


@pytest.mark.parametrize("bad", [0, -1, 1.5, "10", True])
def test_limits_must_be_positive_integers(bad):
    with pytest.raises(ValueError):
        validate_limit(bad, "max_bytes")
    assert validate_limit(None, "max_bytes") is None and validate_limit(7, "x") == 7


# ---- the state machine, against a real RocksDB ------------------------------------------------


def _obj(size: int, mtime: float = 1.0) -> dict:
    return {"size": size, "etag": f'"{size}"', "mtime": mtime, "chunks": [], "owner": "u"}


def test_writes_past_the_quota_are_rejected_with_nothing_written(meta):
    apply = meta.state_machine.apply
    apply(c.CreateBucket(bucket="b", owner="u", created=0))
    assert apply(c.SetBucketQuota(bucket="b", max_bytes=100, max_objects=3)) == {
        "bytes": 100, "objects": 3}
    assert apply(c.PutObject(bucket="b", key="a", record=_obj(60))) == {
        "etag": '"60"', "version_id": None}
    rejected = apply(c.PutObject(bucket="b", key="b", record=_obj(41)))
    assert isinstance(rejected, c.Rejected) and rejected.code == "QuotaExceeded"
    assert meta.object("b", "b") is None and meta.usage("b") == (1, 60)
    assert meta.stats()["objects"] == 1 and meta.stats()["logical_bytes"] == 60
    apply(c.PutObject(bucket="b", key="a", record=_obj(90)))  # an overwrite counts the difference
    assert meta.usage("b") == (1, 90)
    apply(c.PutObject(bucket="b", key="b", record=_obj(5)))
    apply(c.PutObject(bucket="b", key="c", record=_obj(5)))
    rejected = apply(c.PutObject(bucket="b", key="d", record=_obj(0)))
    assert isinstance(rejected, c.Rejected) and "4 objects" in (rejected.message or "")


def test_a_lowered_quota_refuses_growth_but_not_cleanup(meta):
    apply = meta.state_machine.apply
    apply(c.CreateBucket(bucket="b", owner="u", created=0))
    for key in "abc":
        apply(c.PutObject(bucket="b", key=key, record=_obj(50)))
    apply(c.SetBucketQuota(bucket="b", max_bytes=60))
    assert isinstance(apply(c.PutObject(bucket="b", key="d", record=_obj(1))), c.Rejected)
    assert not isinstance(apply(c.PutObject(bucket="b", key="a", record=_obj(10))), c.Rejected)
    assert not isinstance(apply(c.DeleteObjects(bucket="b", keys=("b", "c"))), c.Rejected)
    assert meta.usage("b") == (1, 10)
    assert not isinstance(apply(c.PutObject(bucket="b", key="d", record=_obj(50))), c.Rejected)
    apply(c.SetBucketQuota(bucket="b"))  # no limits: the quota is gone
    assert "quota" not in meta.bucket("b")
    assert not isinstance(apply(c.PutObject(bucket="b", key="e", record=_obj(500))), c.Rejected)


def test_noncurrent_versions_count_and_delete_markers_do_not(meta):
    apply = meta.state_machine.apply
    apply(c.CreateBucket(bucket="b", owner="u", created=0))
    apply(c.SetBucketVersioning(bucket="b", status="Enabled"))
    apply(c.SetBucketQuota(bucket="b", max_bytes=25))
    apply(c.PutObject(bucket="b", key="k", record=_obj(10), version_id="v1"))
    apply(c.PutObject(bucket="b", key="k", record=_obj(10, mtime=2), version_id="v2"))
    apply(c.DeleteObjects(bucket="b", keys=("k",), marker_ids=("m1",), mtime=3))
    assert meta.usage("b") == (2, 20)
    assert isinstance(apply(c.PutObject(bucket="b", key="k", record=_obj(10, 4))), c.Rejected)
    apply(c.DeleteObjects(bucket="b", keys=("k",), version_ids=("v1",)))
    assert meta.usage("b") == (1, 10)


def test_multipart_completion_is_checked_and_parts_do_not_count(meta):
    apply = meta.state_machine.apply
    apply(c.CreateBucket(bucket="b", owner="u", created=0))
    apply(c.SetBucketQuota(bucket="b", max_bytes=15))
    apply(c.CreateUpload(bucket="b", key="k", upload_id="u1", record={"record": {}}))
    for n in (1, 2):
        apply(c.PutPart(bucket="b", key="k", upload_id="u1", part_number=n,
                        record={"size": 10, "etag": f'"{n:032x}"', "chunks": []}))
    assert meta.usage("b") == (0, 0)
    too_big = apply(c.PutPart(bucket="b", key="k", upload_id="u1", part_number=3,
                              record={"size": 16, "etag": '"3"', "chunks": []}))
    assert isinstance(too_big, c.Rejected) and too_big.code == "QuotaExceeded"
    assert "this part" in (too_big.message or "")
    done = apply(c.CompleteUpload(bucket="b", key="k", upload_id="u1", mtime=1, min_part_size=0,
                                  parts=((1, f"{1:032x}"), (2, f"{2:032x}"))))
    assert isinstance(done, c.Rejected) and done.code == "QuotaExceeded"
    assert meta.upload("b", "k", "u1") is not None  # the upload is still there to retry or abort


def test_usage_counter_always_equals_a_scan_of_the_bucket(meta):
    """Random puts, overwrites, deletes, versioning changes: the counter never drifts."""
    apply = meta.state_machine.apply
    rng = random.Random(4)
    apply(c.CreateBucket(bucket="b", owner="u", created=0))
    apply(c.CreateBucket(bucket="other", owner="u", created=0))
    apply(c.PutObject(bucket="other", key="x", record=_obj(7)))
    for step in range(300):
        key = f"k{rng.randrange(8)}"
        roll = rng.random()
        if roll < 0.5:
            apply(c.PutObject(bucket="b", key=key, record=_obj(rng.randrange(100), step)))
        elif roll < 0.75:
            apply(c.DeleteObjects(bucket="b", keys=(key,), mtime=step))
        elif roll < 0.9:
            versions = meta.key_versions("b", key)
            if versions:
                apply(c.DeleteObjects(bucket="b", keys=(key,),
                                      version_ids=(rng.choice(versions)["vid"],)))
        elif roll < 0.95:
            apply(c.SetBucketVersioning(bucket="b", status=rng.choice(["Enabled", "Suspended"])))
        else:
            apply(c.SetBucketQuota(bucket="b", max_objects=rng.randrange(1, 12)))
        assert meta.usage("b") == scan_usage(meta.db, "b"), step
    assert meta.usage("other") == (1, 7)
    apply(c.DeleteBucket(bucket="b", force=True))
    assert meta.db.get(L.usage_key("b")) is None


def test_a_bucket_from_before_quotas_is_counted_when_its_quota_is_set(meta):
    apply = meta.state_machine.apply
    apply(c.CreateBucket(bucket="b", owner="u", created=0))
    apply(c.PutObject(bucket="b", key="a", record=_obj(30)))
    meta.db.delete(L.usage_key("b"))  # what a bucket created by an older version looks like
    apply(c.PutObject(bucket="b", key="c", record=_obj(30)))  # untracked: nothing written
    assert meta.db.get(L.usage_key("b")) is None and meta.usage("b") == (2, 60)
    apply(c.SetBucketQuota(bucket="b", max_bytes=70))
    assert L.unpack(meta.db.get(L.usage_key("b"))) == [2, 60]
    assert isinstance(apply(c.PutObject(bucket="b", key="d", record=_obj(11))), c.Rejected)


def test_quota_commands_survive_the_log_encoding():
    cmd = c.SetBucketQuota(bucket="b", max_bytes=10)
    assert c.decode(c.encode(cmd)) == cmd


# ---- through the admin API and S3 (one node and a 3-node cluster) ------------------------------


def test_admin_sets_the_quota_and_s3_writes_past_it_get_quota_exceeded(node, s3, bucket):
    status, doc = node.admin(f"/buckets/{bucket}/quota", method="PUT",
                             body={"max_bytes": 1000, "max_objects": 2})
    assert status == 200, doc
    assert doc["quota"] == {"max_bytes": 1000, "max_objects": 2}
    assert doc["usage"] == {"objects": 0, "bytes": 0}
    s3.put_object(Bucket=bucket, Key="a", Body=b"x" * 600)
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="b", Body=b"x" * 401)
    assert error_code(exc) == ("QuotaExceeded", 403)
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "a"})
    assert error_code(exc) == ("QuotaExceeded", 403)
    s3.put_object(Bucket=bucket, Key="b", Body=b"x" * 400)
    _, listing = node.admin("/buckets")
    (mine,) = [b for b in listing["buckets"] if b["name"] == bucket]
    assert mine["usage"] == {"objects": 2, "bytes": 1000}
    status, doc = node.admin(f"/buckets/{bucket}/quota", method="PUT", body={})
    assert status == 200 and doc["quota"] is None
    s3.put_object(Bucket=bucket, Key="c", Body=b"x" * 401)


@pytest.mark.parametrize("body", [{"max_bytes": 0}, {"max_objects": "9"}, {"maxBytes": 9}])
def test_admin_refuses_invalid_quotas(node, bucket, body):
    status, doc = node.admin(f"/buckets/{bucket}/quota", method="PUT", body=body)
    assert status == 400, doc


def test_admin_quota_of_a_missing_bucket_is_404(node):
    status, doc = node.admin("/buckets/no-such-bucket-here/quota", method="PUT",
                             body={"max_bytes": 1})
    assert status == 404 and doc["code"] == "NoSuchBucket"


def test_cli_sets_and_removes_a_quota(node, bucket):
    import subprocess
    import sys
    from pathlib import Path

    def cli(*args: str) -> dict:
        out = subprocess.run(
            [str(Path(sys.executable).parent / "anode"), "admin", "--url", node.admin_url,
             "--token", node.secret_key, "buckets", "quota", bucket, *args],
            capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr
        return json.loads(out.stdout)

    assert cli("--max-objects", "3")["quota"] == {"max_bytes": None, "max_objects": 3}
    assert cli()["quota"] is None
