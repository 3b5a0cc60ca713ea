"""Apply the commands that write object versions or their settings: PutObject, DeleteObjects,
SetObjectAcl, SetObjectTagging, SetObjectLock. Dispatched from `meta/state.py`'s `APPLY` table;
the shared version steps are in `version_steps`, the chunk references in `tx`.
"""

from __future__ import annotations

from typing import Any

from . import commands as c
from . import layout as L
from . import version_steps as steps
from .locks import deletion_refused, retention_change_refused
from .records import BucketRecord, VersionRecord
from .tx import Tx


def put_object(tx: Tx, cmd: c.PutObject) -> Any:
    bucket = tx.get(L.bucket_key(cmd.bucket))
    if bucket is None:
        return c.Rejected("NoSuchBucket")
    if cmd.bucket_created is not None and bucket["created"] != cmd.bucket_created:
        return c.Rejected("OperationAborted", "The bucket was deleted and created again")
    current = tx.get(L.object_key(cmd.bucket, cmd.key))
    rejected = steps.check_write_conditions(current, cmd.if_match, cmd.if_none_match)
    if rejected:
        return rejected
    stored = steps.write_version(tx, bucket, cmd.bucket, cmd.key, cmd.record, cmd.version_id)
    if cmd.inline is not None:
        ((digest, _),) = cmd.record["chunks"]
        if not tx.has(L.inline_key(digest)):
            tx.stat("inline_chunks", 1)
        tx.put(L.inline_key(digest), cmd.inline)
    return {"etag": cmd.record["etag"], "version_id": stored.get("vid")}


def delete_objects(tx: Tx, cmd: c.DeleteObjects) -> Any:
    bucket = tx.get(L.bucket_key(cmd.bucket))
    if bucket is None:
        return c.Rejected("NoSuchBucket")
    results = []
    for i, name in enumerate(cmd.keys):
        version_id = cmd.version_ids[i] if i < len(cmd.version_ids) else None
        marker_id = cmd.marker_ids[i] if i < len(cmd.marker_ids) else None
        if_mtime = cmd.if_mtimes[i] if i < len(cmd.if_mtimes) else None
        if if_mtime is not None and not _still(tx, bucket, cmd.bucket, name, version_id, if_mtime):
            results.append({"key": name, "vid": version_id, "skipped": True})
            continue
        if_match = cmd.if_matches[i] if i < len(cmd.if_matches) else None
        if if_match is not None:  # conditional deletes look at the current version only
            current = tx.get(L.object_key(cmd.bucket, name))
            rejected = steps.check_write_conditions(current, if_match, False)
            if rejected is not None:
                results.append({"key": name, "vid": version_id, "error": rejected.code})
                continue
        results.append(
            _delete_key(tx, bucket, cmd, name, version_id=version_id, marker_id=marker_id)
        )
    return results  # S3 reports deleting an absent key or version as success


def _still(
    tx: Tx,
    bucket: BucketRecord,
    bucket_name: str,
    name: str,
    version_id: str | None,
    mtime: float,
) -> bool:
    """The version a conditional delete names (None: the current one) still has `mtime`."""
    if bucket.get("versioning") is None or version_id is None:
        current = tx.get(L.object_key(bucket_name, name))
        return current is not None and current.get("mtime") == mtime
    return any(
        record["vid"] == version_id and record.get("mtime") == mtime
        for _, record in tx.versions(L.key_versions_prefix(bucket_name, name))
    )


def _delete_key(
    tx: Tx,
    bucket: BucketRecord,
    cmd: c.DeleteObjects,
    name: str,
    *,
    version_id: str | None,
    marker_id: str | None,
) -> dict[str, Any]:
    """Delete one key (its current version) or one version of it; what S3 reports back."""
    result: dict[str, Any] = {"key": name, "vid": version_id}
    if bucket.get("versioning") is None:
        key = L.object_key(cmd.bucket, name)
        current = tx.get(key)
        if current is not None and version_id in (None, "null"):
            steps.drop_version(tx, cmd.bucket, key, current)
        return result
    history = steps.history_of(tx, cmd.bucket, name)
    if version_id is not None:
        for seq, record in history:
            if record["vid"] == version_id:
                if deletion_refused(record, now=cmd.mtime, bypass=cmd.bypass):
                    result["error"] = "AccessDenied"
                    break
                steps.release_version(tx, cmd.bucket, record)
                tx.delete(L.version_key(cmd.bucket, name, seq))
                steps.sync_current(tx, cmd.bucket, name)
                if record.get("marker"):
                    result.update(marker=True, marker_vid=version_id)
                break
        return result
    marker: VersionRecord = {"marker": True, "mtime": cmd.mtime, "owner": cmd.owner}
    stored = steps.write_version(tx, bucket, cmd.bucket, name, marker, marker_id)
    result.update(marker=True, marker_vid=stored["vid"])
    return result


def set_object_acl(tx: Tx, cmd: c.SetObjectAcl) -> Any:
    """Like tagging: the ACL belongs to one version, and O/ mirrors the newest one."""
    found = steps.find_version(
        tx, cmd.bucket, cmd.key, cmd.version_id, unversioned=True, absent="NoSuchKey"
    )
    if isinstance(found, c.Rejected):
        return found
    steps.store_version(tx, cmd.bucket, cmd.key, found, {**found.record, "acl": cmd.acl})
    return None


def set_object_tagging(tx: Tx, cmd: c.SetObjectTagging) -> Any:
    if tx.get(L.bucket_key(cmd.bucket)) is None:
        return c.Rejected("NoSuchBucket")
    found = steps.find_version(
        tx, cmd.bucket, cmd.key, cmd.version_id, unversioned=True, absent="NoSuchVersion"
    )
    if isinstance(found, c.Rejected):
        return found
    steps.store_version(tx, cmd.bucket, cmd.key, found, _with_tags(found.record, cmd.tags))
    return {"version_id": found.record.get("vid")}


def set_object_lock(tx: Tx, cmd: c.SetObjectLock) -> Any:
    """Retention and legal hold of one version, kept on its V/ entry and the O/ copy."""
    if tx.get(L.bucket_key(cmd.bucket)) is None:
        return c.Rejected("NoSuchBucket")
    found = steps.find_version(tx, cmd.bucket, cmd.key, cmd.version_id, unversioned=False)
    if isinstance(found, c.Rejected):
        return found
    record = found.record
    updated = record.copy()
    if cmd.retention is not None:
        if retention_change_refused(record, cmd.retention, now=cmd.now, bypass=cmd.bypass):
            return c.Rejected("AccessDenied")
        updated.pop("lock", None)
        if cmd.retention:
            updated["lock"] = dict(cmd.retention)
    if cmd.legal_hold is not None:
        updated["hold"] = cmd.legal_hold
    steps.store_version(tx, cmd.bucket, cmd.key, found, updated)
    return {"version_id": record["vid"]}


def _with_tags(record: VersionRecord, tags: tuple[tuple[str, str], ...]) -> VersionRecord:
    updated = record.copy()
    updated.pop("tags", None)
    if tags:
        updated["tags"] = [list(tag) for tag in tags]
    return updated
