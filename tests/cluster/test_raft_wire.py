"""How Raft frames are sealed and serialised (anode.cluster.wire)."""

from __future__ import annotations

import pickle

import pysyncobj.pickle
import pytest

from anode.cluster import wire


def _open(frames: wire.SealedFrames, frame: bytes, **kwargs) -> tuple[int, bytes]:
    header = frames.open_header(frame[: wire.HEADER_SIZE], **kwargs)
    assert len(frame) == wire.HEADER_SIZE + header.length
    return header.timestamp, frames.open_body(header, frame[wire.HEADER_SIZE :])


def test_frames_round_trip_between_processes_sharing_the_secret():
    sender, receiver = wire.SealedFrames("s3cret"), wire.SealedFrames("s3cret")
    frame = sender.seal(b"append entries", 1234)
    assert _open(receiver, frame) == (1234, b"append entries")
    assert b"append entries" not in frame


def test_frames_from_another_secret_or_tampered_are_refused():
    sender = wire.SealedFrames("s3cret")
    frame = sender.seal(b"vote for me", 7)
    with pytest.raises(wire.FrameError):  # the header already: nothing more is read
        _open(wire.SealedFrames("other"), frame)
    for at in (1, 5, 13, wire.HEADER_SIZE - 1, len(frame) - 1):  # length, time, salt, tags
        forged = bytearray(frame)
        forged[at] ^= 1
        with pytest.raises(wire.FrameError):
            _open(wire.SealedFrames("s3cret"), bytes(forged))


def test_a_header_may_not_declare_more_than_the_limit():
    big = wire.SealedFrames("s3cret", max_frame=1 << 20)
    frame = big.seal(b"x" * 5000, 1)
    assert _open(big, frame)[1] == b"x" * 5000
    with pytest.raises(wire.FrameError):
        _open(big, frame, max_length=4096)  # e.g. before a connection's first frame
    with pytest.raises(wire.FrameError):
        big.seal(b"x" * (1 << 20), 1)
    with pytest.raises(wire.FrameError):  # a member with a lower limit refuses it
        _open(wire.SealedFrames("s3cret", max_frame=4096), frame)


def test_nonces_never_repeat_and_each_process_has_its_own_key():
    a, b = wire.SealedFrames("s3cret"), wire.SealedFrames("s3cret")
    frames = [a.seal(b"same", 1) for _ in range(100)]
    assert len(set(frames)) == 100
    salt = slice(1 + 4 + 8, 1 + 4 + 8 + 16)
    assert a.seal(b"x", 1)[salt] == a.seal(b"y", 2)[salt] != b.seal(b"x", 1)[salt]


def test_tune_makes_pysyncobj_pickle_bytes_natively():
    wire.tune()
    payload = [bytes(range(256)) * 16]
    data = pysyncobj.pickle.dumps(payload)
    assert pysyncobj.pickle.loads(data) == payload
    assert pickle.loads(data) == payload and len(data) < 4096 + 100  # protocol 2: ~1.5x larger
