"""An object's (decompressed) bytes cut into blocks of whole lines, for the Arrow readers.

A block holds at most `BLOCK` bytes, so no line in it can exceed the 1 MB record limit (the
per-record readers' check never fires on one). A line longer than a block ends the cutting:
`Rest` carries every remaining byte for the per-record reader, which applies the limit itself.
"""

from __future__ import annotations

import codecs
import itertools
from collections.abc import Iterator
from dataclasses import dataclass

from .inputs import (
    MAX_RECORD_CHARS,
    ByteCounters,
    RangeSource,
    decode_utf8,
    decompress,
    iter_raw,
    scan_window,
)
from .request import SelectRequest

BLOCK = MAX_RECORD_CHARS  # bytes per block: a line that fits is within the record limit
_BOM = codecs.BOM_UTF8


@dataclass
class Rest:
    """The rest of the object, as text, for the per-record reader."""

    chunks: Iterator[bytes]
    counters: ByteCounters

    def text(self) -> Iterator[str]:
        def counted() -> Iterator[bytes]:  # the first chunk was counted already
            for n, chunk in enumerate(self.chunks):
                if n:
                    self.counters.processed += len(chunk)
                yield chunk

        return decode_utf8(counted(), ByteCounters(), bom=False)


def line_blocks(
    request: SelectRequest, source: RangeSource, counters: ByteCounters
) -> Iterator[bytes | Rest]:
    """Blocks of the ScanRange's records (a leading byte-order mark dropped), then maybe a Rest."""
    lo, hi = scan_window(source, request.scan_start, request.scan_end, b"\n")
    raw = decompress(iter_raw(source, lo, hi, counters), request.compression)
    buf = b""
    first = True
    for chunk in raw:
        counters.processed += len(chunk)
        if first:
            first = False
            if chunk.startswith(_BOM):
                chunk = chunk[len(_BOM) :]
        buf += chunk
        while len(buf) >= BLOCK:
            cut = buf.rfind(b"\n", 0, BLOCK) + 1
            if cut == 0:
                yield Rest(itertools.chain([buf], raw), counters)
                return
            yield buf[:cut]
            buf = buf[cut:]
    if buf:
        yield buf


def block_text(data: bytes) -> Iterator[str]:
    """One block as text for the per-record reader (raises InvalidTextEncoding as it does)."""
    return decode_utf8(iter([data]), ByteCounters(), bom=False)
