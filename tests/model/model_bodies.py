"""Object bodies for the model harness: sizes at every boundary of the design, content that
repeats across keys, buckets, versions and users (so chunks and inline rows are shared)."""

from __future__ import annotations

import random

from hypothesis import strategies as st
from model_targets import CHUNK_SIZE, INLINE_MAX

SEGMENT = 64 * 1024  # encryption segment; chunks up to this size are kept in the chunk cache
SEALED_OVERHEAD = 32 + 16  # an encrypted one-segment chunk: siv + GCM tag
GET_IN_ONE_GO = 256 * 1024  # GETs below this are answered from one read
MIN_PART = 5 * 1024 * 1024


def _around(*points: int) -> list[int]:
    return sorted({p + d for p in points for d in (-1, 0, 1) if p + d >= 0})


SIZES = [
    *_around(0, INLINE_MAX, SEGMENT - SEALED_OVERHEAD, SEGMENT, CHUNK_SIZE, GET_IN_ONE_GO),
    3 * CHUNK_SIZE + 5,
]
PART_SIZES = [MIN_PART, MIN_PART + 1, 1, INLINE_MAX + 1, SEGMENT + 1, CHUNK_SIZE + 1]

# (size, seed): seed -1 is one repeated byte, 0..2 are three random streams whose bodies are
# prefixes of each other, so equal seeds share chunks even between different sizes.
sizes = st.one_of(st.sampled_from(SIZES), st.integers(0, 3 * CHUNK_SIZE + 100))
seeds = st.integers(-1, 2)
body_specs = st.tuples(sizes, seeds)
part_specs = st.tuples(st.sampled_from(PART_SIZES), seeds)


def body(spec: tuple[int, int]) -> bytes:
    size, seed = spec
    return b"Y" * size if seed < 0 else random.Random(seed).randbytes(size)
