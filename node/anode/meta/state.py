"""The metadata state machine: `apply(command) -> result`, the only writer of metadata.

Deterministic: a command's outcome depends only on the command and the current database, so every
replica that applies the same log reaches the same state (part 2 replicates the commands with
Raft). Each command is written as one RocksDB WriteBatch, so it is all-or-nothing on disk.
Chunk reference counts move in the same batch as the versions that hold them.
"""

from __future__ import annotations

import base64
import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from rocksdict import Rdict, WriteBatch, WriteOptions

from . import commands as c
from . import layout as L
from . import quota
from .locks import deletion_refused, retention_change_refused

_UNSYNCED = WriteOptions()
_SYNCED = WriteOptions()
_SYNCED.sync = True

# Raft mode only: "index:position" of the last applied log entry and how many of its commands.
RAFT_POSITION_KEY = b"S/raft"


def scan(db: Rdict, prefix: bytes, start: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
    """Yield (key, value) for keys with `prefix`, from `start` (inclusive) if given."""
    it = db.iter()
    it.seek(start if start is not None and start > prefix else prefix)
    while it.valid():
        key = it.key()
        if not key.startswith(prefix):
            return
        yield key, it.value()
        it.next()


def multipart_etag(part_etags: list[str]) -> str:
    digest = hashlib.md5(b"".join(bytes.fromhex(e.strip('"')) for e in part_etags))
    return f'"{digest.hexdigest()}-{len(part_etags)}"'


class StateMachine:
    """Applies commands to RocksDB. Single-threaded by contract: one applier at a time."""

    def __init__(self, db: Rdict) -> None:
        self.db = db
        # Told the keys of every committed write (None: possibly all of them) after they are in
        # the database: MetaStore's read cache listens.
        self.on_write: Callable[[Iterable[bytes] | None], None] = lambda keys: None
        # Bumped when a snapshot starts replacing the database and again when it is complete:
        # odd while readers may see a part of it (`consistent_since`).
        self.restore_epoch = 0

    def consistent_since(self, epoch: int) -> bool:
        """Whether reads since `restore_epoch` was `epoch` saw whole states, no restore half
        done (a user, bucket or object missing then proves nothing)."""
        return epoch % 2 == 0 and self.restore_epoch == epoch

    # ---- entry points --------------------------------------------------------------------

    def apply(self, command: c.Command) -> Any:
        return self.apply_many([command])[0]

    def apply_many(self, commands: list[c.Command], *, index: int | None = None) -> list[Any]:
        """Apply in order, then make the whole group durable with one WAL sync.

        With `index` (the Raft log index of the entry that carries `commands`), each entry is
        applied exactly once even though Raft replays its journal after a restart: every
        command's WriteBatch also records `S/raft` = "index:position", so a replay skips what is
        already on disk, even when the process died half way through an entry, and `S/applied`
        becomes `index`. No WAL sync in that mode: the Raft journal is the durable log, and the
        prefix RocksDB recovers after a crash is completed by the replay. A command that raises
        gets the exception as its result (a follower must not stop applying the log).
        """
        if index is not None:
            return self._apply_entry(commands, index)
        results = [self._apply_one(cmd) for cmd in commands]
        applied = int(self.db.get(L.APPLIED_KEY) or b"0") + len(commands)
        self.db.put(L.APPLIED_KEY, str(applied).encode(), _SYNCED)
        return results

    def raft_position(self) -> tuple[int, int]:
        """(log index, commands of that entry applied) of the last Raft entry applied."""
        raw = self.db.get(RAFT_POSITION_KEY)
        if raw is None:
            return 0, 0
        index, position = raw.split(b":")
        return int(index), int(position)

    def _apply_entry(self, commands: list[c.Command], index: int) -> list[Any]:
        done_index, done = self.raft_position()
        if index < done_index or (index == done_index and done >= len(commands)):
            return [None] * len(commands)  # a journal replay of an entry already on disk
        start = done if index == done_index else 0
        results: list[Any] = [None] * start
        for position in range(start, len(commands)):
            marker = f"{index}:{position + 1}".encode()
            try:
                results.append(self._apply_one(commands[position], marker=marker))
            except Exception as exc:  # deterministic on every replica: record it and go on
                self.db.put(RAFT_POSITION_KEY, marker, _UNSYNCED)
                results.append(exc)
        batch = WriteBatch(raw_mode=True)
        batch.put(RAFT_POSITION_KEY, f"{index}:{len(commands)}".encode())
        batch.put(L.APPLIED_KEY, str(index).encode())
        self.db.write(batch, _UNSYNCED)
        return results

    def _apply_one(self, command: c.Command, *, marker: bytes | None = None) -> Any:
        tx = _Tx(self.db)
        handler = getattr(self, "_" + type(command).__name__)
        try:
            result = handler(tx, command)
        except _Refused as refused:  # a shared step refused deep inside the command
            result = refused.rejected
        if not isinstance(result, c.Rejected):
            over = tx.over_quota()
            if over is not None:
                result = c.Rejected("QuotaExceeded", over)
        if marker is not None:
            tx.batch.put(RAFT_POSITION_KEY, marker)  # atomically with the command's writes
        if not isinstance(result, c.Rejected):
            tx.commit()
            self.on_write(tx.overlay.keys())
        elif marker is not None:
            self.db.put(RAFT_POSITION_KEY, marker, _UNSYNCED)
        return result

    # ---- buckets ------------------------------------------------------------------------

    def _CreateBucket(self, tx: _Tx, cmd: c.CreateBucket) -> Any:
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

    def _DeleteBucket(self, tx: _Tx, cmd: c.DeleteBucket) -> Any:
        if tx.get(L.bucket_key(cmd.bucket)) is None:
            return c.Rejected("NoSuchBucket")
        objects = list(scan(self.db, L.object_prefix(cmd.bucket)))
        uploads = list(scan(self.db, L.upload_prefix(cmd.bucket)))
        versions = list(scan(self.db, L.version_prefix(cmd.bucket)))
        if (objects or versions or (uploads and not cmd.drop_uploads)) and not cmd.force:
            return c.Rejected("BucketNotEmpty")
        for raw_key, raw in objects:
            record = L.unpack(raw)
            if "vid" in record:  # a copy of a V/ entry: the entry holds the references
                tx.delete(raw_key)
            else:
                self._drop_version(tx, cmd.bucket, raw_key, record)
        for raw_key, raw in versions:
            self._release_version(tx, cmd.bucket, L.unpack(raw))
            tx.delete(raw_key)
        for raw_key, _ in uploads:
            _, upload_id = L.split_upload_key(raw_key, L.upload_prefix(cmd.bucket))
            self._drop_upload(tx, raw_key, upload_id)
        tx.delete(L.bucket_key(cmd.bucket))
        tx.delete(L.usage_key(cmd.bucket))
        tx.stat("buckets", -1)
        return None

    def _SetBucketConfig(self, tx: _Tx, cmd: c.SetBucketConfig) -> Any:
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

    def _SetBucketQuota(self, tx: _Tx, cmd: c.SetBucketQuota) -> Any:
        record = tx.get(L.bucket_key(cmd.bucket))
        if record is None:
            return c.Rejected("NoSuchBucket")
        limits = quota.quota_record(cmd.max_bytes, cmd.max_objects)
        if limits is None:
            record.pop("quota", None)
        else:
            record["quota"] = limits
        if tx.get(L.usage_key(cmd.bucket)) is None:  # a bucket from before quotas: count it now
            tx.put(L.usage_key(cmd.bucket), list(quota.scan_usage(self.db, cmd.bucket)))
        tx.put(L.bucket_key(cmd.bucket), record)
        return limits

    # ---- objects ------------------------------------------------------------------------

    def _SetObjectAcl(self, tx: _Tx, cmd: c.SetObjectAcl) -> Any:
        """Like tagging: the ACL belongs to one version, and O/ mirrors the newest one."""
        found = self._find_version(tx, cmd.bucket, cmd.key, cmd.version_id,
                                   unversioned=True, absent="NoSuchKey")
        if isinstance(found, c.Rejected):
            return found
        self._store_version(tx, cmd.bucket, cmd.key, found, {**found.record, "acl": cmd.acl})
        return None

    def _PutObject(self, tx: _Tx, cmd: c.PutObject) -> Any:
        bucket = tx.get(L.bucket_key(cmd.bucket))
        if bucket is None:
            return c.Rejected("NoSuchBucket")
        if cmd.bucket_created is not None and bucket["created"] != cmd.bucket_created:
            return c.Rejected("OperationAborted", "The bucket was deleted and created again")
        current = tx.get(L.object_key(cmd.bucket, cmd.key))
        rejected = _check_write_conditions(current, cmd.if_match, cmd.if_none_match)
        if rejected:
            return rejected
        stored = self._write_version(tx, bucket, cmd.bucket, cmd.key, cmd.record, cmd.version_id)
        if cmd.inline is not None:
            ((digest, _),) = cmd.record["chunks"]
            if not tx.has(L.inline_key(digest)):
                tx.stat("inline_chunks", 1)
            tx.put(L.inline_key(digest), cmd.inline)
        return {"etag": cmd.record["etag"], "version_id": stored.get("vid")}

    def _DeleteObjects(self, tx: _Tx, cmd: c.DeleteObjects) -> Any:
        bucket = tx.get(L.bucket_key(cmd.bucket))
        if bucket is None:
            return c.Rejected("NoSuchBucket")
        results = []
        for i, name in enumerate(cmd.keys):
            version_id = cmd.version_ids[i] if i < len(cmd.version_ids) else None
            marker_id = cmd.marker_ids[i] if i < len(cmd.marker_ids) else None
            if_mtime = cmd.if_mtimes[i] if i < len(cmd.if_mtimes) else None
            if if_mtime is not None and not self._still(tx, bucket, cmd.bucket, name, version_id,
                                                         if_mtime):
                results.append({"key": name, "vid": version_id, "skipped": True})
                continue
            if_match = cmd.if_matches[i] if i < len(cmd.if_matches) else None
            if if_match is not None:  # conditional deletes look at the current version only
                current = tx.get(L.object_key(cmd.bucket, name))
                rejected = _check_write_conditions(current, if_match, False)
                if rejected is not None:
                    results.append({"key": name, "vid": version_id, "error": rejected.code})
                    continue
            results.append(
                self._delete_key(tx, bucket, cmd, name, version_id=version_id, marker_id=marker_id)
            )
        return results  # S3 reports deleting an absent key or version as success

    def _still(self, tx: _Tx, bucket: dict[str, Any], bucket_name: str, name: str,
               version_id: str | None, mtime: float) -> bool:
        """The version a conditional delete names (None: the current one) still has `mtime`."""
        if bucket.get("versioning") is None or version_id is None:
            current = tx.get(L.object_key(bucket_name, name))
            return current is not None and current.get("mtime") == mtime
        return any(record["vid"] == version_id and record.get("mtime") == mtime
                   for _, record in tx.versions(L.key_versions_prefix(bucket_name, name)))

    def _delete_key(
        self,
        tx: _Tx,
        bucket: dict[str, Any],
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
                self._drop_version(tx, cmd.bucket, key, current)
            return result
        history = self._history(tx, cmd.bucket, name)
        if version_id is not None:
            for seq, record in history:
                if record["vid"] == version_id:
                    if deletion_refused(record, now=cmd.mtime, bypass=cmd.bypass):
                        result["error"] = "AccessDenied"
                        break
                    self._release_version(tx, cmd.bucket, record)
                    tx.delete(L.version_key(cmd.bucket, name, seq))
                    self._sync_current(tx, cmd.bucket, name)
                    if record.get("marker"):
                        result.update(marker=True, marker_vid=version_id)
                    break
            return result
        marker = {"marker": True, "mtime": cmd.mtime, "owner": cmd.owner}
        stored = self._write_version(tx, bucket, cmd.bucket, name, marker, marker_id)
        result.update(marker=True, marker_vid=stored["vid"])
        return result

    # ---- multipart ----------------------------------------------------------------------

    def _CreateUpload(self, tx: _Tx, cmd: c.CreateUpload) -> Any:
        if tx.get(L.bucket_key(cmd.bucket)) is None:
            return c.Rejected("NoSuchBucket")
        tx.put(L.upload_key(cmd.bucket, cmd.key, cmd.upload_id), cmd.record)
        return cmd.upload_id

    def _PutPart(self, tx: _Tx, cmd: c.PutPart) -> Any:
        if tx.get(L.upload_key(cmd.bucket, cmd.key, cmd.upload_id)) is None:
            return c.Rejected("NoSuchUpload")
        # Parts are not objects yet, but one that could never fit is refused now, not at
        # CompleteMultipartUpload after the client sent everything (MinIO checks parts too).
        why = quota.part_over_quota(tx.get(L.bucket_key(cmd.bucket)),
                                    tx.get(L.usage_key(cmd.bucket)), cmd.record["size"])
        if why is not None:
            return c.Rejected("QuotaExceeded", why)
        key = L.part_key(cmd.upload_id, cmd.part_number)
        old = tx.get(key)
        if old is not None:
            tx.refs(old["chunks"], -1)
        tx.refs(cmd.record["chunks"], +1)
        tx.put(key, cmd.record)
        return {"etag": cmd.record["etag"]}

    def _CompleteUpload(self, tx: _Tx, cmd: c.CompleteUpload) -> Any:
        upload_key = L.upload_key(cmd.bucket, cmd.key, cmd.upload_id)
        upload = tx.get(upload_key)
        obj_key = L.object_key(cmd.bucket, cmd.key)
        current = tx.get(obj_key)
        bucket = tx.get(L.bucket_key(cmd.bucket))
        if upload is None or bucket is None:
            # A retried Complete whose first attempt succeeded answers as that attempt did.
            if current is not None and current.get("upload_id") == cmd.upload_id:
                return {"etag": current["etag"], "record": current,
                        "version_id": current.get("vid")}
            return c.Rejected("NoSuchUpload")
        if not cmd.parts:
            return c.Rejected("MalformedXML", "You must specify at least one part")
        numbers = [n for n, _ in cmd.parts]
        if numbers != sorted(numbers) or len(set(numbers)) != len(numbers):
            return c.Rejected("InvalidPartOrder")
        stored = {int(k[-5:]): L.unpack(v) for k, v in scan(self.db, L.part_prefix(cmd.upload_id))}
        chosen = []
        for i, (number, etag) in enumerate(cmd.parts):
            part = stored.get(number)
            if part is None or part["etag"].strip('"') != etag.strip('"'):
                return c.Rejected("InvalidPart")
            if i < len(cmd.parts) - 1 and part["size"] < cmd.min_part_size:
                return c.Rejected("EntityTooSmall")
            chosen.append(part)
        rejected = _check_write_conditions(current, cmd.if_match, cmd.if_none_match)
        if rejected:
            return rejected
        record = dict(upload["record"])
        record.update(
            size=sum(p["size"] for p in chosen),
            etag=multipart_etag([p["etag"] for p in chosen]),
            mtime=cmd.mtime,
            chunks=[ch for p in chosen for ch in p["chunks"]],
            parts=[p["size"] for p in chosen],
            upload_id=cmd.upload_id,
        )
        if any(p.get("cks") for p in chosen):  # GetObjectAttributes answers part checksums
            record["part_cks"] = [p.get("cks") or {} for p in chosen]
        if cmd.checksums:
            record["cks"] = dict(cmd.checksums)
            record["cktype"] = upload.get("cktype") or "COMPOSITE"
        # The new version takes over the chosen parts' references; the rest are released.
        record = self._write_version(tx, bucket, cmd.bucket, cmd.key, record, cmd.version_id)
        self._drop_upload(tx, upload_key, cmd.upload_id)
        return {"etag": record["etag"], "record": record, "version_id": record.get("vid")}

    def _AbortUpload(self, tx: _Tx, cmd: c.AbortUpload) -> Any:
        key = L.upload_key(cmd.bucket, cmd.key, cmd.upload_id)
        if tx.get(key) is None:
            return c.Rejected("NoSuchUpload")
        self._drop_upload(tx, key, cmd.upload_id)
        return None

    # ---- versioning and tags -------------------------------------------------------------

    def _SetBucketVersioning(self, tx: _Tx, cmd: c.SetBucketVersioning) -> Any:
        bucket = tx.get(L.bucket_key(cmd.bucket))
        if bucket is None:
            return c.Rejected("NoSuchBucket")
        if cmd.status not in ("Enabled", "Suspended"):
            return c.Rejected("MalformedXML")
        if bucket.get("objectlock") and cmd.status != "Enabled":
            return c.Rejected("InvalidBucketState", "An Object Lock configuration is present on "
                              "this bucket, so the versioning state cannot be changed.")
        tx.put(L.bucket_key(cmd.bucket), {**bucket, "versioning": cmd.status})
        return None

    def _SetBucketTagging(self, tx: _Tx, cmd: c.SetBucketTagging) -> Any:
        bucket = tx.get(L.bucket_key(cmd.bucket))
        if bucket is None:
            return c.Rejected("NoSuchBucket")
        updated = {k: v for k, v in bucket.items() if k != "tags"}
        if cmd.tags is not None:
            updated["tags"] = [list(tag) for tag in cmd.tags]
        tx.put(L.bucket_key(cmd.bucket), updated)
        return None

    def _SetObjectTagging(self, tx: _Tx, cmd: c.SetObjectTagging) -> Any:
        if tx.get(L.bucket_key(cmd.bucket)) is None:
            return c.Rejected("NoSuchBucket")
        found = self._find_version(tx, cmd.bucket, cmd.key, cmd.version_id,
                                   unversioned=True, absent="NoSuchVersion")
        if isinstance(found, c.Rejected):
            return found
        self._store_version(tx, cmd.bucket, cmd.key, found, _with_tags(found.record, cmd.tags))
        return {"version_id": found.record.get("vid")}

    def _SetObjectLock(self, tx: _Tx, cmd: c.SetObjectLock) -> Any:
        """Retention and legal hold of one version, kept on its V/ entry and the O/ copy."""
        if tx.get(L.bucket_key(cmd.bucket)) is None:
            return c.Rejected("NoSuchBucket")
        found = self._find_version(tx, cmd.bucket, cmd.key, cmd.version_id, unversioned=False)
        if isinstance(found, c.Rejected):
            return found
        record = found.record
        updated = dict(record)
        if cmd.retention is not None:
            if retention_change_refused(record, cmd.retention, now=cmd.now, bypass=cmd.bypass):
                return c.Rejected("AccessDenied")
            updated.pop("lock", None)
            if cmd.retention:
                updated["lock"] = dict(cmd.retention)
        if cmd.legal_hold is not None:
            updated["hold"] = cmd.legal_hold
        self._store_version(tx, cmd.bucket, cmd.key, found, updated)
        return {"version_id": record["vid"]}

    def _find_version(self, tx: _Tx, bucket: str, key: str, version_id: str | None, *,
                      unversioned: bool, absent: str = "NoSuchVersion") -> _Found | c.Rejected:
        """The version a per-version setting (ACL, tags, lock) applies to: `version_id`, or the
        current one. A key never versioned keeps its one `null` version in O/ only; settings
        that allow that (`unversioned`) answer `absent` when the key itself is missing."""
        obj_key = L.object_key(bucket, key)
        current = tx.get(obj_key)
        wanted = version_id
        if wanted is None:
            if current is None:
                return c.Rejected("NoSuchKey")
            wanted = current.get("vid", "null")
        entries = tx.versions(L.key_versions_prefix(bucket, key))
        if not entries and unversioned:
            if current is None:
                return c.Rejected(absent)
            if wanted != "null":
                return c.Rejected("NoSuchVersion")
            return _Found(None, current, newest=True)
        for i, (raw_key, record) in enumerate(entries):
            if record["vid"] != wanted:
                continue
            if record.get("marker"):
                return c.Rejected("MethodNotAllowed")
            return _Found(raw_key, record, newest=i == 0)
        return c.Rejected("NoSuchVersion" if version_id is not None else "NoSuchKey")

    def _store_version(self, tx: _Tx, bucket: str, key: str, found: _Found,
                       record: dict[str, Any]) -> None:
        """Write a changed version back: its V/ entry, and O/ when it is the newest."""
        if found.raw_key is not None:
            tx.put(found.raw_key, record)
        if found.newest:
            tx.put(L.object_key(bucket, key), record)

    def _InitMasterKey(self, tx: _Tx, cmd: c.InitMasterKey) -> Any:
        existing = tx.get(L.MASTER_KEY)
        if existing is not None:
            return existing
        tx.put(L.MASTER_KEY, cmd.key)
        return cmd.key

    def _CreateKmsKey(self, tx: _Tx, cmd: c.CreateKmsKey) -> Any:
        existing = tx.get(L.kms_key_key(cmd.name))
        if existing is not None:
            return existing
        record = {"name": cmd.name, "wrapped": cmd.wrapped, "created": cmd.created,
                  "enabled": True}
        tx.put(L.kms_key_key(cmd.name), record)
        return record

    def _SetKmsKeyEnabled(self, tx: _Tx, cmd: c.SetKmsKeyEnabled) -> Any:
        record = tx.get(L.kms_key_key(cmd.name))
        if record is None:
            return c.Rejected("KMS_NotFoundException", f"Invalid keyId {cmd.name}")
        record = {**record, "enabled": cmd.enabled}
        tx.put(L.kms_key_key(cmd.name), record)
        return record

    # ---- users --------------------------------------------------------------------------

    def _CreateUser(self, tx: _Tx, cmd: c.CreateUser) -> Any:
        existing = tx.get(L.user_key(cmd.name))
        owner_of_key = tx.get(L.access_key_key(cmd.access_key))
        if existing is not None:
            if (
                existing["access_key"] == cmd.access_key
                and existing["secret_key"] == cmd.secret_key
                and existing.get("email", "") == cmd.email
            ):
                return existing
            if existing.get("managed") != "config" or cmd.managed != "config":
                return c.Rejected("UserExists", f"user {cmd.name} already exists")
            tx.delete(L.access_key_key(existing["access_key"]))  # config changed its keys
        if owner_of_key is not None and owner_of_key != cmd.name:
            return c.Rejected("UserExists", "access key already in use")
        record = {
            "name": cmd.name,
            "access_key": cmd.access_key,
            "secret_key": cmd.secret_key,
            "owner_id": existing["owner_id"] if existing else cmd.owner_id,
            "created": existing["created"] if existing else cmd.created,
            "managed": cmd.managed,
        }
        if cmd.email:
            record["email"] = cmd.email
        tx.put(L.user_key(cmd.name), record)
        tx.put(L.access_key_key(cmd.access_key), cmd.name)
        return record

    def _DeleteUser(self, tx: _Tx, cmd: c.DeleteUser) -> Any:
        existing = tx.get(L.user_key(cmd.name))
        if existing is None:
            return c.Rejected("NoSuchUser")
        tx.delete(L.user_key(cmd.name))
        tx.delete(L.access_key_key(existing["access_key"]))
        return None

    # ---- cluster nodes --------------------------------------------------------------------

    def _RegisterNode(self, tx: _Tx, cmd: c.RegisterNode) -> Any:
        existing = tx.get(L.node_key(cmd.node_id)) or {"state": "active"}
        record = {**existing, "s3_url": cmd.s3_url, "admin_url": cmd.admin_url,
                  "data_url": cmd.data_url}
        tx.put(L.node_key(cmd.node_id), record)
        return record

    def _SetNodeState(self, tx: _Tx, cmd: c.SetNodeState) -> Any:
        if cmd.state not in ("active", "draining", "removed"):
            return c.Rejected("InvalidArgument", f"unknown node state {cmd.state!r}")
        existing = tx.get(L.node_key(cmd.node_id))
        if existing is None:
            return c.Rejected("InvalidArgument", f"unknown node {cmd.node_id!r}")
        if cmd.state == "removed":
            tx.delete(L.node_key(cmd.node_id))
        else:
            tx.put(L.node_key(cmd.node_id), {**existing, "state": cmd.state})
        return None

    # ---- garbage ------------------------------------------------------------------------

    def _ForgetGarbage(self, tx: _Tx, cmd: c.ForgetGarbage) -> Any:
        for digest in cmd.digests:
            tx.delete(L.garbage_key(digest))
            if tx.get(L.chunk_key(digest)) is None and tx.has(L.inline_key(digest)):
                tx.delete(L.inline_key(digest))
                tx.stat("inline_chunks", -1)
        return None

    # ---- shared steps -------------------------------------------------------------------

    def _add_version(self, tx: _Tx, bucket: str, key: bytes, record: dict[str, Any]) -> None:
        tx.refs(record["chunks"], +1)
        tx.count(bucket, 1, record["size"])
        tx.put(key, record)

    def _drop_version(self, tx: _Tx, bucket: str, key: bytes, record: dict[str, Any]) -> None:
        tx.refs(record["chunks"], -1)
        tx.count(bucket, -1, -record["size"])
        tx.delete(key)

    def _write_version(
        self,
        tx: _Tx,
        bucket: dict[str, Any],
        bucket_name: str,
        key: str,
        record: dict[str, Any],
        version_id: str | None,
    ) -> dict[str, Any]:
        """Make `record` (an object version or a delete marker) the newest version of the key,
        taking references to its chunks, as the bucket's versioning state says; the stored record.

        Unversioned buckets replace O/ as they always did. Enabled keeps every older version;
        Suspended replaces only the `null` version. `version_id` is the proposer's fresh id."""
        status = bucket.get("versioning")
        if status is None:
            obj_key = L.object_key(bucket_name, key)
            current = tx.get(obj_key)
            if current is not None:
                self._drop_version(tx, bucket_name, obj_key, current)
            if "vid" in record:  # would make O/ look like a copy that holds no references
                record = {k: v for k, v in record.items() if k != "vid"}
            self._add_version(tx, bucket_name, obj_key, record)
            return record
        history = self._history(tx, bucket_name, key)
        seq = history[0][0] + 1 if history else 1
        if status == "Enabled":
            vid = version_id or _derived_version_id(bucket_name, key, seq, record)
        else:
            vid = "null"
            for old_seq, old in history:
                if old["vid"] == "null":
                    if deletion_refused(old, now=record.get("mtime", 0.0), bypass=False):
                        raise _Refused(c.Rejected("AccessDenied"))
                    self._release_version(tx, bucket_name, old)
                    tx.delete(L.version_key(bucket_name, key, old_seq))
        stored = {**record, "vid": vid}
        if not stored.get("marker"):
            tx.refs(stored["chunks"], +1)
            tx.count(bucket_name, 1, stored["size"])
        tx.put(L.version_key(bucket_name, key, seq), stored)
        self._sync_current(tx, bucket_name, key)
        return stored

    def _history(self, tx: _Tx, bucket: str, key: str) -> list[tuple[int, dict[str, Any]]]:
        """(seq, record) of every version of a key, newest first, in a versioning bucket.

        A pre-versioning O/ record (no `vid`) moves to V/ first, as the `null` version: from then
        on the key's versions all live in V/."""
        prefix = L.version_prefix(bucket)
        entries = [
            (L.split_version_key(raw_key, prefix)[1], record)
            for raw_key, record in tx.versions(L.key_versions_prefix(bucket, key))
        ]
        if not entries:
            legacy = tx.get(L.object_key(bucket, key))
            if legacy is not None and "vid" not in legacy:
                record = {**legacy, "vid": "null"}  # its references move with it
                tx.put(L.version_key(bucket, key, 1), record)
                tx.put(L.object_key(bucket, key), record)
                entries = [(1, record)]
        return entries

    def _sync_current(self, tx: _Tx, bucket: str, key: str) -> None:
        """O/ mirrors the newest version, or is absent when that is a delete marker (or none)."""
        entries = tx.versions(L.key_versions_prefix(bucket, key))
        if entries and not entries[0][1].get("marker"):
            tx.put(L.object_key(bucket, key), entries[0][1])
        else:
            tx.delete(L.object_key(bucket, key))

    def _release_version(self, tx: _Tx, bucket: str, record: dict[str, Any]) -> None:
        """Give up a V/ entry's references (delete markers hold none)."""
        if not record.get("marker"):
            tx.refs(record["chunks"], -1)
            tx.count(bucket, -1, -record["size"])

    def _drop_upload(self, tx: _Tx, upload_key: bytes, upload_id: str) -> None:
        for part_key, raw in scan(self.db, L.part_prefix(upload_id)):
            tx.refs(L.unpack(raw)["chunks"], -1)
            tx.delete(part_key)
        tx.delete(upload_key)


class _Refused(Exception):
    """Raised by a shared step to turn the whole command into `rejected` (nothing written)."""

    def __init__(self, rejected: c.Rejected) -> None:
        super().__init__(rejected.code)
        self.rejected = rejected


def _check_write_conditions(
    current: dict[str, Any] | None, if_match: str | None, if_none_match: bool
) -> c.Rejected | None:
    if if_none_match and current is not None:
        return c.Rejected("PreconditionFailed")
    if if_match is not None:
        if current is None:
            return c.Rejected("NoSuchKey")
        wanted = {e.strip().strip('"') for e in if_match.split(",")}
        if "*" not in wanted and current["etag"].strip('"') not in wanted:
            return c.Rejected("PreconditionFailed")
    return None


@dataclass(frozen=True)
class _Found:
    raw_key: bytes | None  # its V/ entry; None for a never-versioned key (O/ only)
    record: dict[str, Any]
    newest: bool


def _with_tags(record: dict[str, Any], tags: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    updated = {k: v for k, v in record.items() if k != "tags"}
    if tags:
        updated["tags"] = [list(tag) for tag in tags]
    return updated


def _derived_version_id(bucket: str, key: str, seq: int, record: dict[str, Any]) -> str:
    """A deterministic id for a proposer that did not choose one (same on every replica)."""
    seed = f"{bucket}\0{key}\0{seq}\0{record.get('mtime')}\0{record.get('etag')}".encode()
    return base64.urlsafe_b64encode(hashlib.sha256(seed).digest()[:24]).decode()


class _Tx:
    """One command's writes: a WriteBatch plus a read-your-writes overlay and pending deltas."""

    def __init__(self, db: Rdict) -> None:
        self.db = db
        self.batch = WriteBatch(raw_mode=True)
        self.overlay: dict[bytes, Any] = {}
        self.ref_deltas: dict[bytes, list[int]] = defaultdict(
            lambda: [0, 0]
        )  # digest -> [delta, size]
        self.stats: dict[str, int] = defaultdict(int)
        self.usage: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # bucket -> [objs, bytes]
        # V/ keys this command wrote, by their key's version prefix, so `versions` sees them
        self.version_writes: dict[bytes, set[bytes]] = defaultdict(set)

    def get(self, key: bytes) -> Any:
        if key in self.overlay:
            return self.overlay[key]
        raw = self.db.get(key)
        return None if raw is None else L.unpack(raw)

    def has(self, key: bytes) -> bool:
        if key in self.overlay:
            return self.overlay[key] is not None
        return self.db.get(key) is not None

    def put(self, key: bytes, value: Any) -> None:
        self.overlay[key] = value
        if key.startswith(b"V/"):
            self.version_writes[key[:-8]].add(key)

    def delete(self, key: bytes) -> None:
        self.overlay[key] = None
        if key.startswith(b"V/"):
            self.version_writes[key[:-8]].add(key)

    def versions(self, prefix: bytes) -> list[tuple[bytes, Any]]:
        """(V/ key, record) under one key's version prefix, newest first, with this command's
        own writes applied (a DeleteObjects may touch the same key twice)."""
        found = {raw_key: L.unpack(raw) for raw_key, raw in scan(self.db, prefix)}
        for raw_key in self.version_writes.get(prefix, ()):
            found[raw_key] = self.overlay[raw_key]
        return sorted((k, v) for k, v in found.items() if v is not None)

    def refs(self, chunks: list[list[Any]], delta: int) -> None:
        for digest, size in chunks:
            entry = self.ref_deltas[digest]
            entry[0] += delta
            entry[1] = size

    def stat(self, name: str, delta: int) -> None:
        self.stats[name] += delta

    def count(self, bucket: str, objects: int, size: int) -> None:
        """An object version came (+1, +size) or went: node totals and the bucket's usage."""
        self.stat("objects", objects)
        self.stat("logical_bytes", size)
        entry = self.usage[bucket]
        entry[0] += objects
        entry[1] += size

    def over_quota(self) -> str | None:
        """Why this command's growth breaks a bucket's quota, or None."""
        for bucket, (objects, size) in self.usage.items():
            if objects <= 0 and size <= 0:
                continue
            record = self.get(L.bucket_key(bucket))
            current = self.get(L.usage_key(bucket))
            if record is None or current is None:
                continue
            before = (current[0], current[1])
            why = quota.over_quota(record.get("quota"), before=before,
                                   after=(before[0] + objects, before[1] + size))
            if why is not None:
                return why
        return None

    def _settle_usage(self) -> None:
        for bucket, (objects, size) in self.usage.items():
            if objects == 0 and size == 0:
                continue
            current = self.get(L.usage_key(bucket))
            if current is None or self.get(L.bucket_key(bucket)) is None:
                continue  # an untracked (pre-quota) bucket, or one this command deleted
            self.put(L.usage_key(bucket), [current[0] + objects, current[1] + size])

    def _settle_refs(self, now_marker: bytes) -> None:
        for digest, (delta, size) in self.ref_deltas.items():
            if delta == 0:
                continue
            current = self.get(L.chunk_key(digest))
            count = (current[0] if current else 0) + delta
            if count < 0:  # pragma: no cover - would mean a bookkeeping bug
                raise AssertionError(f"negative refcount for chunk {digest.hex()}")
            if count == 0:
                self.delete(L.chunk_key(digest))
                self.put(L.garbage_key(digest), now_marker)
                self.stat("chunks", -1)
                self.stat("stored_bytes", -size)
            else:
                if current is None:
                    self.stat("chunks", 1)
                    self.stat("stored_bytes", size)
                self.put(L.chunk_key(digest), [count, size])

    def commit(self) -> None:
        # The garbage marker is the applied-command count, not wall time: deterministic on
        # every replica; the collector pairs it with its own clock when it first sees it.
        self._settle_refs(b"")
        self._settle_usage()
        if any(self.stats.values()):
            stats = self.get(L.STATS_KEY) or {}
            for name, delta in self.stats.items():
                stats[name] = stats.get(name, 0) + delta
            self.overlay[L.STATS_KEY] = stats
        for key, value in self.overlay.items():
            if value is None:
                self.batch.delete(key)
            elif key.startswith((L.GARBAGE_PREFIX, L.INLINE_PREFIX)):
                self.batch.put(key, value if isinstance(value, bytes) else L.pack(value))
            else:
                self.batch.put(key, L.pack(value))
        self.db.write(self.batch, _UNSYNCED)
