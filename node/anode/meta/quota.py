"""Bucket quotas: what counts as usage and when a write goes over.

Usage is [object versions, logical bytes] of a bucket (delete markers and multipart parts are not
objects yet, so they do not count), kept at `Q/<bucket>` by the state machine in the same batch as
the versions that change it. The check runs at apply time, so every replica refuses the same
writes: a command that increases a bucket's usage beyond its quota is rejected with nothing
written. A command that shrinks usage (a smaller overwrite, a delete) always passes, so a bucket
whose quota was lowered below its usage can still be cleaned up. Pure, except `scan_usage`.
"""

from __future__ import annotations

from typing import Any

from rocksdict import Rdict

from . import layout as L

Usage = tuple[int, int]  # (objects, bytes)


def validate_limit(value: Any, name: str) -> int | None:
    """A quota limit from the admin API: a positive integer, or None for no limit."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name!r} must be a positive integer or null")
    return value


def quota_record(max_bytes: int | None, max_objects: int | None) -> dict[str, int] | None:
    """What the bucket record stores under `quota` (None: no quota)."""
    record = {}
    if max_bytes is not None:
        record["bytes"] = max_bytes
    if max_objects is not None:
        record["objects"] = max_objects
    return record or None


def over_quota(quota: dict[str, int] | None, *, before: Usage, after: Usage) -> str | None:
    """Why going from `before` to `after` breaks the quota, or None.

    Only growth is refused: each limit is checked when its own counter goes up."""
    if not quota:
        return None
    objects, size = after
    if "bytes" in quota and size > before[1] and size > quota["bytes"]:
        return f"the bucket would hold {size} bytes; its quota is {quota['bytes']} bytes"
    if "objects" in quota and objects > before[0] and objects > quota["objects"]:
        return f"the bucket would hold {objects} objects; its quota is {quota['objects']} objects"
    return None


def part_over_quota(
    bucket: dict[str, Any] | None, usage: list[int] | None, size: int
) -> str | None:
    """Why a multipart part of `size` bytes cannot fit in the bucket as it is now, or None."""
    if bucket is None or usage is None:
        return None
    why = over_quota(bucket.get("quota"), before=(usage[0], usage[1]),
                     after=(usage[0], usage[1] + size))
    return None if why is None else f"this part: {why}"


def scan_usage(db: Rdict, bucket: str) -> Usage:
    """Count a bucket's usage from its versions (for a bucket without a Q/ counter).

    O/ records without `vid` are never-versioned objects; those with `vid` are copies of V/
    entries, which are counted there."""
    objects = size = 0
    for prefix in (L.object_prefix(bucket), L.version_prefix(bucket)):
        it = db.iter()
        it.seek(prefix)
        while it.valid() and it.key().startswith(prefix):
            record = L.unpack(it.value())
            versioned_copy = prefix[:2] == b"O/" and "vid" in record
            if not versioned_copy and not record.get("marker"):
                objects += 1
                size += record["size"]
            it.next()
    return objects, size
