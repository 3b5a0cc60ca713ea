"""Authenticates internode requests with the cluster secret: an HMAC over method, path and time.

Chunk contents need no signature of their own: a chunk is named by its SHA-256 and every
receiver re-hashes what it stores. The HMAC keeps anyone without the secret from writing, reading
or deleting chunks, and the timestamp bounds replay to a short window.
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "X-Anode-Auth"
MAX_SKEW = 300.0


def sign(secret: str, method: str, path: str, now: float | None = None) -> str:
    stamp = str(int(now if now is not None else time.time()))
    mac = hmac.new(secret.encode(), f"{method}\n{path}\n{stamp}".encode(), hashlib.sha256)
    return f"{stamp}:{mac.hexdigest()}"


def verify(secret: str, method: str, path: str, value: str | None,
           now: float | None = None) -> bool:
    if not secret or not value or ":" not in value:
        return False
    stamp, _, _ = value.partition(":")
    if not stamp.isdigit():
        return False
    now = now if now is not None else time.time()
    if abs(now - int(stamp)) > MAX_SKEW:
        return False
    return hmac.compare_digest(sign(secret, method, path, int(stamp)), value)
