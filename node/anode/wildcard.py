"""The one wildcard matcher: policy `*`/`?`, CORS `*` and S3 Select `LIKE` `%`/`_` (+ ESCAPE).

A regex built from such a pattern backtracks: `*a*a*a*a*a*a*a*a*ab` against 40 `a` takes
seconds, and `re` holds the GIL (and so the event loop) all that time. Here no choice is ever
revisited. The pattern is cut at its any-run wildcards into segments; the first segment must
match at the start of the text, the last at its end, and each one between at its leftmost
position after the previous one (leftmost is always safe: a later match leaves less text for the
rest, never more). Every text position is a candidate start for at most one segment, so matching
costs O(len(text) x len(pattern)) at worst, and O(len(text)) `str.find` for patterns without
one-character wildcards.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

_CHECK_EVERY = 1 << 14  # text positions scanned between calls of a matcher's `check`


def _fold(text: str) -> str:
    """Lower-case without changing the length, so `?` still counts characters."""
    low = text.lower()
    if len(low) == len(text):
        return low
    return "".join(ch if len(ch.lower()) != 1 else ch.lower() for ch in text)


@dataclass(frozen=True, slots=True)
class _Segment:
    """A run of the pattern between any-run wildcards: literal pieces at fixed offsets."""

    length: int  # characters it spans (literals and one-character wildcards)
    pieces: tuple[tuple[int, str], ...]  # (offset, literal text), in order
    masks: dict[str, int]  # per character: the bit set of positions it may stand at
    wild: int  # the bit set of one-character wildcard positions (any other character)

    @classmethod
    def of(cls, length: int, pieces: list[tuple[int, str]]) -> _Segment:
        wild = (1 << length) - 1
        for off, piece in pieces:
            wild &= ~(((1 << len(piece)) - 1) << off)
        masks: dict[str, int] = {}
        for off, piece in pieces:
            for k, ch in enumerate(piece):
                masks[ch] = masks.get(ch, wild) | (1 << (off + k))
        return cls(length, tuple(pieces), masks, wild)

    def at(self, text: str, i: int) -> bool:
        return all(text.startswith(piece, i + off) for off, piece in self.pieces)

    def find(self, text: str, start: int, end: int, check: Callable[[], None] | None) -> int:
        """The leftmost i in [start, end - length] where the segment matches, else -1."""
        last = end - self.length
        if last < start:
            return -1
        if not self.pieces:
            return start
        if len(self.pieces) == 1:
            off, piece = self.pieces[0]
            j = text.find(piece, start + off, last + off + len(piece))
            return j - off if j >= 0 else -1
        return self._shift_and(text, start, end, check)

    def _shift_and(self, text: str, start: int, end: int, check: Callable[[], None] | None) -> int:
        """Bit-parallel scan (Shift-And): bit k of `state` says the segment's first k+1
        positions match the text just read. One pass, a few integer operations on length-bit
        numbers per character: O(len(text) x length / 64) word operations, no backtracking."""
        masks, wild, full = self.masks, self.wild, 1 << (self.length - 1)
        first_off, first = self.pieces[0]
        lead = first[0] if first_off == 0 else None  # the character every match starts with
        state, j, scanned = 0, start, 0
        while j < end:
            if state == 0 and lead is not None:  # nothing in flight: skip to a possible start
                j = text.find(lead, j, end)
                if j < 0:
                    return -1
            began = j
            stop = min(end, j + _CHECK_EVERY)
            while j < stop:
                state = ((state << 1) | 1) & masks.get(text[j], wild)
                j += 1
                if state & full:
                    return j - self.length
                if state == 0 and lead is not None:
                    break
            scanned += j - began
            if check is not None and scanned >= _CHECK_EVERY:
                scanned = 0
                check()
        return -1


@dataclass(frozen=True, slots=True)
class Wildcard:
    """A compiled pattern; `matches` tells whether it matches a whole text."""

    segments: tuple[_Segment, ...]  # separated by any-run wildcards; one segment: none
    ignore_case: bool

    def matches(self, text: str, check: Callable[[], None] | None = None) -> bool:
        """Whether the pattern matches all of ``text``. ``check`` is called every so often
        during a long match (a query's CPU budget raises from it)."""
        if self.ignore_case:
            text = _fold(text)
        segments = self.segments
        n = len(text)
        first = segments[0]
        if len(segments) == 1:
            return n == first.length and first.at(text, 0)
        last = segments[-1]
        end = n - last.length
        if end < first.length or not first.at(text, 0) or not last.at(text, end):
            return False
        pos = first.length
        for segment in segments[1:-1]:
            i = segment.find(text, pos, end, check)
            if i < 0:
                return False
            pos = i + segment.length
        return True


def compile_wildcard(
    pattern: str,
    *,
    many: str = "*",
    one: str | None = "?",
    escape: str | None = None,
    ignore_case: bool = False,
) -> Wildcard:
    """Compile ``pattern`` where ``many`` matches any run of characters and ``one`` exactly one.

    With ``escape``, the escape character makes the next ``many``, ``one`` or escape character
    literal; anything else after it (or nothing) raises ValueError.
    """
    if ignore_case:
        pattern = _fold(pattern)
    segments: list[_Segment] = []
    pieces: list[tuple[int, str]] = []
    literal: list[str] = []
    length = 0

    def flush_literal() -> None:
        if literal:
            pieces.append((length - len(literal), "".join(literal)))
            literal.clear()

    i = 0
    while i < len(pattern):
        ch = pattern[i]
        i += 1
        if escape is not None and ch == escape:
            if i >= len(pattern) or pattern[i] not in (many, one, escape):
                raise ValueError(f"the escape character must precede {many}, {one} or itself")
            literal.append(pattern[i])
            length += 1
            i += 1
        elif ch == many:
            flush_literal()
            segments.append(_Segment.of(length, pieces))
            pieces, length = [], 0
        elif ch == one:
            flush_literal()
            length += 1
        else:
            literal.append(ch)
            length += 1
    flush_literal()
    segments.append(_Segment.of(length, pieces))
    # adjacent any-runs make empty middle segments, which match anywhere: drop them
    middle = [s for s in segments[1:-1] if s.length]
    kept = segments if len(segments) == 1 else [segments[0], *middle, segments[-1]]
    return Wildcard(tuple(kept), ignore_case)


@functools.lru_cache(maxsize=4096)
def _cached(pattern: str, many: str, one: str | None, ignore_case: bool) -> Wildcard:
    return compile_wildcard(pattern, many=many, one=one, ignore_case=ignore_case)


def wildcard_match(
    pattern: str, text: str, *, many: str = "*", one: str | None = "?", ignore_case: bool = False
) -> bool:
    """One-shot match for small, often repeated patterns (policies, CORS rules): compiled once."""
    return _cached(pattern, many, one, ignore_case).matches(text)
