"""Console sessions: a signed cookie naming the user, and the CSRF token of each session.

Pure functions, no I/O. The cookie holds the access key, an expiry and a random nonce, never the
secret. Its MAC key is derived from the server key *and* the user's current secret key, so a
session ends when it expires, when the user is deleted, or when their secret changes; and a
cookie from one cluster is worthless on another (a different server key). The CSRF token is a
MAC of the session's nonce: a page of one session cannot post into another.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass

COOKIE = "anode_console"
_NONCE_BYTES = 16


@dataclass(frozen=True)
class Session:
    access_key: str
    expires: float  # seconds since the epoch
    nonce: str


def server_key(cluster_secret: str) -> bytes:
    """Every member of a cluster accepts the others' sessions; a lone node makes a random key
    (a restart ends its sessions)."""
    if cluster_secret:
        return hmac.new(cluster_secret.encode(), b"anode-console-session", hashlib.sha256).digest()
    return secrets.token_bytes(32)


def new_session(access_key: str, *, now: float, ttl: float) -> Session:
    return Session(access_key, now + ttl, secrets.token_urlsafe(_NONCE_BYTES))


def encode(session: Session, key: bytes, user_secret: str) -> str:
    payload = _b64(json.dumps([session.access_key, session.expires, session.nonce]).encode())
    return f"{payload}.{_mac(key, user_secret, payload)}"


def decode(
    cookie: str, key: bytes, secret_of: Callable[[str], str | None], *, now: float
) -> Session | None:
    """The session a cookie proves, or None (malformed, forged, expired, or the user is gone or
    has a new secret). `secret_of` maps an access key to the user's secret key."""
    payload, _, mac = cookie.partition(".")
    try:
        access_key, expires, nonce = json.loads(_unb64(payload))
    except (ValueError, TypeError, binascii.Error):
        return None
    if not (isinstance(access_key, str) and isinstance(nonce, str)):
        return None
    if not isinstance(expires, int | float) or isinstance(expires, bool):
        return None
    secret = secret_of(access_key)
    if secret is None or not hmac.compare_digest(mac.encode(), _mac(key, secret, payload).encode()):
        return None
    if now >= expires:
        return None
    return Session(access_key, float(expires), nonce)


def csrf_token(session: Session, key: bytes) -> str:
    return hmac.new(key, b"csrf\0" + session.nonce.encode(), hashlib.sha256).hexdigest()


def csrf_ok(session: Session, key: bytes, token: str) -> bool:
    return hmac.compare_digest(csrf_token(session, key).encode(), token.encode("utf-8", "replace"))


def _mac(key: bytes, user_secret: str, payload: str) -> str:
    user_key = hmac.new(key, b"session\0" + user_secret.encode(), hashlib.sha256).digest()
    return _b64(hmac.new(user_key, payload.encode(), hashlib.sha256).digest())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
