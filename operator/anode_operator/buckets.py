"""Pure decisions for ``Bucket`` resources: names, the credentials Secret, status, and what a
deletion should do.

A Bucket maps to one node user (``bucket-<namespace>-<name>``, owner of the bucket) whose access
key goes into the application's Secret; the root key never leaves the operator. Deletion must never
wedge: when the cluster (or the bucket on it) is already gone there is nothing to clean up, and
when the cluster is unreachable for longer than the grace period the finalizer is released with a
Warning rather than blocking the namespace forever.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from anode_operator import constants as c
from anode_operator.model import BucketResource
from anode_operator.status import rfc3339, without_empty_strings

MAX_USER_NAME = 63


def user_name(*, namespace: str, name: str) -> str:
    """Node user owning the bucket; stable, unique per Bucket resource, at most 63 chars."""
    full = f"bucket-{namespace}-{name}"
    if len(full) <= MAX_USER_NAME:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:8]
    return f"{full[: MAX_USER_NAME - 9]}-{digest}"


def render_secret(
    bucket: BucketResource,
    *,
    access_key: str,
    secret_key: str,
    endpoint: str,
    region: str,
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": bucket.spec.secret_name,
            "namespace": bucket.namespace,
            "labels": {
                c.LABEL_NAME: "anode",
                c.LABEL_COMPONENT: "bucket-credentials",
                c.LABEL_INSTANCE: bucket.spec.cluster,
                c.LABEL_MANAGED_BY: c.OPERATOR_NAME,
                c.LABEL_PART_OF: "anode",
            },
            "ownerReferences": [bucket.owner.as_manifest()],
        },
        "type": "Opaque",
        "data": {
            key: base64.b64encode(value.encode()).decode()
            for key, value in {
                "AWS_ACCESS_KEY_ID": access_key,
                "AWS_SECRET_ACCESS_KEY": secret_key,
                "AWS_ENDPOINT_URL": endpoint,
                "AWS_REGION": region,
                "BUCKET_NAME": bucket.spec.bucket_name,
            }.items()
        },
    }


def _quota_status(bucket: BucketResource) -> dict[str, Any] | None:
    """The quota as the spec asks for it (SettingsApplied says whether the node has it)."""
    s = bucket.spec
    if not s.quota_max_size and not s.quota_max_objects:
        return None
    return {
        k: v
        for k, v in {"maxSize": s.quota_max_size, "maxObjects": s.quota_max_objects}.items()
        if v
    }


def settings_condition(problems: Mapping[str, str] | None) -> tuple[str, str, str]:
    """(status, reason, message) of ``SettingsApplied``.

    ``problems``: setting -> why it is not applied; None when the settings were not attempted on
    this pass (the cluster or bucket was not ready), which is ``Unknown``, not a failure."""
    if problems is None:
        return "Unknown", "NotAttempted", "settings are applied once the bucket exists"
    if not problems:
        return "True", "Applied", "all settings applied"
    text = "; ".join(f"{name}: {why}" for name, why in sorted(problems.items()))
    return "False", "NotApplied", f"not applied: {text}"[:1000]


@dataclass(frozen=True)
class DeleteBucket:
    """Delete the bucket (with its objects) and its user."""


@dataclass(frozen=True)
class RetainBucket:
    """Keep bucket and user on the cluster; only the Kubernetes side goes away."""


@dataclass(frozen=True)
class Release:
    """Nothing left to clean up (or no way to): drop the finalizer now."""

    reason: str
    message: str


@dataclass(frozen=True)
class RetryLater:
    reason: str
    message: str


DeletionStep = DeleteBucket | RetainBucket | Release | RetryLater


def plan_deletion(
    *,
    policy: str,
    cluster_exists: bool,
    cluster_deleting: bool,
    cluster_reachable: bool,
    seconds_since_deletion: float,
    give_up_after: float,
) -> DeletionStep:
    if policy == "Retain":
        return RetainBucket()
    if not cluster_exists or cluster_deleting:
        return Release("ClusterGone", "the AnodeCluster is gone; nothing to delete")
    if not cluster_reachable:
        if seconds_since_deletion >= give_up_after:
            return Release(
                "ClusterUnreachable",
                f"cluster unreachable for {int(seconds_since_deletion)}s; bucket left in place",
            )
        return RetryLater("ClusterUnreachable", "no node of the cluster answers; retrying")
    return DeleteBucket()


def settings_warning(
    previous: dict[str, Any] | None, status: dict[str, Any]
) -> tuple[str, str] | None:
    """(reason, message) of a Warning Event when ``SettingsApplied`` turns False or says
    something new; None otherwise (the timer recomputes the same status every few seconds)."""

    def condition(doc: dict[str, Any] | None) -> dict[str, Any]:
        return next(
            (x for x in (doc or {}).get("conditions") or [] if x.get("type") == "SettingsApplied"),
            {},
        )

    new, old = condition(status), condition(previous)
    if new.get("status") != "False":
        return None
    if old.get("status") == "False" and old.get("message") == new.get("message"):
        return None
    return "SettingsNotApplied", str(new.get("message", ""))


def compute_status(
    bucket: BucketResource,
    *,
    ready: bool,
    reason: str,
    message: str,
    endpoint: str,
    previous: dict[str, Any] | None,
    now: datetime,
    problems: Mapping[str, str] | None = None,
    usage: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Bucket status with kstatus conditions (Ready / Reconciling / Stalled)."""
    prev = {c_["type"]: c_ for c_ in (previous or {}).get("conditions") or []}
    stalled = not ready and reason in {
        "ClusterNotFound",
        "InvalidSpec",
        "BucketOwnedElsewhere",
        "SecretConflict",
    }
    reconciling = not ready and not stalled

    def cond(kind: str, value: bool | str, why: str, text: str) -> dict[str, Any]:
        status = value if isinstance(value, str) else ("True" if value else "False")
        old = prev.get(kind)
        keep = old is not None and old.get("status") == status
        return {
            "type": kind,
            "status": status,
            "reason": why,
            "message": text,
            "observedGeneration": bucket.generation,
            "lastTransitionTime": old["lastTransitionTime"] if old and keep else rfc3339(now),
        }

    settings = settings_condition(problems)
    conditions = [
        cond("Ready", ready, reason, message),
        cond("Reconciling", reconciling, reason if reconciling else "Reconciled", message),
        cond("Stalled", stalled, reason if stalled else "NotStalled", message),
        cond("SettingsApplied", *settings),
    ]
    return without_empty_strings(
        {
            "observedGeneration": bucket.generation,
            "phase": "Ready" if ready else ("Failed" if stalled else "Pending"),
            "bucketName": bucket.spec.bucket_name,
            "secretName": bucket.spec.secret_name,
            "user": user_name(namespace=bucket.namespace, name=bucket.name),
            "endpoint": endpoint,
            "quota": _quota_status(bucket),
            "usage": (
                {"objects": int(usage["objects"]), "bytes": int(usage["bytes"])} if usage else None
            ),
            "conditions": conditions,
        }
    )
