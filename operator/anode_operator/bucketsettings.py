"""Pure decisions for the Bucket settings that live in the node's S3 API: versioning, the
anonymous-read bucket policy statement, the lifecycle configuration, and what the storage class
means.

Each ``*_change`` function takes what the node answers now and the spec, and returns what to send
(or ``UNCHANGED``), so that a re-reconcile of an unchanged Bucket makes no write at all (every S3
bucket write is a Raft proposal) and the thin shell in ``bucketops`` only does I/O.

Ownership rules, so the operator never fights the application that holds the bucket's keys:
- anonymousRead: the operator owns one policy statement (``Sid`` ``ANONYMOUS_READ_SID``) and
  leaves every other statement of the bucket policy alone.
- lifecycle: when ``spec.lifecycle`` is present the operator owns the whole lifecycle
  configuration (``rules: []`` removes it); when absent it leaves whatever is there.
- versioning: S3 has no way back to "never versioned"; ``Disabled`` on a bucket that was
  versioned is reported, not forced.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any, Final
from xml.sax.saxutils import escape

from anode_operator.model import LifecycleRule

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
ANONYMOUS_READ_SID = "AnodeOperatorAnonymousRead"


class _Unchanged:
    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED: Final = _Unchanged()


@dataclass(frozen=True)
class Put:
    """Send this body (policy JSON text or lifecycle XML)."""

    body: bytes


@dataclass(frozen=True)
class Delete:
    """Remove the configuration (the last managed part of it went away)."""


Change = Put | Delete | _Unchanged


# ---- versioning -----------------------------------------------------------------------------


def versioning_change(*, desired: str, current: str) -> str | _Unchanged | None:
    """The status to PUT, ``UNCHANGED``, or None when the spec cannot be met.

    ``current`` is ``""`` for a bucket whose versioning was never configured."""
    if desired == "Disabled":
        return UNCHANGED if current == "" else None
    return UNCHANGED if desired == current else desired


# ---- anonymous read -------------------------------------------------------------------------


def anonymous_read_statement(bucket: str) -> dict[str, Any]:
    return {
        "Sid": ANONYMOUS_READ_SID,
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/*",
    }


def policy_change(*, current: str | None, bucket: str, anonymous_read: bool) -> Change:
    """The bucket policy with the operator's statement added or removed, others untouched.

    ``current``: the policy text the node answers, None when the bucket has none. Raises
    ValueError when that text is not a JSON policy object (the node validated it, so: never)."""
    ours = anonymous_read_statement(bucket)
    if current is None:
        if not anonymous_read:
            return UNCHANGED
        return Put(_policy_json({"Version": "2012-10-17", "Statement": [ours]}))
    document = json.loads(current)
    if not isinstance(document, dict):
        raise ValueError("the bucket policy is not a JSON object")
    statements = document.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    mine = [s for s in statements if isinstance(s, dict) and s.get("Sid") == ANONYMOUS_READ_SID]
    others = [s for s in statements if s not in mine]
    if (mine == [ours]) if anonymous_read else not mine:
        return UNCHANGED
    wanted = [*others, ours] if anonymous_read else others
    if not wanted:
        return Delete()
    return Put(_policy_json({**document, "Statement": wanted}))


def _policy_json(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


# ---- lifecycle ------------------------------------------------------------------------------


def lifecycle_xml(rules: tuple[LifecycleRule, ...]) -> bytes:
    """PutBucketLifecycleConfiguration body: one enabled rule per spec rule, prefix filter."""
    parts = [f'<LifecycleConfiguration xmlns="{S3_NS}">']
    for rule in rules:
        parts.append(
            f"<Rule><ID>{escape(rule.id)}</ID>"
            f"<Filter><Prefix>{escape(rule.prefix)}</Prefix></Filter><Status>Enabled</Status>"
        )
        if rule.expiration_days is not None:
            parts.append(f"<Expiration><Days>{rule.expiration_days}</Days></Expiration>")
        if rule.noncurrent_version_expiration_days is not None:
            parts.append(
                "<NoncurrentVersionExpiration><NoncurrentDays>"
                f"{rule.noncurrent_version_expiration_days}"
                "</NoncurrentDays></NoncurrentVersionExpiration>"
            )
        if rule.abort_incomplete_multipart_upload_days is not None:
            parts.append(
                "<AbortIncompleteMultipartUpload><DaysAfterInitiation>"
                f"{rule.abort_incomplete_multipart_upload_days}"
                "</DaysAfterInitiation></AbortIncompleteMultipartUpload>"
            )
        parts.append("</Rule>")
    parts.append("</LifecycleConfiguration>")
    return "".join(parts).encode()


def lifecycle_rules_from_xml(body: bytes) -> tuple[LifecycleRule, ...] | None:
    """The node's configuration as spec rules; None when it holds anything the spec cannot say
    (a disabled rule, tag or size filters, transitions...), which then counts as different."""
    root = ET.fromstring(body)
    rules = []
    for element in root:
        if _local(element.tag) != "Rule":
            continue
        fields: dict[str, Any] = {}
        for child in element:
            name = _local(child.tag)
            if name == "ID":
                fields["id"] = (child.text or "").strip()
            elif name == "Status":
                if (child.text or "").strip() != "Enabled":
                    return None
            elif name == "Prefix" or (name == "Filter" and not list(child)):
                fields["prefix"] = child.text or "" if name == "Prefix" else ""
            elif name == "Filter":
                prefix = _only_child(child, "Prefix")
                if prefix is None:
                    return None
                fields["prefix"] = prefix.text or ""
            elif name in _ACTIONS:
                key, inner = _ACTIONS[name]
                days = _only_child(child, inner)
                if days is None:
                    return None
                fields[key] = int((days.text or "").strip())
            else:
                return None
        if "id" not in fields:
            return None
        rules.append(LifecycleRule(**fields))
    return tuple(rules)


_ACTIONS = {
    "Expiration": ("expiration_days", "Days"),
    "NoncurrentVersionExpiration": ("noncurrent_version_expiration_days", "NoncurrentDays"),
    "AbortIncompleteMultipartUpload": (
        "abort_incomplete_multipart_upload_days",
        "DaysAfterInitiation",
    ),
}


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _only_child(element: ET.Element, name: str) -> ET.Element | None:
    children = list(element)
    if len(children) != 1 or _local(children[0].tag) != name:
        return None
    return children[0]


def lifecycle_change(
    *, current: bytes | None, rules: tuple[LifecycleRule, ...] | None
) -> Change:
    """``rules`` None: the spec has no ``lifecycle``, so the bucket's configuration is not ours.

    ``current``: the node's GetBucketLifecycleConfiguration body, None when it has none."""
    if rules is None:
        return UNCHANGED
    if not rules:
        return UNCHANGED if current is None else Delete()
    if current is not None and lifecycle_rules_from_xml(current) == rules:
        return UNCHANGED
    return Put(lifecycle_xml(rules))


# ---- quota ----------------------------------------------------------------------------------

_SUFFIXES = {
    "": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
}
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")


def parse_quantity(text: str) -> int:
    """A Kubernetes quantity as the CRD's ``quota.maxSize`` allows (``10Gi``, ``1.5G``, ``500``)
    -> bytes, rounded up (a quota never comes out smaller than written)."""
    match = _QUANTITY.match(text.strip())
    if not match:
        raise ValueError(f"invalid quantity {text!r} (expected e.g. 500Mi, 10Gi, 1.5T)")
    number, suffix = match.group(1), match.group(2) or ""
    whole, _, fraction = number.partition(".")
    scale = _SUFFIXES[suffix]
    exact = int(whole) * scale * 10 ** len(fraction) + int(fraction or "0") * scale
    return -(-exact // 10 ** len(fraction))


def quota_change(
    *, current: dict[str, Any] | None, max_size: str | None, max_objects: int | None
) -> dict[str, int | None] | _Unchanged:
    """The admin ``PUT /buckets/{name}/quota`` body, or ``UNCHANGED``.

    Only the admin API sets quotas, so the operator owns them: no ``spec.quota`` means none.
    ``current``: the bucket document's ``quota`` (None when it has none)."""
    wanted = {
        "max_bytes": parse_quantity(max_size) if max_size else None,
        "max_objects": max_objects,
    }
    now = {"max_bytes": None, "max_objects": None, **(current or {})}
    return UNCHANGED if now == wanted else wanted


# ---- storage class --------------------------------------------------------------------------

SUPPORTED_STORAGE_CLASSES = frozenset({"STANDARD"})


def storage_class_problem(storage_class: str) -> str | None:
    """Why the storage class cannot be honoured, or None.

    The node stores every object the same way (``replicationFactor`` full copies) whatever its
    ``x-amz-storage-class`` label says, so only STANDARD describes what a bucket really gets."""
    if storage_class in SUPPORTED_STORAGE_CLASSES:
        return None
    return (
        f"{storage_class} is not supported: the node keeps every object as "
        "replicationFactor full copies (STANDARD)"
    )
