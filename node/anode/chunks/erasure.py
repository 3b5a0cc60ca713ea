"""Reed-Solomon erasure coding of one chunk: k data + m parity fragments, any k of which rebuild it.

The Galois-field work is ISA-L's Reed-Solomon (Cauchy matrix: every k of the k+m fragments are
independent, for any k and m) through pyeclib/liberasurecode, whose wheel bundles both libraries;
docs/erasure-coding.md has the measurements behind that choice. Nothing here does I/O.

A fragment is `HEADER` + one liberasurecode fragment. The header makes a fragment found on a disk
self-describing (scheme, index, chunk length and id); its SHA-256, recorded with the chunk in
`Coded`, makes it verifiable on its own, so a corrupt or misplaced fragment is dropped before it
is used. The code is systematic: data fragment i carries chunk bytes [i*span, (i+1)*span), so a
healthy read concatenates the data fragments, and a range needs only those it covers; decoding is
for reads missing a data fragment. `encode` checks that layout on every chunk it codes, and a
decode is checked against the chunk id, so verified fragments never turn into wrong bytes.
"""

from __future__ import annotations

import functools
import hashlib
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyeclib.ec_iface import ECDriver


from ..config import MAX_ERASURE_WIDTH as MAX_WIDTH
from ..config import parse_erasure
from .store import cut

BACKEND = "isa_l_rs_cauchy"
MAGIC = b"AnEC"
VERSION = 1
# magic, version, k, m, index, chunk length, chunk id (SHA-256 of the stored chunk)
HEADER = struct.Struct(">4sBBBBQ32s")


class Unrecoverable(Exception):
    """Fewer than k verified fragments: the chunk cannot be read (never answered with guesses)."""


@dataclass(frozen=True)
class Scheme:
    k: int  # data fragments
    m: int  # parity fragments: any m may be lost

    def __post_init__(self) -> None:
        if self.k < 1 or self.m < 1 or self.k + self.m > MAX_WIDTH:
            raise ValueError(f"erasure coding {self}: need k >= 1, m >= 1, k + m <= {MAX_WIDTH}")

    @classmethod
    def parse(cls, text: str) -> Scheme:
        """`"4+2"` -> Scheme(4, 2), as written in `[cluster] erasure_coding`."""
        return cls(*parse_erasure(text))

    @property
    def width(self) -> int:
        return self.k + self.m

    def __str__(self) -> str:
        return f"{self.k}+{self.m}"


@dataclass(frozen=True)
class Coded:
    """What the metadata records about a coded chunk: enough to plan and verify any read."""

    scheme: Scheme
    size: int  # chunk bytes
    span: int  # chunk bytes per data fragment (the last ones end in zero padding)
    offset: int  # where the chunk bytes start in a fragment (after both headers)
    digests: tuple[bytes, ...]  # SHA-256 of each fragment, by index (data first)

    @property
    def raw(self) -> int:
        """Bytes the k + m fragments take on the members' disks."""
        return self.scheme.width * (self.offset + self.span)

    def record(self) -> dict[str, Any]:
        """As the metadata keeps it (`RecordCoded`)."""
        return {
            "scheme": str(self.scheme),
            "size": self.size,
            "span": self.span,
            "offset": self.offset,
            "digests": list(self.digests),
            "raw": self.raw,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Coded:
        return cls(
            Scheme.parse(record["scheme"]),
            record["size"],
            record["span"],
            record["offset"],
            tuple(record["digests"]),
        )

    def verified(self, index: int, fragment: bytes) -> bool:
        return hashlib.sha256(fragment).digest() == self.digests[index]

    def covering(self, offset: int, length: int) -> range:
        """Indices of the data fragments holding chunk bytes [offset, offset + length);
        a negative length means to the end of the chunk."""
        end = self.size if length < 0 else min(self.size, offset + length)
        if offset >= end:
            return range(0)
        return range(offset // self.span, (end - 1) // self.span + 1)


@functools.cache
def _driver(scheme: Scheme) -> ECDriver:
    # imported on first use: every node imports this module, few code chunks (liberasurecode
    # and ISA-L are loaded then)
    from pyeclib.ec_iface import ECDriver

    return ECDriver(k=scheme.k, m=scheme.m, ec_type=BACKEND)


def encode(chunk: bytes, chunk_id: bytes, scheme: Scheme) -> tuple[Coded, list[bytes]]:
    """The k + m fragments of `chunk` (whose SHA-256 is `chunk_id`), data fragments first."""
    driver = _driver(scheme)
    parts = driver.encode(chunk)
    span = driver.get_metadata(parts[0], formatted=True)["size"]
    inner = len(parts[0]) - span  # liberasurecode's own fragment header
    fragments = [
        HEADER.pack(MAGIC, VERSION, scheme.k, scheme.m, i, len(chunk), chunk_id) + part
        for i, part in enumerate(parts)
    ]
    coded = Coded(
        scheme,
        len(chunk),
        span,
        HEADER.size + inner,
        tuple(hashlib.sha256(f).digest() for f in fragments),
    )
    if _join(coded, {i: fragments[i] for i in range(scheme.k)}, 0, -1) != chunk:
        raise AssertionError(f"{BACKEND} is not systematic as expected; refusing to store")
    return coded, fragments


def header(fragment: bytes) -> tuple[Scheme, int, int, bytes]:
    """(scheme, index, chunk size, chunk id) of a fragment, e.g. one found on a disk."""
    if len(fragment) < HEADER.size:
        raise ValueError("not an erasure-coded fragment: too short")
    magic, version, k, m, index, size, chunk_id = HEADER.unpack_from(fragment)
    if magic != MAGIC or version != VERSION or index >= k + m:
        raise ValueError("not an erasure-coded fragment: bad header")
    return Scheme(k, m), index, size, chunk_id


def _join(coded: Coded, fragments: Mapping[int, bytes], offset: int, length: int) -> bytes:
    end = coded.size if length < 0 else min(coded.size, offset + length)
    out = []
    for i in coded.covering(offset, length):
        lo, hi = max(offset, i * coded.span), min(end, (i + 1) * coded.span)
        base = coded.offset - i * coded.span
        out.append(memoryview(fragments[i])[base + lo : base + hi])
    return b"".join(out)


def read(
    coded: Coded, chunk_id: bytes, fragments: Mapping[int, bytes], offset: int = 0, length: int = -1
) -> bytes:
    """Chunk bytes [offset, offset + length) from any fragments at hand (index -> bytes).

    Unverified fragments are dropped. When the covered data fragments are all verified the bytes
    are cut from them; otherwise any k verified fragments are decoded and the whole chunk is
    checked against `chunk_id`. Fewer than k verified: `Unrecoverable`.
    """
    good = {
        i: f for i, f in fragments.items() if 0 <= i < len(coded.digests) and coded.verified(i, f)
    }
    if all(i in good for i in coded.covering(offset, length)):
        return _join(coded, good, offset, length)
    k = coded.scheme.k
    if len(good) < k:
        raise Unrecoverable(
            f"chunk {chunk_id.hex()}: {len(good)} verified fragments of "
            f"{coded.scheme.width}, {k} needed"
        )
    from pyeclib.ec_iface import ECDriverError  # loaded by now (`_driver`)

    try:
        chunk = _driver(coded.scheme).decode([f[HEADER.size :] for f in good.values()])
    except ECDriverError as exc:
        raise Unrecoverable(f"chunk {chunk_id.hex()}: decoding failed: {exc}") from exc
    if len(chunk) != coded.size or hashlib.sha256(chunk).digest() != chunk_id:
        raise Unrecoverable(f"chunk {chunk_id.hex()}: decoded bytes do not match the chunk id")
    return cut(chunk, offset, length)


def rebuild(
    coded: Coded, chunk_id: bytes, fragments: Mapping[int, bytes], wanted: list[int]
) -> dict[int, bytes]:
    """The fragments `wanted` (lost or corrupt ones), made again from any k verified others:
    byte-identical to the originals (checked against their recorded digests)."""
    chunk = read(coded, chunk_id, fragments)
    _, fresh = encode(chunk, chunk_id, coded.scheme)
    out = {i: fresh[i] for i in wanted}
    for i, fragment in out.items():
        if not coded.verified(i, fragment):
            raise Unrecoverable(f"chunk {chunk_id.hex()}: fragment {i} rebuilt differently")
    return out
