"""Apply the bucket commands: CreateBucket, DeleteBucket, SetBucketConfig, SetBucketQuota,
SetBucketVersioning, SetBucketTagging. Dispatched from `meta/state.py`'s `APPLY` table; a
DeleteBucket with `force` drops versions and uploads through `version_steps`.
"""

from __future__ import annotations

from typing import Any

from . import commands as c
from . import layout as L
from . import quota
from . import version_steps as steps
from .layout import scan
from .tx import Tx


def create_bucket(tx: Tx, cmd: c.CreateBucket) -> Any:
    existing = tx.get(L.bucket_key(cmd.bucket))
    if existing is not None:
        same_owner = existing["owner"] == cmd.owner
        return c.Rejected("BucketAlreadyOwnedByYou" if same_owner else "BucketAlreadyExists")
    record = {"owner": cmd.owner, "created": cmd.created, "region": cmd.region}
    if cmd.acl is not None:
        record["acl"] = cmd.acl
    if cmd.ownership is not None:
        record["ownership"] = cmd.ownership
    if cmd.object_lock:
        record["objectlock"] = {"enabled": True}
        record["versioning"] = "Enabled"
    tx.put(L.bucket_key(cmd.bucket), record)
    tx.put(L.usage_key(cmd.bucket), [0, 0])
    tx.stat("buckets", 1)
    return record


def delete_bucket(tx: Tx, cmd: c.DeleteBucket) -> Any:
    if tx.get(L.bucket_key(cmd.bucket)) is None:
        return c.Rejected("NoSuchBucket")
    objects = list(scan(tx.db, L.object_prefix(cmd.bucket)))
    uploads = list(scan(tx.db, L.upload_prefix(cmd.bucket)))
    versions = list(scan(tx.db, L.version_prefix(cmd.bucket)))
    if (objects or versions or (uploads and not cmd.drop_uploads)) and not cmd.force:
        return c.Rejected("BucketNotEmpty")
    for raw_key, raw in objects:
        record = L.unpack(raw)
        if "vid" in record:  # a copy of a V/ entry: the entry holds the references
            tx.delete(raw_key)
        else:
            steps.drop_version(tx, cmd.bucket, raw_key, record)
    for raw_key, raw in versions:
        steps.release_version(tx, cmd.bucket, L.unpack(raw))
        tx.delete(raw_key)
    for raw_key, _ in uploads:
        _, upload_id = L.split_upload_key(raw_key, L.upload_prefix(cmd.bucket))
        steps.drop_upload(tx, raw_key, upload_id)
    tx.delete(L.bucket_key(cmd.bucket))
    tx.delete(L.usage_key(cmd.bucket))
    tx.stat("buckets", -1)
    return None


def set_bucket_config(tx: Tx, cmd: c.SetBucketConfig) -> Any:
    record = tx.get(L.bucket_key(cmd.bucket))
    if record is None:
        return c.Rejected("NoSuchBucket")
    if cmd.name not in c.BUCKET_SETTINGS:
        return c.Rejected("InvalidArgument", f"unknown bucket setting {cmd.name!r}")
    if cmd.value is None:
        record.pop(cmd.name, None)
    else:
        record[cmd.name] = cmd.value
    tx.put(L.bucket_key(cmd.bucket), record)
    return None


def set_bucket_quota(tx: Tx, cmd: c.SetBucketQuota) -> Any:
    record = tx.get(L.bucket_key(cmd.bucket))
    if record is None:
        return c.Rejected("NoSuchBucket")
    limits = quota.quota_record(cmd.max_bytes, cmd.max_objects)
    if limits is None:
        record.pop("quota", None)
    else:
        record["quota"] = limits
    if tx.get(L.usage_key(cmd.bucket)) is None:  # a bucket from before quotas: count it now
        tx.put(L.usage_key(cmd.bucket), list(quota.scan_usage(tx.db, cmd.bucket)))
    tx.put(L.bucket_key(cmd.bucket), record)
    return limits


def set_bucket_versioning(tx: Tx, cmd: c.SetBucketVersioning) -> Any:
    bucket = tx.get(L.bucket_key(cmd.bucket))
    if bucket is None:
        return c.Rejected("NoSuchBucket")
    if cmd.status not in ("Enabled", "Suspended"):
        return c.Rejected("MalformedXML")
    if bucket.get("objectlock") and cmd.status != "Enabled":
        return c.Rejected(
            "InvalidBucketState",
            "An Object Lock configuration is present on "
            "this bucket, so the versioning state cannot be changed.",
        )
    tx.put(L.bucket_key(cmd.bucket), {**bucket, "versioning": cmd.status})
    return None


def set_bucket_tagging(tx: Tx, cmd: c.SetBucketTagging) -> Any:
    bucket = tx.get(L.bucket_key(cmd.bucket))
    if bucket is None:
        return c.Rejected("NoSuchBucket")
    updated = {k: v for k, v in bucket.items() if k != "tags"}
    if cmd.tags is not None:
        updated["tags"] = [list(tag) for tag in cmd.tags]
    tx.put(L.bucket_key(cmd.bucket), updated)
    return None
