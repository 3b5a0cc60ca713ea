"""The steps several commands share to write, find and drop object versions.

A version lives in `V/` (versioning buckets; one entry per version, newest first) and its
newest non-marker copy in `O/`; a never-versioned key has its one record in `O/` only. These
steps keep that invariant and the chunk references (`Tx.refs`) and usage (`Tx.count`) in step
with it. Used by `apply_objects`, `apply_uploads` and `apply_buckets`.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from . import commands as c
from . import layout as L
from .layout import scan
from .locks import deletion_refused
from .records import BucketRecord, VersionRecord
from .tx import CommandRefused, Tx


def add_version(tx: Tx, bucket: str, key: bytes, record: VersionRecord) -> None:
    tx.refs(record["chunks"], +1)
    tx.count(bucket, 1, record["size"])
    tx.put(key, record)


def drop_version(tx: Tx, bucket: str, key: bytes, record: VersionRecord) -> None:
    tx.refs(record["chunks"], -1)
    tx.count(bucket, -1, -record["size"])
    tx.delete(key)


def write_version(
    tx: Tx,
    bucket: BucketRecord,
    bucket_name: str,
    key: str,
    record: VersionRecord,
    version_id: str | None,
) -> VersionRecord:
    """Make `record` (an object version or a delete marker) the newest version of the key,
    taking references to its chunks, as the bucket's versioning state says; the stored record.

    Unversioned buckets replace O/ as they always did. Enabled keeps every older version;
    Suspended replaces only the `null` version. `version_id` is the proposer's fresh id."""
    status = bucket.get("versioning")
    if status is None:
        obj_key = L.object_key(bucket_name, key)
        current = tx.get(obj_key)
        if current is not None:
            drop_version(tx, bucket_name, obj_key, current)
        if "vid" in record:  # would make O/ look like a copy that holds no references
            record = record.copy()
            del record["vid"]
        add_version(tx, bucket_name, obj_key, record)
        return record
    history = history_of(tx, bucket_name, key)
    seq = history[0][0] + 1 if history else 1
    if status == "Enabled":
        vid = version_id or _derived_version_id(bucket_name, key, seq, record)
    else:
        vid = "null"
        for old_seq, old in history:
            if old["vid"] == "null":
                if deletion_refused(old, now=record.get("mtime", 0.0), bypass=False):
                    raise CommandRefused(c.Rejected("AccessDenied"))
                release_version(tx, bucket_name, old)
                tx.delete(L.version_key(bucket_name, key, old_seq))
    stored: VersionRecord = {**record, "vid": vid}
    if not stored.get("marker"):
        tx.refs(stored["chunks"], +1)
        tx.count(bucket_name, 1, stored["size"])
    tx.put(L.version_key(bucket_name, key, seq), stored)
    sync_current(tx, bucket_name, key)
    return stored


def history_of(tx: Tx, bucket: str, key: str) -> list[tuple[int, VersionRecord]]:
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


def sync_current(tx: Tx, bucket: str, key: str) -> None:
    """O/ mirrors the newest version, or is absent when that is a delete marker (or none)."""
    entries = tx.versions(L.key_versions_prefix(bucket, key))
    if entries and not entries[0][1].get("marker"):
        tx.put(L.object_key(bucket, key), entries[0][1])
    else:
        tx.delete(L.object_key(bucket, key))


def release_version(tx: Tx, bucket: str, record: VersionRecord) -> None:
    """Give up a V/ entry's references (delete markers hold none)."""
    if not record.get("marker"):
        tx.refs(record["chunks"], -1)
        tx.count(bucket, -1, -record["size"])


def drop_upload(tx: Tx, upload_key: bytes, upload_id: str) -> None:
    for part_key, raw in scan(tx.db, L.part_prefix(upload_id)):
        tx.refs(L.unpack(raw)["chunks"], -1)
        tx.delete(part_key)
    tx.delete(upload_key)


def find_version(
    tx: Tx,
    bucket: str,
    key: str,
    version_id: str | None,
    *,
    unversioned: bool,
    absent: str = "NoSuchVersion",
) -> Found | c.Rejected:
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
        return Found(None, current, newest=True)
    for i, (raw_key, record) in enumerate(entries):
        if record["vid"] != wanted:
            continue
        if record.get("marker"):
            return c.Rejected("MethodNotAllowed")
        return Found(raw_key, record, newest=i == 0)
    return c.Rejected("NoSuchVersion" if version_id is not None else "NoSuchKey")


def store_version(tx: Tx, bucket: str, key: str, found: Found, record: VersionRecord) -> None:
    """Write a changed version back: its V/ entry, and O/ when it is the newest."""
    if found.raw_key is not None:
        tx.put(found.raw_key, record)
    if found.newest:
        tx.put(L.object_key(bucket, key), record)


def check_write_conditions(
    current: VersionRecord | None, if_match: str | None, if_none_match: bool
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
class Found:
    raw_key: bytes | None  # its V/ entry; None for a never-versioned key (O/ only)
    record: VersionRecord
    newest: bool


def _derived_version_id(bucket: str, key: str, seq: int, record: VersionRecord) -> str:
    """A deterministic id for a proposer that did not choose one (same on every replica)."""
    seed = f"{bucket}\0{key}\0{seq}\0{record.get('mtime')}\0{record.get('etag')}".encode()
    return base64.urlsafe_b64encode(hashlib.sha256(seed).digest()[:24]).decode()
