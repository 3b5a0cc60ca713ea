"""Client for a node's admin API (``docs/admin-api.md``): the only way the operator changes what is
inside the cluster (users, buckets, membership, leadership).

Synchronous on purpose: kopf runs sync handlers in worker threads, and a few short JSON calls per
reconcile do not need an event loop. Errors are typed so callers can decide: ``NotSupported``
(501: membership and leadership before the node's part 2) is a normal answer, ``Unreachable`` means
"ask another node or try later", ``AdminError`` carries the node's ``code``.
"""

from __future__ import annotations

import json
import logging
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


class AdminError(Exception):
    def __init__(self, *, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class NotSupported(AdminError):
    """The node does not implement this endpoint yet (HTTP 501)."""


class Unreachable(Exception):
    """No HTTP answer at all (connection refused, timeout, DNS)."""


@dataclass(frozen=True)
class AdminClient:
    base_url: str  # e.g. http://10.0.0.7:8081
    token: str  # the cluster's root secret key
    timeout: float = 3.0
    # membership changes wait on the node (a learner catching up, a leadership hand-over)
    membership_timeout: float = 30.0
    context: ssl.SSLContext | None = None  # https: whom to trust (``tlsclient``)

    def _request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.base_url.rstrip("/") + path,
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Accept": "application/json",
                **({"Content-Type": "application/json"} if data is not None else {}),
            },
        )
        try:
            with urllib.request.urlopen(
                req, timeout=timeout or self.timeout, context=self.context
            ) as resp:
                return resp.status, _json(resp.read())
        except urllib.error.HTTPError as exc:
            payload = _json(exc.read())
            if not isinstance(payload, dict):
                payload = {}
            status = exc.code
            code = str(payload.get("code") or exc.reason or status)
            message = str(payload.get("error") or payload or exc.reason)
            if status == 501:
                raise NotSupported(status=status, code=code, message=message) from None
            raise AdminError(status=status, code=code, message=message) from None
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            raise Unreachable(f"{method} {self.base_url}{path}: {exc}") from None

    # --- probes and status -------------------------------------------------------------------
    def ready(self) -> bool:
        try:
            status, _ = self._request("GET", "/ready")
        except AdminError:
            return False
        return status == 200

    def status(self) -> dict[str, Any]:
        return self._request("GET", "/status")[1]

    # --- users and buckets -------------------------------------------------------------------
    def create_user(
        self, *, name: str, access_key: str | None = None, secret_key: str | None = None
    ) -> dict[str, Any]:
        """201 new user (keys generated when absent); 200 when it exists identically."""
        body = {"name": name}
        if access_key and secret_key:
            body.update(access_key=access_key, secret_key=secret_key)
        return self._request("POST", "/users", body)[1]

    def list_users(self) -> list[dict[str, Any]]:
        return self._request("GET", "/users")[1].get("users", [])

    def delete_user(self, *, name: str) -> bool:
        """True if deleted, False if it was already absent."""
        try:
            self._request("DELETE", f"/users/{urllib.parse.quote(name, safe='')}")
        except AdminError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def create_bucket(self, *, name: str, owner: str) -> dict[str, Any]:
        return self._request("POST", "/buckets", {"name": name, "owner": owner})[1]

    def set_bucket_quota(
        self, *, name: str, max_bytes: int | None, max_objects: int | None
    ) -> dict[str, Any]:
        """Both None removes the quota; answers the bucket document (with ``usage``)."""
        return self._request(
            "PUT",
            f"/buckets/{urllib.parse.quote(name, safe='')}/quota",
            {"max_bytes": max_bytes, "max_objects": max_objects},
        )[1]

    def list_buckets(self) -> list[dict[str, Any]]:
        return self._request("GET", "/buckets")[1].get("buckets", [])

    def delete_bucket(self, *, name: str, force: bool) -> bool:
        query = "?force=true" if force else ""
        try:
            self._request("DELETE", f"/buckets/{urllib.parse.quote(name, safe='')}{query}")
        except AdminError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    # --- membership (part 2; 501 before that) ------------------------------------------------
    def add_member(self, *, node_id: str, address: str) -> None:
        """Promote a learner (a node started with ``learner = true``) to voter."""
        self._request(
            "POST",
            "/cluster/members",
            {"id": node_id, "address": address},
            timeout=self.membership_timeout,
        )

    def drain_member(self, *, node_id: str) -> bool:
        """Start or continue draining; True once no chunk copy depends on the node.

        The node answers ``{"remaining": n}`` (copies still missing elsewhere): poll until 0.
        (``{"drained": bool}`` or a bare 200/202 are understood too.)"""
        status, body = self._request(
            "POST",
            f"/cluster/members/{urllib.parse.quote(node_id, safe='')}/drain",
            timeout=self.membership_timeout,
        )
        if isinstance(body, dict) and "remaining" in body:
            return int(body["remaining"]) == 0
        if isinstance(body, dict) and "drained" in body:
            return bool(body["drained"])
        return status == 200

    def remove_member(self, *, node_id: str, rejoin: bool = False) -> bool:
        """Remove a drained member; ``rejoin``: the old voter entry of a member that lost its
        volume and rejoins as a learner (no drain, it stays registered)."""
        query = "?rejoin=true" if rejoin else ""
        try:
            self._request(
                "DELETE",
                f"/cluster/members/{urllib.parse.quote(node_id, safe='')}{query}",
                timeout=self.membership_timeout,
            )
        except AdminError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def transfer_leadership(self, *, to: str) -> None:
        self._request("POST", "/cluster/leadership", {"to": to}, timeout=self.membership_timeout)


def _json(raw: bytes) -> Any:
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        return {"error": raw.decode(errors="replace")[:200]}
