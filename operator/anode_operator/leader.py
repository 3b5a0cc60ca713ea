"""Leader election with a ``coordination.k8s.io/v1`` Lease, before kopf starts.

kopf has no leader election of its own: its peering pauses every instance that sees another of
the same priority, so two replicas of one Deployment (same priority) both pause and nothing is
reconciled. Here each replica first waits for the Lease (the standby), then runs kopf alone
(``standalone``) while it keeps renewing; a leader that cannot renew within ``renew_deadline``
exits at once, before anyone else may take the Lease (``duration``, measured on the standby's
own clock from when it last saw the Lease change, so pods' clocks need not agree). A graceful
stop releases the Lease, so the standby takes over within ``retry`` seconds; after a SIGKILL it
takes over within ``duration + retry``. This is what client-go's leaderelection does.

The holder also makes its own Pod the Lease's owner (``owner``, from the Deployment's downward
API): ``helm uninstall`` deletes the operator's RBAC and ServiceAccount before the pods stop, so
the graceful release then fails, and the garbage collector removes the Lease with the last
holder's Pod instead of leaving a stale holder behind. A standby that takes over writes itself as
owner; if the Lease was collected meanwhile it is simply created again.

``decide`` is the whole rule, pure; ``LeaseElector`` does the API calls around it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum

import kubernetes
from kubernetes.client.exceptions import ApiException

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Timing:
    duration: float = 15.0  # how long a Lease nobody renews keeps others out
    renew_deadline: float = 10.0  # the leader gives up when its last renewal is this old
    retry: float = 2.0  # how often the standby tries, and the leader renews


@dataclass(frozen=True)
class LeaseView:
    """The Lease as read: who holds it, for how long, and its resourceVersion."""

    holder: str
    duration: float
    version: str
    transitions: int = 0


@dataclass(frozen=True)
class Owner:
    """The holder's Pod (the Lease is in its namespace)."""

    name: str
    uid: str

    def reference(self) -> kubernetes.client.V1OwnerReference:
        return kubernetes.client.V1OwnerReference(
            api_version="v1", kind="Pod", name=self.name, uid=self.uid
        )


class Decision(Enum):
    TAKE = "take"  # write ourselves as holder (new or renewed)
    WAIT = "wait"  # someone else holds a live Lease


def decide(lease: LeaseView | None, *, me: str, seen_since: float, now: float) -> Decision:
    """``seen_since``: when (our monotonic clock) we first saw this exact Lease version."""
    if lease is None or not lease.holder or lease.holder == me:
        return Decision.TAKE
    return Decision.TAKE if now - seen_since > lease.duration else Decision.WAIT


class LeaseElector:
    def __init__(
        self,
        api: kubernetes.client.ApiClient,
        *,
        namespace: str,
        name: str,
        identity: str,
        timing: Timing = Timing(),
        clock: Callable[[], float] = time.monotonic,
        owner: Owner | None = None,
    ) -> None:
        self._api = kubernetes.client.CoordinationV1Api(api)
        self.namespace, self.name, self.identity = namespace, name, identity
        self.owner = owner
        self.timing = timing
        self._clock = clock
        self._seen: tuple[str, float] | None = None  # (resourceVersion, first seen at)
        self.last_renewed: float | None = None
        self.holder = ""  # as last read
        # every call is bounded, so a leader that cannot renew notices (and exits) before the
        # Lease can expire: renew_deadline + retry + this < duration
        self._timeout = max(1.0, timing.duration - timing.renew_deadline - timing.retry)

    # ---- one round -------------------------------------------------------------------------

    def _read(self) -> tuple[kubernetes.client.V1Lease | None, LeaseView | None]:
        try:
            lease = self._api.read_namespaced_lease(
                self.name, self.namespace, _request_timeout=self._timeout
            )
        except ApiException as exc:
            if exc.status == 404:
                return None, None
            raise
        spec = lease.spec
        view = LeaseView(
            holder=spec.holder_identity or "",
            duration=float(spec.lease_duration_seconds or self.timing.duration),
            version=lease.metadata.resource_version,
            transitions=spec.lease_transitions or 0,
        )
        return lease, view

    def try_once(self) -> bool:
        """One attempt to acquire or renew; True while we hold the Lease."""
        now = self._clock()
        try:
            lease, view = self._read()
            self.holder = view.holder if view else ""
            if view is not None and (self._seen is None or self._seen[0] != view.version):
                self._seen = (view.version, now)
            seen_since = self._seen[1] if self._seen else now
            if decide(view, me=self.identity, seen_since=seen_since, now=now) is Decision.WAIT:
                return False
            self._write(lease, view)
        except ApiException as exc:
            if exc.status == 409:  # someone else wrote it first
                return False
            log.warning("lease %s/%s: %s", self.namespace, self.name, exc.reason)
            return False
        except Exception as exc:  # network: treat as a failed round, the deadline decides
            log.warning("lease %s/%s: %s", self.namespace, self.name, exc)
            return False
        self.last_renewed = now
        return True

    def _write(self, lease: kubernetes.client.V1Lease | None, view: LeaseView | None) -> None:
        stamp = datetime.now(UTC)
        ours = view is not None and view.holder == self.identity
        spec = kubernetes.client.V1LeaseSpec(
            holder_identity=self.identity,
            lease_duration_seconds=max(1, round(self.timing.duration)),
            renew_time=stamp,
            acquire_time=lease.spec.acquire_time if ours and lease is not None else stamp,
            lease_transitions=(view.transitions if view else 0) + (0 if ours or not view else 1),
        )
        owners = [self.owner.reference()] if self.owner else None
        if lease is None:
            body = kubernetes.client.V1Lease(
                metadata=kubernetes.client.V1ObjectMeta(
                    name=self.name, namespace=self.namespace, owner_references=owners
                ),
                spec=spec,
            )
            self._api.create_namespaced_lease(self.namespace, body, _request_timeout=self._timeout)
        else:
            lease.spec = spec  # metadata keeps resourceVersion: a concurrent write gets 409
            if owners:
                lease.metadata.owner_references = owners
            self._api.replace_namespaced_lease(
                self.name, self.namespace, lease, _request_timeout=self._timeout
            )
        if not ours:
            log.info("acquired lease %s/%s as %s", self.namespace, self.name, self.identity)

    # ---- loops -----------------------------------------------------------------------------

    def wait_for_leadership(self, stop: threading.Event) -> bool:
        """Block (the standby) until we hold the Lease; False if ``stop`` was set first."""
        logged = False
        while not stop.is_set():
            if self.try_once():
                return True
            if not logged:
                log.info(
                    "standby: lease %s/%s is held by another instance; waiting",
                    self.namespace,
                    self.name,
                )
                logged = True
            stop.wait(self.timing.retry)
        return False

    def keep_renewing(self, on_lost: Callable[[], None], stop: threading.Event) -> threading.Thread:
        """Renew every ``retry`` seconds in a thread; ``on_lost`` once the deadline passes."""

        def loop() -> None:
            while not stop.wait(self.timing.retry):
                if self.try_once():
                    continue
                age = self._clock() - (self.last_renewed or 0.0)
                taken = self.holder not in ("", self.identity)
                if taken or age > self.timing.renew_deadline:
                    log.error(
                        "lost lease %s/%s (%s): stopping",
                        self.namespace,
                        self.name,
                        f"now held by {self.holder}" if taken else f"not renewed for {age:.1f}s",
                    )
                    on_lost()
                    return

        thread = threading.Thread(target=loop, name="lease-renewal", daemon=True)
        thread.start()
        return thread

    def release(self) -> None:
        """Give the Lease up (graceful stop), so a standby need not wait for it to expire."""
        try:
            lease, view = self._read()
            if lease is None or view is None or view.holder != self.identity:
                return
            lease.spec.holder_identity = None
            lease.spec.lease_duration_seconds = 1
            self._api.replace_namespaced_lease(
                self.name, self.namespace, lease, _request_timeout=self._timeout
            )
            log.info("released lease %s/%s", self.namespace, self.name)
        except Exception as exc:  # it expires anyway
            log.warning("could not release lease %s/%s: %s", self.namespace, self.name, exc)
