"""How pysyncobj frames what it sends and journals: serialisation tuned, frames sealed leaner.

pysyncobj pickles every command and message with pickle protocol 2, which in Python 3 turns
each `bytes` object into a latin-1 `str` and back (our entries are lists of msgpack bytes, small
objects' bodies included), and zlib-compresses every message at level 3, which on incompressible
bodies costs far more than it saves on loopback or a LAN. Measured with `py-spy --gil` on a
3-node cluster under 4 KiB PUTs: pickling alone was ~15 % of all GIL time.

Both changes are compatible in both directions with unpatched peers and existing journals:
`pickle.loads` reads any protocol, and `zlib.decompress` reads stored (level 0) blocks.

pysyncobj seals every frame with Fernet (AES-CBC, HMAC-SHA256, then base64 of the whole frame,
decoded twice on receipt): ~14 % of GIL time in the same measurement. `SealedFrames` keeps its
interface and its guarantees (authenticated and encrypted with the cluster secret, a timestamp
pysyncobj checks for order) with AES-256-GCM from `cryptography` and no text encoding. Nonces
never repeat under one key: each process seals under its own key, derived (HKDF) from the
secret and a random 128-bit salt sent in every frame, with a counter as the nonce. Peers of an
older Anode (Fernet frames) cannot talk to this one: upgrade all members together.
"""

from __future__ import annotations

import itertools
import os
import pickle
import struct
import types
import zlib

import pysyncobj.pickle
import pysyncobj.tcp_connection
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PICKLE_PROTOCOL = pickle.HIGHEST_PROTOCOL
COMPRESS_LEVEL = 0


def _compress(data: bytes, level: int = COMPRESS_LEVEL) -> bytes:
    return zlib.compress(data, COMPRESS_LEVEL)


def tune() -> None:
    """Idempotent; called before the first `Replica` exists."""
    vars(pysyncobj.pickle)["__protocol"] = PICKLE_PROTOCOL
    pysyncobj.tcp_connection.zlib = types.SimpleNamespace(  # type: ignore[attr-defined]
        compress=_compress, decompress=zlib.decompress, error=zlib.error)


_VERSION = b"\xa1"
_HEADER = struct.Struct(">cQ16s")  # version, timestamp, the sender's salt
_NONCE = 12
_MAX_PEER_KEYS = 256  # distinct sender processes remembered (each restart brings a new salt)


class SealedFrames:
    """Fernet's interface for pysyncobj (`encrypt_at_time`, `extract_timestamp`, `decrypt`)."""

    def __init__(self, secret: str | bytes) -> None:
        self._secret = secret.encode() if isinstance(secret, str) else secret
        self._salt = os.urandom(16)
        self._sealer = AESGCM(self._key(self._salt))
        self._counter = itertools.count(1)
        self._openers: dict[bytes, AESGCM] = {}

    def _key(self, salt: bytes) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt,
                    info=b"anode raft frames v1").derive(self._secret)

    def encrypt_at_time(self, data: bytes, current_time: int) -> bytes:
        header = _HEADER.pack(_VERSION, current_time, self._salt)
        nonce = next(self._counter).to_bytes(_NONCE, "big")
        return header + nonce + self._sealer.encrypt(nonce, data, header)

    def extract_timestamp(self, token: bytes) -> int:
        version, timestamp, _ = _HEADER.unpack_from(token)
        if version != _VERSION:
            raise ValueError("not an Anode Raft frame")
        return timestamp

    def decrypt(self, token: bytes) -> bytes:
        header = token[: _HEADER.size]
        _, _, salt = _HEADER.unpack(header)
        opener = self._openers.get(salt)
        if opener is None:
            if len(self._openers) >= _MAX_PEER_KEYS:
                self._openers.clear()
            opener = self._openers[salt] = AESGCM(self._key(salt))
        nonce = token[_HEADER.size : _HEADER.size + _NONCE]
        return opener.decrypt(nonce, token[_HEADER.size + _NONCE :], header)
