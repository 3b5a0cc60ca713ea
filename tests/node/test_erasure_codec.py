"""The erasure codec (anode.chunks.erasure), pure logic: any m losses or corruptions give back the
exact bytes, m + 1 fail with `Unrecoverable`, never wrong bytes; ranges need only the data
fragments they cover."""

from __future__ import annotations

import hashlib
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anode.chunks import erasure
from anode.chunks.erasure import Scheme, Unrecoverable

SCHEMES = [Scheme(2, 1), Scheme(2, 2), Scheme(3, 1), Scheme(4, 2), Scheme(8, 3)]
PROPERTY = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def coded(data: bytes, scheme: Scheme):
    chunk_id = hashlib.sha256(data).digest()
    info, fragments = erasure.encode(data, chunk_id, scheme)
    return chunk_id, info, fragments


def damage(fragment: bytes, where: int) -> bytes:
    """One bit flipped, in the chunk bytes (the last byte counts back from the end) or, for odd
    `where`, anywhere (headers too)."""
    out = bytearray(fragment)
    out[where % len(out) if where % 2 else -1 - (where // 2) % 64] ^= 0x40
    return bytes(out)


@st.composite
def faults(draw, lost_max_extra: int = 0):
    """(scheme, data, {index: 'lose'|'corrupt'}) with at most m (+ extra) faults."""
    scheme = draw(st.sampled_from(SCHEMES))
    data = draw(st.binary(min_size=1, max_size=5000))
    count = draw(st.integers(0, scheme.m + lost_max_extra))
    hit = draw(st.permutations(range(scheme.width)))[:count]
    kinds = {i: draw(st.sampled_from(["lose", "corrupt"])) for i in hit}
    return scheme, data, kinds, draw(st.integers(0, 2**31))


def apply(fragments: list[bytes], kinds: dict[int, str], where: int) -> dict[int, bytes]:
    out = {}
    for i, fragment in enumerate(fragments):
        if kinds.get(i) == "corrupt":
            out[i] = damage(fragment, where)
        elif kinds.get(i) != "lose":
            out[i] = fragment
    return out


@PROPERTY
@given(faults())
def test_any_m_losses_or_corruptions_give_back_the_exact_bytes(case):
    scheme, data, kinds, where = case
    chunk_id, info, fragments = coded(data, scheme)
    assert len(fragments) == scheme.width and info.size == len(data)
    assert erasure.read(info, chunk_id, apply(fragments, kinds, where)) == data


@PROPERTY
@given(faults(), st.integers(0, 5000), st.integers(-1, 5000))
def test_ranges_with_up_to_m_faults_are_exact(case, offset, length):
    scheme, data, kinds, where = case
    chunk_id, info, fragments = coded(data, scheme)
    expected = data[offset:] if length < 0 else data[offset : offset + length]
    assert erasure.read(info, chunk_id, apply(fragments, kinds, where), offset, length) == expected


@PROPERTY
@given(st.sampled_from(SCHEMES), st.binary(min_size=1, max_size=5000), st.data())
def test_more_than_m_faults_fail_clearly_never_with_wrong_bytes(scheme, data, draw):
    chunk_id, info, fragments = coded(data, scheme)
    count = draw.draw(st.integers(scheme.m + 1, scheme.width))
    hit = draw.draw(st.permutations(range(scheme.width)))[:count]
    kinds = {i: draw.draw(st.sampled_from(["lose", "corrupt"])) for i in hit}
    at_hand = apply(fragments, kinds, draw.draw(st.integers(0, 2**31)))
    if any(i in kinds for i in info.covering(0, -1)):
        with pytest.raises(Unrecoverable, match="verified fragments"):
            erasure.read(info, chunk_id, at_hand)
    else:  # a tiny chunk may live in fewer than k data fragments, all intact: still exact
        assert erasure.read(info, chunk_id, at_hand) == data


@PROPERTY
@given(
    st.sampled_from(SCHEMES),
    st.binary(min_size=1, max_size=5000),
    st.integers(0, 5000),
    st.integers(0, 5000),
)
def test_a_range_needs_only_the_data_fragments_it_covers(scheme, data, offset, length):
    chunk_id, info, fragments = coded(data, scheme)
    cover = info.covering(offset, length)
    assert all(0 <= i < scheme.k for i in cover)
    only = {i: fragments[i] for i in cover}
    assert erasure.read(info, chunk_id, only, offset, length) == data[offset : offset + length]
    if cover:  # one covered fragment short and no parity at hand: no bytes at all
        del only[cover[0]]
        with pytest.raises(Unrecoverable):
            erasure.read(info, chunk_id, only, offset, length)


def test_a_4_mib_chunk_at_each_measured_scheme():
    data = os.urandom(4 * 1024 * 1024 + 7)
    for scheme in (Scheme(2, 1), Scheme(4, 2), Scheme(8, 3)):
        chunk_id, info, fragments = coded(data, scheme)
        # fragments are about size/k each: the overhead is (k+m)/k plus headers
        assert sum(map(len, fragments)) <= len(data) * scheme.width / scheme.k + 200 * scheme.width
        lost = {i: f for i, f in enumerate(fragments) if i >= scheme.m}  # first m data lost
        assert erasure.read(info, chunk_id, lost) == data
        assert erasure.read(info, chunk_id, lost, 3_000_000, 1000) == data[3_000_000:3_001_000]


def test_fragments_describe_themselves_and_rebuild_byte_identical():
    data = os.urandom(10_000)
    chunk_id, info, fragments = coded(data, Scheme(3, 2))
    for i, fragment in enumerate(fragments):
        assert erasure.header(fragment) == (Scheme(3, 2), i, len(data), chunk_id)
    with pytest.raises(ValueError, match="not an erasure-coded fragment"):
        erasure.header(data)
    at_hand = {i: fragments[i] for i in (1, 3, 4)}
    assert erasure.rebuild(info, chunk_id, at_hand, [0, 2]) == {0: fragments[0], 2: fragments[2]}
    # the same chunk always codes to the same fragments: dedup holds at the fragment level too
    assert coded(data, Scheme(3, 2))[2] == fragments


def test_a_fragment_under_another_index_is_not_used():
    data = os.urandom(3000)
    chunk_id, info, fragments = coded(data, Scheme(2, 1))
    swapped = {0: fragments[1], 1: fragments[0], 2: fragments[2]}
    with pytest.raises(Unrecoverable):
        erasure.read(info, chunk_id, swapped)


def test_a_decode_is_checked_against_the_chunk_id():
    data = os.urandom(3000)
    _, info, fragments = coded(data, Scheme(2, 1))
    with pytest.raises(Unrecoverable, match="do not match the chunk id"):
        erasure.read(info, hashlib.sha256(b"other").digest(), {1: fragments[1], 2: fragments[2]})


@pytest.mark.parametrize("text", ["4", "0+2", "2+0", "a+b", "30+3", ""])
def test_bad_schemes_are_refused_with_a_clear_error(text):
    with pytest.raises(ValueError, match="erasure coding"):
        Scheme.parse(text)


def test_schemes_parse_and_print():
    assert Scheme.parse(" 4 + 2 ") == Scheme(4, 2) and str(Scheme(8, 3)) == "8+3"
