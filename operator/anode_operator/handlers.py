"""kopf handlers: thin adapters from kopf's callbacks to ``clusters`` and ``bucketops``.

Each handler parses nothing and decides nothing: it hands the body to the reconcile module, writes
the returned status into kopf's ``patch`` (so kopf applies it together with its own bookkeeping,
which lives under ``status.kopf``) and turns "not yet" into ``kopf.TemporaryError``.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

import kopf

from anode_operator import bucketops, buckets, clusters
from anode_operator import constants as c
from anode_operator.kube import Kube, load_config
from anode_operator.settings import SETTINGS

_KUBE: Kube | None = None


def kube() -> Kube:
    global _KUBE  # one API client per process, created lazily after kopf has started
    if _KUBE is None:
        load_config()
        _KUBE = Kube()
    return _KUBE


def _now() -> datetime:
    return datetime.now(UTC)


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # kopf's own bookkeeping in status fields: annotations are capped at 256 KiB in total.
    settings.persistence.progress_storage = kopf.StatusProgressStorage(field="status.kopf.progress")
    settings.persistence.diffbase_storage = kopf.StatusDiffBaseStorage(
        field="status.kopf.lastHandledConfiguration"
    )
    settings.persistence.finalizer = f"{c.GROUP}/finalizer"
    settings.posting.level = logging.WARNING  # Events come from our own emit(), not from logs
    settings.execution.max_workers = 8
    # A cluster deleted while its timer runs keeps the finalizer until kopf sees the timer exit;
    # kopf looks again only every 60 s by default, so deletions took a minute longer.
    settings.background.cancellation_polling = 2.0
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330


@kopf.on.startup()
def warm_up(**_: Any) -> None:
    kube().warm_up()


def _emitter(body: kopf.Body):
    def emit(kind: str, reason: str, message: str) -> None:
        kopf.event(body, type=kind, reason=reason, message=message[:1000])

    return emit


# --- AnodeCluster ---------------------------------------------------------------------------
@kopf.on.resume(c.GROUP, c.VERSION, c.CLUSTER_PLURAL)
@kopf.on.create(c.GROUP, c.VERSION, c.CLUSTER_PLURAL)
@kopf.on.update(c.GROUP, c.VERSION, c.CLUSTER_PLURAL, field="spec")
def cluster_changed(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    status = clusters.reconcile(dict(body), kube=kube(), emit=_emitter(body), now=_now())
    patch.status.update(status)


@kopf.timer(
    c.GROUP, c.VERSION, c.CLUSTER_PLURAL, interval=SETTINGS.cluster_interval, initial_delay=2.0
)
def cluster_tick(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    status = clusters.reconcile(dict(body), kube=kube(), emit=_emitter(body), now=_now())
    patch.status.update(status)


@kopf.on.delete(c.GROUP, c.VERSION, c.CLUSTER_PLURAL, optional=True)
def cluster_deleted(uid: str, **_: Any) -> None:
    clusters.MEMORY.forget(uid)  # children go with ownerReference garbage collection


# --- Bucket ---------------------------------------------------------------------------------
def _bucket(body: kopf.Body, patch: kopf.Patch) -> None:
    try:
        status = bucketops.reconcile(dict(body), kube=kube(), now=_now())
    except bucketops.NotReadyYet as exc:
        patch.status.update(exc.status)
        raise kopf.TemporaryError(str(exc), delay=SETTINGS.retry_delay) from None
    warning = buckets.settings_warning(dict(body.get("status") or {}), status)
    if warning is not None:
        kopf.warn(body, reason=warning[0], message=warning[1])
    patch.status.update(status)


@kopf.on.resume(c.GROUP, c.VERSION, c.BUCKET_PLURAL)
@kopf.on.create(c.GROUP, c.VERSION, c.BUCKET_PLURAL)
@kopf.on.update(c.GROUP, c.VERSION, c.BUCKET_PLURAL, field="spec")
def bucket_changed(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    _bucket(body, patch)


@kopf.timer(c.GROUP, c.VERSION, c.BUCKET_PLURAL, interval=SETTINGS.bucket_interval, idle=5.0)
def bucket_tick(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    """Re-ensure periodically: a deleted Secret or a bucket lost on the cluster comes back."""
    with contextlib.suppress(kopf.TemporaryError):  # status says why; the next tick retries
        _bucket(body, patch)


@kopf.on.delete(c.GROUP, c.VERSION, c.BUCKET_PLURAL)
def bucket_deleted(body: kopf.Body, meta: kopf.Meta, **_: Any) -> None:
    stamp = meta.get("deletionTimestamp")
    since = (
        (
            _now() - datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        ).total_seconds()
        if stamp
        else 0.0
    )
    outcome = bucketops.delete(
        dict(body),
        kube=kube(),
        seconds_since_deletion=since,
        give_up_after=SETTINGS.bucket_delete_give_up,
    )
    if not outcome.done:
        raise kopf.TemporaryError(outcome.message, delay=SETTINGS.retry_delay)
    if outcome.reason == "ClusterUnreachable":
        kopf.warn(body, reason=outcome.reason, message=outcome.message)
    else:
        kopf.info(body, reason=outcome.reason, message=outcome.message)
