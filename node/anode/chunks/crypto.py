"""Encryption of chunk content at rest (SSE-C and SSE-S3), with the `cryptography` library.

A stored encrypted chunk is

    siv (32 B) || seal(segment 0) || seal(segment 1) || ...     segments of 64 KiB plaintext

where `siv = HMAC-SHA256(mac_key, plaintext)`, each segment is AES-256-GCM under a per-chunk key
`HMAC-SHA256(enc_key, siv)` with the segment's index as nonce and `siv` as associated data, and
`mac_key`/`enc_key` are derived (HKDF-SHA256) from the key domain's key: the customer's key
(SSE-C) or the server's master key (SSE-S3).

Why this shape:
- Dedup only within a key domain: equal plaintext under one key gives the same siv, so the same
  bytes and the same chunk id; under another key everything differs, so chunks never dedup
  across keys (and nothing reveals that two keys hold equal data).
- Nonces are never reused: a per-chunk key is used for one plaintext only (two plaintexts with
  the same siv would be an HMAC collision), and nonces count segments within it.
- Range reads stay cheap: a range needs only the siv and the segments it covers, each verified
  by its own GCM tag, so a flipped byte fails the read instead of yielding wrong plaintext.
  Segments cannot be reordered (nonce), moved between chunks (key and AAD) or dropped unnoticed
  (the reader checks it got every byte it asked for).
- The chunk id stays SHA-256 of the stored bytes, so replication, repair and scrubbing handle
  encrypted chunks as the opaque bytes they are.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .reader import ChunkReader
from .store import ChunkCorrupt

SEGMENT = 64 * 1024
TAG = 16
BLOCK = SEGMENT + TAG
HEADER = 32
KEY_BYTES = 32


def _derive(key: bytes, label: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=label).derive(key)


def _nonce(index: int) -> bytes:
    return index.to_bytes(12, "big")


class ChunkCipher:
    """Seals and opens chunks of one key domain. Thread-safe (no mutable state)."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError("AES-256 needs a 32-byte key")
        self._mac_key = _derive(key, b"anode/sse/chunk-siv")
        self._enc_key = _derive(key, b"anode/sse/chunk-key")
        self._etag_key = _derive(key, b"anode/sse/etag")

    def _aead(self, siv: bytes) -> AESGCM:
        return AESGCM(hmac.digest(self._enc_key, siv, "sha256"))

    def seal(self, plaintext: bytes) -> bytes:
        siv = hmac.digest(self._mac_key, plaintext, "sha256")
        aead = self._aead(siv)
        view = memoryview(plaintext)
        out = [siv]
        for index, start in enumerate(range(0, len(plaintext), SEGMENT)):
            out.append(aead.encrypt(_nonce(index), bytes(view[start : start + SEGMENT]), siv))
        return b"".join(out)

    def open_segments(self, siv: bytes, data: bytes, first: int) -> bytes:
        """Plaintext of consecutive sealed segments starting at segment `first`."""
        if len(siv) != HEADER:
            raise ChunkCorrupt("short encrypted chunk header")
        aead = self._aead(siv)
        out = []
        try:
            for i, start in enumerate(range(0, len(data), BLOCK)):
                out.append(aead.decrypt(_nonce(first + i), data[start : start + BLOCK], siv))
        except InvalidTag:
            raise ChunkCorrupt("encrypted chunk failed authentication") from None
        return b"".join(out)

    def open(self, stored: bytes) -> bytes:
        return self.open_segments(stored[:HEADER], stored[HEADER:], 0)

    def etag(self, md5: bytes) -> str:
        """An SSE-C object's ETag: not the MD5 of its plaintext (which would let anyone confirm
        a guess of the content), as AWS documents, but stable for equal content and key."""
        return f'"{hmac.digest(self._etag_key, md5, "md5").hex()}"'


class DecryptingReader:
    """A ChunkReader for an encrypted object: maps plaintext ranges to sealed segments.

    A partial read fetches the header and the covering segments; if they fail authentication
    (a damaged copy), it falls back to a whole, SHA-256-verified read, which in a cluster comes
    from a healthy holder. It never returns bytes that did not authenticate."""

    def __init__(self, inner: ChunkReader, cipher: ChunkCipher) -> None:
        self.inner = inner
        self.cipher = cipher

    def read_sync(self, digest: bytes, offset: int, length: int, whole: bool) -> bytes:
        if not whole:
            try:
                return self._read_part(digest, offset, length)
            except ChunkCorrupt:
                pass  # a damaged local copy: try a verified whole read below
        plain = self.cipher.open(self.inner.read_sync(digest, 0, -1, True))
        out = plain[offset : offset + length] if length >= 0 else plain[offset:]
        if length >= 0 and len(out) != length:
            raise ChunkCorrupt(digest.hex())
        return out

    def _read_part(self, digest: bytes, offset: int, length: int) -> bytes:
        first, last = offset // SEGMENT, (offset + length - 1) // SEGMENT
        span = (last - first + 1) * BLOCK
        if first == 0:
            data = self.inner.read_sync(digest, 0, HEADER + span, False)
            siv, sealed = data[:HEADER], data[HEADER:]
        else:
            siv = self.inner.read_sync(digest, 0, HEADER, False)
            sealed = self.inner.read_sync(digest, HEADER + first * BLOCK, span, False)
        plain = self.cipher.open_segments(siv, sealed, first)
        skip = offset - first * SEGMENT
        out = plain[skip : skip + length]
        if len(out) != length:  # truncated: segments were missing
            raise ChunkCorrupt(digest.hex())
        return out

    async def read(self, digest: bytes, offset: int, length: int, whole: bool) -> bytes:
        return await asyncio.to_thread(self.read_sync, digest, offset, length, whole)

    def read_local(self, digest: bytes, offset: int, length: int, whole: bool) -> bytes | None:
        """None: decrypting is work for a worker thread, not the event loop."""
        return None


def key_check(key: bytes, salt: bytes) -> bytes:
    """What Anode keeps of a customer key (SSE-C): a salted HMAC, to recognise it, never it."""
    return hmac.digest(salt, key, "sha256")


def same_key(key: bytes, salt: bytes, expected: bytes) -> bool:
    return hmac.compare_digest(key_check(key, salt), expected)


def md5(data: bytes) -> bytes:
    return hashlib.md5(data).digest()
