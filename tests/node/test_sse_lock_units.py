"""Unit tests of the pure parts of encryption and object lock: the chunk cipher, the lock rules,
and the state machine applying lock commands (no server)."""

from __future__ import annotations

import hashlib
import os

import pytest

from anode.chunks.crypto import SEGMENT, ChunkCipher, DecryptingReader, key_check, same_key
from anode.chunks.store import ChunkCorrupt
from anode.meta import commands as c
from anode.meta.locks import deletion_refused, retention_change_refused

KEY, OTHER = bytes(32), bytes(range(32))

# ---- cipher -----------------------------------------------------------------------------------


def test_seal_is_deterministic_per_key_and_differs_across_keys():
    data = os.urandom(3 * SEGMENT + 17)
    one = ChunkCipher(KEY).seal(data)
    assert ChunkCipher(KEY).seal(data) == one  # equal plaintext, one key: dedups
    assert ChunkCipher(OTHER).seal(data) != one
    assert ChunkCipher(KEY).seal(data[:-1] + b"x")[:32] != one[:32]
    assert data not in one and ChunkCipher(KEY).open(one) == data


class _Bytes:
    """A ChunkReader over one stored chunk held in memory."""

    def __init__(self, stored: bytes) -> None:
        self.stored = stored

    def read_sync(self, digest, offset, length, whole):
        if whole:
            if hashlib.sha256(self.stored).digest() != digest:
                raise ChunkCorrupt(digest.hex())
            return self.stored
        return self.stored[offset : offset + length] if length >= 0 else self.stored[offset:]


@pytest.mark.parametrize("start,length", [(0, 1), (5, SEGMENT), (SEGMENT - 1, 2),
                                          (SEGMENT, SEGMENT), (2 * SEGMENT + 3, 100)])
def test_ranges_decrypt_only_what_they_cover(start, length):
    data = os.urandom(3 * SEGMENT + 500)
    stored = ChunkCipher(KEY).seal(data)
    reader = DecryptingReader(_Bytes(stored), ChunkCipher(KEY))
    digest = hashlib.sha256(stored).digest()
    assert reader.read_sync(digest, start, length, False) == data[start : start + length]
    assert reader.read_sync(digest, 0, len(data), True) == data


@pytest.mark.parametrize("damage", ["flip", "truncate", "swap", "other key"])
def test_damaged_or_foreign_ciphertext_never_decrypts(damage):
    data = os.urandom(3 * SEGMENT)
    stored = bytearray(ChunkCipher(KEY).seal(data))
    digest = hashlib.sha256(stored).digest()
    cipher = ChunkCipher(KEY)
    if damage == "flip":
        stored[32 + SEGMENT + 100] ^= 1
    elif damage == "truncate":
        del stored[-(SEGMENT + 16):]
    elif damage == "swap":  # segments 0 and 1 trade places
        block = SEGMENT + 16
        first, second = stored[32 : 32 + block], stored[32 + block : 32 + 2 * block]
        stored[32 : 32 + 2 * block] = second + first
    else:
        cipher = ChunkCipher(OTHER)
    reader = DecryptingReader(_Bytes(bytes(stored)), cipher)
    with pytest.raises(ChunkCorrupt):
        reader.read_sync(digest, SEGMENT, 2 * SEGMENT, False)


def test_customer_keys_are_recognised_by_a_salted_check_only():
    salt = os.urandom(16)
    check = key_check(KEY, salt)
    assert KEY not in check and same_key(KEY, salt, check) and not same_key(OTHER, salt, check)
    assert key_check(KEY, os.urandom(16)) != check


# ---- lock rules -------------------------------------------------------------------------------


def locked(mode: str | None = None, until: float = 0.0, hold: str | None = None) -> dict:
    record: dict = {"vid": "v"}
    if mode:
        record["lock"] = {"mode": mode, "until": until}
    if hold:
        record["hold"] = hold
    return record


@pytest.mark.parametrize("record,bypass,refused", [
    (locked(), False, False),
    (locked("GOVERNANCE", 200), False, True),
    (locked("GOVERNANCE", 200), True, False),
    (locked("GOVERNANCE", 50), False, False),  # expired
    (locked("COMPLIANCE", 200), True, True),
    (locked("COMPLIANCE", 50), False, False),
    (locked(hold="ON"), True, True),
    (locked(hold="OFF"), False, False),
    ({"vid": "m", "marker": True, "hold": "ON"}, False, False),
])
def test_deletion_rules(record, bypass, refused):
    assert deletion_refused(record, now=100.0, bypass=bypass) is refused


@pytest.mark.parametrize("old,new,bypass,refused", [
    (locked("GOVERNANCE", 200), {"mode": "GOVERNANCE", "until": 300}, False, False),
    (locked("GOVERNANCE", 200), {"mode": "COMPLIANCE", "until": 300}, False, True),
    (locked("GOVERNANCE", 200), {"mode": "COMPLIANCE", "until": 300}, True, False),
    (locked("GOVERNANCE", 200), {"mode": "GOVERNANCE", "until": 150}, False, True),
    (locked("GOVERNANCE", 200), {}, False, True),
    (locked("GOVERNANCE", 200), {}, True, False),
    (locked("COMPLIANCE", 200), {"mode": "COMPLIANCE", "until": 300}, False, False),
    (locked("COMPLIANCE", 200), {"mode": "GOVERNANCE", "until": 300}, True, True),
    (locked("COMPLIANCE", 200), {"mode": "COMPLIANCE", "until": 150}, True, True),
    (locked("COMPLIANCE", 50), {}, False, False),  # expired
])
def test_retention_change_rules(old, new, bypass, refused):
    assert retention_change_refused(old, new, now=100.0, bypass=bypass) is refused


# ---- the state machine ------------------------------------------------------------------------


def test_locked_versions_survive_deletes_and_lose_their_lock_only_as_allowed(meta):
    sm = meta.state_machine
    sm.apply(c.CreateBucket(bucket="b", owner="root", created=1.0, object_lock=True))
    assert meta.bucket("b")["versioning"] == "Enabled"
    record = {"size": 1, "etag": '"e"', "mtime": 10.0, "chunks": [[bytes(32), 1]],
              "owner": "root", "lock": {"mode": "GOVERNANCE", "until": 100.0}}
    vid = sm.apply(c.PutObject(bucket="b", key="k", record=record, version_id="v1"))["version_id"]
    (result,) = sm.apply(c.DeleteObjects(bucket="b", keys=("k",), version_ids=(vid,), mtime=50.0))
    assert result["error"] == "AccessDenied" and meta.version("b", "k", vid) is not None
    assert isinstance(sm.apply(c.SetObjectLock(bucket="b", key="k", version_id=vid, now=50.0,
                                               retention={})), c.Rejected)
    sm.apply(c.SetObjectLock(bucket="b", key="k", version_id=None, now=50.0, legal_hold="ON"))
    assert meta.object("b", "k")["hold"] == "ON"  # the O/ copy follows the V/ entry
    sm.apply(c.SetObjectLock(bucket="b", key="k", version_id=vid, now=50.0, retention={},
                             bypass=True))
    (result,) = sm.apply(c.DeleteObjects(bucket="b", keys=("k",), version_ids=(vid,),
                                         mtime=50.0, bypass=True))
    assert result["error"] == "AccessDenied"  # the legal hold still protects it
    sm.apply(c.SetObjectLock(bucket="b", key="k", version_id=vid, now=50.0, legal_hold="OFF"))
    (result,) = sm.apply(c.DeleteObjects(bucket="b", keys=("k",), version_ids=(vid,),
                                         mtime=50.0))
    assert "error" not in result and meta.version("b", "k", vid) is None
    rejected = sm.apply(c.SetBucketVersioning(bucket="b", status="Suspended"))
    assert isinstance(rejected, c.Rejected) and rejected.code == "InvalidBucketState"


def test_master_key_first_proposal_wins(meta):
    sm = meta.state_machine
    assert sm.apply(c.InitMasterKey(key=b"a" * 32)) == b"a" * 32
    assert sm.apply(c.InitMasterKey(key=b"b" * 32)) == b"a" * 32
    assert meta.master_key() == b"a" * 32
    assert c.decode(c.encode(c.InitMasterKey(key=b"k" * 32))) == c.InitMasterKey(key=b"k" * 32)


def test_lock_commands_survive_the_log_encoding():
    for command in (c.SetObjectLock(bucket="b", key="k", version_id=None, now=1.5,
                                    retention={"mode": "GOVERNANCE", "until": 9.0}, bypass=True),
                    c.DeleteObjects(bucket="b", keys=("k",), version_ids=("v",), bypass=True),
                    c.CreateBucket(bucket="b", owner="o", created=1.0, object_lock=True)):
        assert c.decode(c.encode(command)) == command
