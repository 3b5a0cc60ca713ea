"""Reconcile and delete ``Bucket`` resources through the owning cluster's admin API.

Ensure order: find the cluster and a node that answers, ensure the bucket's user (keys kept in
the Bucket's Secret, so re-reconciling is idempotent: ``POST /users`` with the same keys answers
200), ensure the bucket owned by that user, then write the Secret with server-side apply.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from anode_operator import buckets
from anode_operator import bucketsettings as bs
from anode_operator import constants as c
from anode_operator.admin import AdminClient, AdminError, Unreachable
from anode_operator.kube import Kube
from anode_operator.model import BucketResource, parse_bucket, parse_cluster
from anode_operator.observe import admin_clients, observe
from anode_operator.render import credentials_secret_name, endpoint
from anode_operator.s3client import S3Client, S3Error
from anode_operator.tlsclient import cluster_context

log = logging.getLogger(__name__)


class NotReadyYet(Exception):
    """The bucket cannot be reconciled now; ``status`` says why. Retry later."""

    def __init__(self, status: dict[str, Any], *, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Target:
    client: AdminClient
    endpoint: str
    region: str


def _target(kube: Kube, bucket: BucketResource) -> Target | str:
    """An admin client for the bucket's cluster, or the reason there is none."""
    obj = kube.get_cluster(namespace=bucket.namespace, name=bucket.spec.cluster)
    if obj is None:
        return "ClusterNotFound"
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        return "ClusterDeleting"
    cluster = parse_cluster(obj)
    creds = kube.read_secret(namespace=cluster.namespace, name=credentials_secret_name(cluster))
    if not creds or c.ROOT_SECRET_KEY not in creds:
        return "ClusterCredentialsMissing"
    token = creds[c.ROOT_SECRET_KEY]
    tls = bool(cluster.spec.tls_secret)
    context = cluster_context(kube, cluster)
    state = observe(
        kube, cluster=cluster.name, namespace=cluster.namespace, token=token, tls=tls,
        context=context,
    )
    clients = admin_clients(
        state, cluster=cluster.name, namespace=cluster.namespace, token=token, tls=tls,
        context=context,
    )
    leader = state.leader_ordinal(cluster.name)
    answering = [i for i in clients if i in state.nodes]
    if leader in answering:
        chosen = clients[leader]
    elif answering:
        chosen = clients[answering[0]]
    else:
        return "ClusterNotReady"
    return Target(client=chosen, endpoint=endpoint(cluster), region=cluster.spec.region)


def _keys(kube: Kube, bucket: BucketResource) -> tuple[str, str]:
    """Keys from the bucket's own Secret if it has one, else fresh ones."""
    owners = kube.secret_owner_uids(namespace=bucket.namespace, name=bucket.spec.secret_name)
    if owners is not None and bucket.uid in owners:
        data = kube.read_secret(namespace=bucket.namespace, name=bucket.spec.secret_name) or {}
        if data.get("AWS_ACCESS_KEY_ID") and data.get("AWS_SECRET_ACCESS_KEY"):
            return data["AWS_ACCESS_KEY_ID"], data["AWS_SECRET_ACCESS_KEY"]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    access = "AK" + "".join(secrets.choice(alphabet) for _ in range(18))
    return access, secrets.token_urlsafe(30)


def reconcile(obj: dict[str, Any], *, kube: Kube, now: datetime) -> dict[str, Any]:
    """Ensure user, bucket and Secret; returns the status, raises ``NotReadyYet`` to retry."""
    bucket = parse_bucket(obj)
    previous = obj.get("status") or {}

    problems: dict[str, str] | None = None  # None: settings not attempted on this pass
    usage: dict[str, Any] | None = None  # the bucket document's, once the bucket exists

    def status(ready: bool, reason: str, message: str, url: str = "") -> dict[str, Any]:
        return buckets.compute_status(
            bucket,
            ready=ready,
            reason=reason,
            message=message,
            endpoint=url,
            previous=previous,
            now=now,
            problems=problems,
            usage=usage,
        )

    target = _target(kube, bucket)
    if isinstance(target, str):
        text = f"cluster {bucket.spec.cluster}: {target}"
        raise NotReadyYet(status(False, target, text), message=text)

    owners = kube.secret_owner_uids(namespace=bucket.namespace, name=bucket.spec.secret_name)
    if owners is not None and bucket.uid not in owners:
        text = f"Secret {bucket.spec.secret_name} exists and does not belong to this Bucket"
        raise NotReadyYet(status(False, "SecretConflict", text), message=text)

    user = buckets.user_name(namespace=bucket.namespace, name=bucket.name)
    access, secret = _keys(kube, bucket)
    try:
        try:
            doc = target.client.create_user(name=user, access_key=access, secret_key=secret)
        except AdminError as exc:
            if exc.status != 409:
                raise
            # The user exists with keys we no longer have (its Secret was deleted): replace it.
            log.warning("bucket %s/%s: re-creating user %s", bucket.namespace, bucket.name, user)
            target.client.delete_user(name=user)
            doc = target.client.create_user(name=user, access_key=access, secret_key=secret)
        access = doc.get("access_key", access)
        secret = doc.get("secret_key", secret)
        try:
            bucket_doc = target.client.create_bucket(name=bucket.spec.bucket_name, owner=user)
        except AdminError as exc:
            reason = {409: "BucketOwnedElsewhere", 400: "InvalidSpec"}.get(exc.status)
            if reason is None:
                raise
            raise NotReadyYet(status(False, reason, exc.message), message=exc.message) from None
    except Unreachable as exc:
        raise NotReadyYet(status(False, "ClusterNotReady", str(exc)), message=str(exc)) from None
    except AdminError as exc:
        raise NotReadyYet(
            status(False, "AdminAPIError", exc.message), message=exc.message
        ) from None

    problems = _apply_s3_settings(target, bucket, access_key=access, secret_key=secret)
    quota_problem, bucket_doc = _apply_quota(target.client, bucket, bucket_doc)
    if quota_problem:
        problems["quota"] = quota_problem
    usage = bucket_doc.get("usage")
    kube.apply(
        buckets.render_secret(
            bucket,
            access_key=access,
            secret_key=secret,
            endpoint=target.endpoint,
            region=target.region,
        )
    )
    return status(
        True,
        "BucketReady",
        f"bucket {bucket.spec.bucket_name} on {bucket.spec.cluster}; credentials in Secret "
        f"{bucket.spec.secret_name}",
        target.endpoint,
    )


def _apply_s3_settings(
    target: Target, bucket: BucketResource, *, access_key: str, secret_key: str
) -> dict[str, str]:
    """Settings that live in the S3 API, set as the bucket's owner (never as root, so the
    node's own permission checks apply). Returns the settings not applied, with why; they end
    up in the ``SettingsApplied`` condition, and the next reconcile tries again."""
    spec = bucket.spec
    name = spec.bucket_name
    parts = urlsplit(target.client.base_url)
    s3 = S3Client(
        endpoint=f"{parts.scheme}://{parts.hostname}:{c.S3_PORT}",
        access_key=access_key,
        secret_key=secret_key,
        region=target.region,
        context=target.client.context,
    )
    problems: dict[str, str] = {}
    storage = bs.storage_class_problem(spec.storage_class)
    if storage:
        problems["storageClass"] = storage

    def versioning() -> None:
        current = s3.get_bucket_versioning(bucket=name)
        change = bs.versioning_change(desired=spec.versioning, current=current)
        if change is None:
            problems["versioning"] = (
                f"the bucket is already versioned ({current}); S3 cannot return to Disabled, "
                "use Suspended"
            )
        elif isinstance(change, str):
            s3.put_bucket_versioning(bucket=name, status=change)

    def anonymous_read() -> None:
        change = bs.policy_change(
            current=s3.get_bucket_policy(bucket=name),
            bucket=name,
            anonymous_read=spec.anonymous_read,
        )
        _send(change, put=lambda body: s3.put_bucket_policy(bucket=name, policy=body),
              delete=lambda: s3.delete_bucket_policy(bucket=name))

    def lifecycle() -> None:
        if spec.lifecycle is None:
            return  # not ours to manage: not even a GET
        change = bs.lifecycle_change(
            current=s3.get_bucket_lifecycle(bucket=name), rules=spec.lifecycle
        )
        _send(change, put=lambda body: s3.put_bucket_lifecycle(bucket=name, configuration=body),
              delete=lambda: s3.delete_bucket_lifecycle(bucket=name))

    for setting, step in (
        ("versioning", versioning),
        ("anonymousRead", anonymous_read),
        ("lifecycle", lifecycle),
    ):
        try:
            step()
        except (S3Error, OSError, ValueError) as exc:
            log.warning("bucket %s/%s: %s not applied: %s", bucket.namespace, bucket.name,
                        setting, exc)
            problems[setting] = _short(exc)
    return problems


def _apply_quota(
    client: AdminClient, bucket: BucketResource, doc: dict[str, Any]
) -> tuple[str | None, dict[str, Any]]:
    """Set the quota through the admin API when it differs; (problem or None, bucket document)."""
    try:
        change = bs.quota_change(
            current=doc.get("quota"),
            max_size=bucket.spec.quota_max_size,
            max_objects=bucket.spec.quota_max_objects,
        )
        if isinstance(change, dict):
            doc = client.set_bucket_quota(name=bucket.spec.bucket_name, **change)
    except (AdminError, Unreachable, ValueError) as exc:
        log.warning("bucket %s/%s: quota not applied: %s", bucket.namespace, bucket.name, exc)
        return str(exc)[:200], doc
    return None, doc


def _send(change: bs.Change, *, put: Callable[[bytes], None], delete: Callable[[], None]) -> None:
    if isinstance(change, bs.Put):
        put(change.body)
    elif isinstance(change, bs.Delete):
        delete()


def _short(exc: Exception) -> str:
    """An S3 error as its code and message, short enough for a condition message."""
    if isinstance(exc, S3Error):
        code = re.search(r"<Code>([^<]*)</Code>", exc.body)
        text = re.search(r"<Message>([^<]*)</Message>", exc.body)
        if code:
            return f"{code.group(1)}: {text.group(1) if text else ''}".strip(": ")[:200]
    return str(exc)[:200]


@dataclass(frozen=True)
class DeletionOutcome:
    done: bool
    reason: str
    message: str


def delete(
    obj: dict[str, Any], *, kube: Kube, seconds_since_deletion: float, give_up_after: float
) -> DeletionOutcome:
    bucket = parse_bucket(obj)
    cluster = kube.get_cluster(namespace=bucket.namespace, name=bucket.spec.cluster)
    target = _target(kube, bucket) if cluster is not None else "ClusterNotFound"
    step = buckets.plan_deletion(
        policy=bucket.spec.deletion_policy,
        cluster_exists=cluster is not None,
        cluster_deleting=bool(((cluster or {}).get("metadata") or {}).get("deletionTimestamp")),
        cluster_reachable=not isinstance(target, str),
        seconds_since_deletion=seconds_since_deletion,
        give_up_after=give_up_after,
    )
    match step:
        case buckets.RetainBucket():
            return DeletionOutcome(True, "Retained", f"bucket {bucket.spec.bucket_name} kept")
        case buckets.Release(reason=reason, message=message):
            return DeletionOutcome(True, reason, message)
        case buckets.RetryLater(reason=reason, message=message):
            return DeletionOutcome(False, reason, message)
    assert isinstance(target, Target)
    user = buckets.user_name(namespace=bucket.namespace, name=bucket.name)
    try:
        target.client.delete_bucket(name=bucket.spec.bucket_name, force=True)
        target.client.delete_user(name=user)
    except (AdminError, Unreachable) as exc:
        return DeletionOutcome(False, "AdminAPIError", str(exc)[:200])
    return DeletionOutcome(True, "Deleted", f"bucket {bucket.spec.bucket_name} and {user} deleted")
