"""The lifecycle worker: carries out buckets' lifecycle rules on the Raft leader.

Every `interval` seconds the leader (and only the leader, so that two nodes never expire the same
objects) reads each bucket with rules and proposes ordinary commands: DeleteObjects for expired
current versions (a delete marker in a versioning bucket), expired noncurrent versions and lone
delete markers, AbortUpload for stale multipart uploads. Every delete names the `mtime` of the
version it judged expired, so a version written between the scan and the commit is never
deleted by mistake (the state machine skips it). The rules themselves are `lifecycle.rules`.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import Refused
from ..meta.commands import AbortUpload, Command, DeleteObjects
from ..meta.layout import unpack
from ..meta.store import MetaStore
from . import rules as rules_of

log = logging.getLogger(__name__)

BATCH = 500  # keys per DeleteObjects command


@dataclass
class _Plan:
    """What one bucket's pass decided: (key, version id or None, mtime) deletes, and uploads."""

    deletes: list[tuple[str, str | None, float]] = field(default_factory=list)
    aborts: list[tuple[str, str]] = field(default_factory=list)


def plan_bucket(
    meta: MetaStore, bucket: str, record: dict[str, Any], *, now: float, day_seconds: float
) -> _Plan:
    """Pure with respect to the store: what the rules expire in `bucket` at `now`."""
    rules = [r for r in record.get("lifecycle") or [] if r["status"] == "Enabled"]
    plan = _Plan()
    if not rules:
        return plan
    if record.get("versioning") is None:
        for key, raw in meta.objects(bucket):
            current = unpack(raw)
            if _current_expires(rules, key, current, now, day_seconds):
                plan.deletes.append((key, None, current["mtime"]))
    else:
        for key, versions in meta.versions(bucket):
            _plan_versions(plan, rules, key, versions, now, day_seconds)
    if any("abort_days" in r for r in rules):
        for key, upload_id, upload in meta.uploads(bucket):
            if any(
                rules_of.applies_to(r, key)
                and rules_of.upload_expired(r, upload["initiated"], now, day_seconds)
                for r in rules
            ):
                plan.aborts.append((key, upload_id))
    return plan


def _current_expires(
    rules: list[dict[str, Any]], key: str, record: dict[str, Any], now: float, day_seconds: float
) -> bool:
    return any(
        rules_of.applies_to(r, key, size=record["size"], tags=record.get("tags") or [])
        and rules_of.current_expired(r, record, now, day_seconds)
        for r in rules
    )


def _plan_versions(
    plan: _Plan,
    rules: list[dict[str, Any]],
    key: str,
    versions: list[dict[str, Any]],
    now: float,
    day_seconds: float,
) -> None:
    current = versions[0]
    if current.get("marker"):
        # A lone ("expired object") delete marker goes at once with ExpiredObjectDeleteMarker,
        # and once old enough under an Expiration Days/Date rule (AWS "Managing delete markers").
        if len(versions) == 1 and any(
            rules_of.applies_to(r, key)
            and (
                r.get("expiration", {}).get("marker")
                or rules_of.current_expired(r, current, now, day_seconds)
            )
            for r in rules
        ):
            plan.deletes.append((key, current["vid"], current["mtime"]))
    elif _current_expires(rules, key, current, now, day_seconds):
        plan.deletes.append((key, None, current["mtime"]))
    for position, version in enumerate(versions[1:]):
        since = versions[position]["mtime"]  # it became noncurrent when its successor came
        size = None if version.get("marker") else version["size"]
        if any(
            rules_of.applies_to(r, key, size=size, tags=version.get("tags") or [])
            and rules_of.noncurrent_expired(r, position, since, now, day_seconds)
            for r in rules
        ):
            plan.deletes.append((key, version["vid"], version["mtime"]))


def commands_for(bucket: str, plan: _Plan, *, now: float) -> list[Command]:
    commands: list[Command] = []
    for start in range(0, len(plan.deletes), BATCH):
        batch = plan.deletes[start : start + BATCH]
        commands.append(
            DeleteObjects(
                bucket=bucket,
                keys=tuple(k for k, _, _ in batch),
                version_ids=tuple(v for _, v, _ in batch),
                marker_ids=tuple(_marker_id() for _ in batch),
                mtime=now,
                owner="",
                if_mtimes=tuple(m for _, _, m in batch),
            )
        )
    commands += [AbortUpload(bucket=bucket, key=k, upload_id=u) for k, u in plan.aborts]
    return commands


def _marker_id() -> str:
    """A fresh 32-character version id for the delete marker an expiration leaves."""
    return secrets.token_urlsafe(24)


class LifecycleWorker:
    def __init__(
        self,
        *,
        meta: MetaStore,
        propose: Callable[[Command], Awaitable[Any]],
        is_leader: Callable[[], bool],
        day_seconds: float,
    ) -> None:
        self.meta = meta
        self.propose = propose
        self.is_leader = is_leader
        self.day_seconds = day_seconds
        self.expired = 0  # versions and markers deleted, uploads aborted (for tests and status)

    async def run(self, *, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # a lost leadership or quorum: try again next period
                log.exception("lifecycle pass failed")

    async def run_once(self) -> int:
        """One pass over every bucket with rules, if this node leads; what it expired."""
        if not self.is_leader():
            return 0
        done = 0
        for bucket, record in list(self.meta.buckets()):
            if not record.get("lifecycle"):
                continue
            now = time.time()
            plan = plan_bucket(self.meta, bucket, record, now=now, day_seconds=self.day_seconds)
            for command in commands_for(bucket, plan, now=now):
                try:
                    await self.propose(command)
                except Refused:
                    continue  # e.g. the upload was completed or aborted meanwhile
                done += len(command.keys) if isinstance(command, DeleteObjects) else 1
            await asyncio.sleep(0)
        self.expired += done
        return done
