"""Authenticates internode requests with the cluster secret: an HMAC over the whole request line.

    X-Anode-Auth: <unix seconds>:<nonce, 32 hex>:<HMAC-SHA256 hex>

The MAC covers method, path, the query (canonical: sorted, URL-encoded pairs), the time and the
nonce, so a captured request cannot be pointed at another chunk, range or listing. Requests more
than `MAX_SKEW` seconds from this node's clock are refused, and a mutating request (PUT, DELETE)
is accepted once: `ReplayCache` remembers its nonce for as long as its time is acceptable.
Chunk contents need no signature of their own: a chunk is named by its SHA-256 and every
receiver re-hashes what it stores.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import time
from collections import deque
from collections.abc import Iterable
from urllib.parse import urlencode

HEADER = "X-Anode-Auth"
MAX_SKEW = 60.0
MUTATING = frozenset({"PUT", "POST", "DELETE"})
_TOKEN = re.compile(r"([0-9]{1,12}):([0-9a-f]{32}):([0-9a-f]{64})")


def canonical_query(pairs: Iterable[tuple[str, object]]) -> str:
    return urlencode(sorted((str(k), str(v)) for k, v in pairs))


def _mac(secret: str, method: str, path: str, query: str, stamp: str, nonce: str) -> str:
    message = "\n".join((method, path, query, stamp, nonce)).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(
    secret: str,
    method: str,
    path: str,
    query: Iterable[tuple[str, object]] = (),
    now: float | None = None,
    nonce: str | None = None,
) -> str:
    stamp = str(int(now if now is not None else time.time()))
    nonce = nonce or os.urandom(16).hex()
    mac = _mac(secret, method, path, canonical_query(query), stamp, nonce)
    return f"{stamp}:{nonce}:{mac}"


class ReplayCache:
    """Nonces of accepted mutating requests, each kept until its time leaves the window.

    Bounded: beyond `capacity` the oldest are forgotten, and from then on requests no younger
    than the newest forgotten one are refused (they might be replays of it)."""

    def __init__(self, capacity: int = 1 << 20) -> None:
        self._capacity = capacity
        self._seen: set[str] = set()
        self._order: deque[tuple[int, str]] = deque()
        self._floor = -1  # stamps at or below this are refused

    def admit(self, stamp: int, nonce: str, now: float) -> bool:
        while self._order and self._order[0][0] < now - MAX_SKEW:
            self._seen.discard(self._order.popleft()[1])
        if stamp <= self._floor or nonce in self._seen:
            return False
        while len(self._order) >= self._capacity:
            old_stamp, old_nonce = self._order.popleft()
            self._seen.discard(old_nonce)
            self._floor = max(self._floor, old_stamp)
        self._seen.add(nonce)
        self._order.append((stamp, nonce))
        return True


def verify(
    secret: str,
    method: str,
    path: str,
    query: Iterable[tuple[str, object]],
    value: str | None,
    *,
    replays: ReplayCache | None = None,
    now: float | None = None,
) -> bool:
    """True for a well-formed, correctly signed, fresh (and, if mutating, first) request."""
    match = _TOKEN.fullmatch(value or "")
    if not secret or match is None:
        return False
    stamp, nonce, mac = match.groups()
    now = now if now is not None else time.time()
    if abs(now - int(stamp)) > MAX_SKEW:
        return False
    expected = _mac(secret, method, path, canonical_query(query), stamp, nonce)
    if not hmac.compare_digest(expected, mac):
        return False
    return method not in MUTATING or replays is None or replays.admit(int(stamp), nonce, now)
