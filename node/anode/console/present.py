"""What the console's pages show, computed from plain data: sizes, times, a bucket's settings,
the breadcrumbs of a prefix. Pure functions; escaping is the templates' job (autoescape)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def size(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in _UNITS:
        if value < 1024 or unit == _UNITS[-1]:
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def when(epoch: float | None) -> str:
    if not epoch:
        return "-"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def url(path: str, **params: str | None) -> str:
    """A console URL; parameters that are None or empty are left out."""
    query = urlencode({k: v for k, v in params.items() if v})
    return f"{path}?{query}" if query else path


def parent_prefix(key: str) -> str:
    """The browser folder a key is listed in: everything up to its last '/'."""
    head, sep, _ = key.rpartition("/")
    return head + sep


def breadcrumbs(prefix: str) -> list[tuple[str, str]]:
    """(label, prefix) for each folder of `prefix`: "a/b/" -> [("a/", "a/"), ("b/", "a/b/")]."""
    crumbs, start = [], 0
    while (end := prefix.find("/", start)) != -1:
        crumbs.append((prefix[start : end + 1], prefix[: end + 1]))
        start = end + 1
    if start < len(prefix):
        crumbs.append((prefix[start:], prefix))
    return crumbs


def bucket_settings(record: dict[str, Any]) -> list[tuple[str, str]]:
    """A bucket record's settings as (name, value) rows: what is on, or that it is not."""
    encryption = record.get("encryption")
    lock = record.get("objectlock") or {}
    pab = record.get("pab")
    return [
        ("Owner", record.get("owner") or "(anonymous)"),
        ("Region", record.get("region") or "-"),
        ("Created", when(record.get("created"))),
        ("Versioning", record.get("versioning") or "Disabled"),
        ("Object Lock", _object_lock(lock) if lock else "Disabled"),
        ("Default encryption", _encryption(encryption) if encryption else "None"),
        ("Quota", quota(record.get("quota"))),
        ("Object ownership", str(record.get("ownership") or "-")),
        (
            "Block public access",
            ", ".join(k for k, v in sorted(pab.items()) if v) or "Off"
            if isinstance(pab, dict)
            else "Off",
        ),
        ("Bucket policy", "Set" if record.get("policy") else "None"),
        ("CORS rules", str(len(record.get("cors") or []))),
        ("Lifecycle rules", str(len(record.get("lifecycle") or []))),
        ("Tags", ", ".join(f"{k}={v}" for k, v in record.get("tags") or []) or "None"),
    ]


def policy_text(record: dict[str, Any]) -> str | None:
    """The bucket policy, pretty-printed when it is JSON."""
    policy = record.get("policy")
    if not policy:
        return None
    try:
        return json.dumps(json.loads(policy), indent=2)
    except (TypeError, ValueError):
        return str(policy)


def _object_lock(lock: dict[str, Any]) -> str:
    rule = lock.get("rule") or {}
    period = ", ".join(f"{v} {k}" for k, v in rule.items() if k != "mode")
    return f"Enabled, default {rule['mode']} for {period}" if rule.get("mode") else "Enabled"


def _encryption(encryption: dict[str, Any]) -> str:
    algorithm = str(encryption.get("algorithm") or "AES256")
    key = encryption.get("key")
    return f"{algorithm} (key {key})" if key else algorithm


def quota(limits: dict[str, Any] | None) -> str:
    limits = limits or {}
    parts = []
    if limits.get("bytes") is not None:
        parts.append(f"{size(limits['bytes'])} max")
    if limits.get("objects") is not None:
        parts.append(f"{limits['objects']} objects max")
    return ", ".join(parts) or "None"
