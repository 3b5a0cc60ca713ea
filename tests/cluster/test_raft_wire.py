"""How Raft frames are sealed and serialised (anode.cluster.wire)."""

from __future__ import annotations

import pickle

import pysyncobj.pickle
import pytest
from cryptography.exceptions import InvalidTag

from anode.cluster import wire


def test_frames_round_trip_between_processes_sharing_the_secret():
    sender, receiver = wire.SealedFrames("s3cret"), wire.SealedFrames("s3cret")
    token = sender.encrypt_at_time(b"append entries", 1234)
    assert receiver.extract_timestamp(token) == 1234
    assert receiver.decrypt(token) == b"append entries"
    assert b"append entries" not in token


def test_frames_from_another_secret_or_tampered_are_refused():
    sender = wire.SealedFrames("s3cret")
    token = sender.encrypt_at_time(b"vote for me", 7)
    with pytest.raises(InvalidTag):
        wire.SealedFrames("other").decrypt(token)
    forged_time = token[:1] + (8).to_bytes(8, "big") + token[9:]  # the timestamp is sealed too
    with pytest.raises(InvalidTag):
        wire.SealedFrames("s3cret").decrypt(forged_time)
    flipped = token[:-1] + bytes([token[-1] ^ 1])
    with pytest.raises(InvalidTag):
        wire.SealedFrames("s3cret").decrypt(flipped)
    with pytest.raises(ValueError):
        wire.SealedFrames("s3cret").extract_timestamp(b"gAAAAA" + token[6:])  # a Fernet token


def test_nonces_never_repeat_and_each_process_has_its_own_key():
    a, b = wire.SealedFrames("s3cret"), wire.SealedFrames("s3cret")
    tokens = [a.encrypt_at_time(b"same", 1) for _ in range(100)]
    assert len(set(tokens)) == 100
    header = 1 + 8
    assert a.encrypt_at_time(b"x", 1)[header:header + 16] != b.encrypt_at_time(b"x", 1)[
        header:header + 16]


def test_tune_makes_pysyncobj_pickle_bytes_natively():
    wire.tune()
    payload = [bytes(range(256)) * 16]
    data = pysyncobj.pickle.dumps(payload)
    assert pysyncobj.pickle.loads(data) == payload
    assert pickle.loads(data) == payload and len(data) < 4096 + 100  # protocol 2: ~1.5x larger
