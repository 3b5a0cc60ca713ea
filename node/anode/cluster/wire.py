"""How Raft messages are serialised and sealed on the wire (`tcp.FramedConnection` sends them).

pysyncobj pickles every command and message with pickle protocol 2, which in Python 3 turns
each `bytes` object into a latin-1 `str` and back (our entries are lists of msgpack bytes, small
objects' bodies included): `tune` raises the protocol (`pickle.loads` reads any protocol, so old
journals still load). Measured with `py-spy --gil` on a 3-node cluster under 4 KiB PUTs,
pickling alone was ~15 % of all GIL time; pysyncobj's zlib (level 3) and Fernet (AES-CBC,
HMAC, base64 twice) another ~14 %. Messages are therefore not compressed, and sealed with
AES-256-GCM from `cryptography`: nonces never repeat under one key, since each process seals
under its own key, derived (HKDF) from the secret and a random 128-bit salt sent in every frame,
with a counter as the nonce.

Frames of this format (version 0xa2) carry their length in the MAC'd header; Anode versions
whose frames start with a bare length cannot talk to it: during an upgrade, members on either
side of the change form no quorum together (see README, "Upgrading").
"""

from __future__ import annotations

import hmac
import itertools
import os
import pickle
import struct
from dataclasses import dataclass

import pysyncobj.pickle
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PICKLE_PROTOCOL = pickle.HIGHEST_PROTOCOL


def tune() -> None:
    """Idempotent; called before the first `Replica` exists."""
    vars(pysyncobj.pickle)["__protocol"] = PICKLE_PROTOCOL


_VERSION = b"\xa2"
# version, body length, timestamp, the sender's salt, the body's nonce; then the header's MAC
_HEADER = struct.Struct(">cIQ16s12s")
_TAG = 16
HEADER_SIZE = _HEADER.size + _TAG
_MAX_PEER_KEYS = 256  # distinct sender processes remembered (each restart brings a new salt)


class FrameError(ValueError):
    """Not a frame of this cluster: the connection that sent it is dropped."""


@dataclass(frozen=True)
class FrameHeader:
    length: int  # of the sealed body that follows
    timestamp: int
    salt: bytes
    nonce: bytes
    raw: bytes  # what the body's seal covers


class SealedFrames:
    """Seals and opens Raft frames with the cluster secret (AES-256-GCM, per-sender keys).

    A frame is a fixed-size header, MAC'd with a key every member derives from the secret, and
    a sealed body whose length the header declares. A receiver reads the header first and
    buffers nothing more unless its MAC holds, so a peer without the secret cannot make a
    member buffer anything (issue 12: a forged 2 GiB length stalled the Raft thread); and no
    frame, however authentic, may declare more than `max_frame` bytes.
    """

    def __init__(self, secret: str | bytes, *, max_frame: int = 64 << 20) -> None:
        self._secret = secret.encode() if isinstance(secret, str) else secret
        self.max_frame = max_frame
        self._header_key = self._key(b"", b"anode raft frame headers v2")
        self._salt = os.urandom(16)
        self._sealer = AESGCM(self._key(self._salt))
        self._counter = itertools.count(1)
        self._openers: dict[bytes, AESGCM] = {}

    def _key(self, salt: bytes, info: bytes = b"anode raft frames v2") -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(self._secret)

    def _header_tag(self, header: bytes) -> bytes:
        return hmac.digest(self._header_key, header, "sha256")[:_TAG]

    def seal(self, data: bytes, timestamp: int) -> bytes:
        """One frame carrying `data`."""
        nonce = next(self._counter).to_bytes(12, "big")
        length = len(data) + 16  # AES-GCM's tag
        if length > self.max_frame:
            raise FrameError(f"a {length}-byte frame exceeds the {self.max_frame}-byte limit")
        header = _HEADER.pack(_VERSION, length, timestamp, self._salt, nonce)
        return header + self._header_tag(header) + self._sealer.encrypt(nonce, data, header)

    def open_header(self, raw: bytes, *, max_length: int | None = None) -> FrameHeader:
        """The header in the first `HEADER_SIZE` bytes of `raw`, if its MAC holds."""
        header, tag = raw[: _HEADER.size], raw[_HEADER.size : HEADER_SIZE]
        if len(tag) != _TAG or not hmac.compare_digest(self._header_tag(header), tag):
            raise FrameError("frame header not sealed with the cluster secret")
        version, length, timestamp, salt, nonce = _HEADER.unpack(header)
        limit = self.max_frame if max_length is None else min(max_length, self.max_frame)
        if version != _VERSION or length > limit:
            raise FrameError(f"frame version {version!r} of {length} bytes refused")
        return FrameHeader(length, timestamp, salt, nonce, header)

    def open_body(self, header: FrameHeader, body: bytes) -> bytes:
        opener = self._openers.get(header.salt)
        if opener is None:
            if len(self._openers) >= _MAX_PEER_KEYS:
                self._openers.clear()
            opener = self._openers[header.salt] = AESGCM(self._key(header.salt))
        try:
            return opener.decrypt(header.nonce, body, header.raw)
        except InvalidTag:
            raise FrameError("frame body not sealed with the cluster secret") from None
