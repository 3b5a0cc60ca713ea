"""Apply the multipart upload commands: CreateUpload, PutPart, CompleteUpload, AbortUpload.
Dispatched from `meta/state.py`'s `APPLY` table. Parts hold chunk references of their own
until CompleteUpload hands the chosen ones to the new version (`version_steps.write_version`).
"""

from __future__ import annotations

import hashlib
from typing import Any, cast

from . import commands as c
from . import layout as L
from . import quota
from . import version_steps as steps
from .layout import scan
from .records import VersionRecord
from .tx import Tx


def multipart_etag(part_etags: list[str]) -> str:
    digest = hashlib.md5(b"".join(bytes.fromhex(e.strip('"')) for e in part_etags))
    return f'"{digest.hexdigest()}-{len(part_etags)}"'


def create_upload(tx: Tx, cmd: c.CreateUpload) -> Any:
    if tx.get(L.bucket_key(cmd.bucket)) is None:
        return c.Rejected("NoSuchBucket")
    tx.put(L.upload_key(cmd.bucket, cmd.key, cmd.upload_id), cmd.record)
    return cmd.upload_id


def put_part(tx: Tx, cmd: c.PutPart) -> Any:
    if tx.get(L.upload_key(cmd.bucket, cmd.key, cmd.upload_id)) is None:
        return c.Rejected("NoSuchUpload")
    # Parts are not objects yet, but one that could never fit is refused now, not at
    # CompleteMultipartUpload after the client sent everything (MinIO checks parts too).
    why = quota.part_over_quota(
        tx.get(L.bucket_key(cmd.bucket)), tx.get(L.usage_key(cmd.bucket)), cmd.record["size"]
    )
    if why is not None:
        return c.Rejected("QuotaExceeded", why)
    key = L.part_key(cmd.upload_id, cmd.part_number)
    old = tx.get(key)
    if old is not None:
        tx.refs(old["chunks"], -1)
    tx.refs(cmd.record["chunks"], +1)
    tx.put(key, cmd.record)
    return {"etag": cmd.record["etag"]}


def complete_upload(tx: Tx, cmd: c.CompleteUpload) -> Any:
    upload_key = L.upload_key(cmd.bucket, cmd.key, cmd.upload_id)
    upload = tx.get(upload_key)
    obj_key = L.object_key(cmd.bucket, cmd.key)
    current = tx.get(obj_key)
    bucket = tx.get(L.bucket_key(cmd.bucket))
    if upload is None or bucket is None:
        # A retried Complete whose first attempt succeeded answers as that attempt did.
        if current is not None and current.get("upload_id") == cmd.upload_id:
            return {"etag": current["etag"], "record": current, "version_id": current.get("vid")}
        return c.Rejected("NoSuchUpload")
    if not cmd.parts:
        return c.Rejected("MalformedXML", "You must specify at least one part")
    numbers = [n for n, _ in cmd.parts]
    if numbers != sorted(numbers) or len(set(numbers)) != len(numbers):
        return c.Rejected("InvalidPartOrder")
    stored = {int(k[-5:]): L.unpack(v) for k, v in scan(tx.db, L.part_prefix(cmd.upload_id))}
    chosen = []
    for i, (number, etag) in enumerate(cmd.parts):
        part = stored.get(number)
        if part is None or part["etag"].strip('"') != etag.strip('"'):
            return c.Rejected("InvalidPart")
        if i < len(cmd.parts) - 1 and part["size"] < cmd.min_part_size:
            return c.Rejected("EntityTooSmall")
        chosen.append(part)
    if cmd.object_size is not None and cmd.object_size != sum(p["size"] for p in chosen):
        return c.Rejected("InvalidRequest", "The provided 'x-amz-mp-object-size' header value "
                          "does not match the size of the object")
    rejected = steps.check_write_conditions(current, cmd.if_match, cmd.if_none_match)
    if rejected:
        return rejected
    record = cast(VersionRecord, dict(upload["record"]))
    record.update(
        {
            "size": sum(p["size"] for p in chosen),
            "etag": multipart_etag([p["etag"] for p in chosen]),
            "mtime": cmd.mtime,
            "chunks": [ch for p in chosen for ch in p["chunks"]],
            "parts": [p["size"] for p in chosen],
            "upload_id": cmd.upload_id,
        }
    )
    if any(p.get("cks") for p in chosen):  # GetObjectAttributes answers part checksums
        record["part_cks"] = [p.get("cks") or {} for p in chosen]
    if cmd.checksums:
        record["cks"] = dict(cmd.checksums)
        record["cktype"] = upload.get("cktype") or "COMPOSITE"
    # The new version takes over the chosen parts' references; the rest are released.
    record = steps.write_version(tx, bucket, cmd.bucket, cmd.key, record, cmd.version_id)
    steps.drop_upload(tx, upload_key, cmd.upload_id)
    return {"etag": record["etag"], "record": record, "version_id": record.get("vid")}


def abort_upload(tx: Tx, cmd: c.AbortUpload) -> Any:
    key = L.upload_key(cmd.bucket, cmd.key, cmd.upload_id)
    if tx.get(key) is None:
        return c.Rejected("NoSuchUpload")
    steps.drop_upload(tx, key, cmd.upload_id)
    return None
