"""Pure request-condition logic: conditional GET/HEAD/copy headers and HTTP Range.

Precedence follows RFC 9110 §13.2.2 as S3 documents it: If-Match, then If-Unmodified-Since
(ignored when If-Match is present and holds), then If-None-Match, then If-Modified-Since
(ignored when If-None-Match is present).
"""

from __future__ import annotations

import functools
import re
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from .errors import ErrorCode, S3Error

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(seconds: float) -> str:
    """RFC 7231 IMF-fixdate (what email.utils.format_datetime(usegmt=True) gives, faster:
    every object answer carries one, and objects written in the same second share it)."""
    return _http_date(int(seconds))


@functools.lru_cache(maxsize=4096)
def _http_date(seconds: int) -> str:
    t = time.gmtime(seconds)
    return (f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT")


def parse_http_date(value: str | None) -> float | None:
    """Seconds since the epoch, or None when absent or unparseable (S3 ignores bad dates)."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _etags(value: str) -> set[str]:
    return {v.strip().removeprefix("W/").strip('"') for v in value.split(",")}


def check_read_conditions(
    headers: dict[str, str] | object,
    etag: str,
    mtime: float,
    *,
    prefix: str = "",
    not_modified: ErrorCode = ErrorCode.NotModified,
) -> None:
    """Raise PreconditionFailed (412) or `not_modified` (304) as the conditional headers demand.

    `prefix` is "x-amz-copy-source-" for CopyObject/UploadPartCopy, where a failed
    If-None-Match or If-Modified-Since is a 412 rather than a 304.
    """
    get = headers.get  # type: ignore[attr-defined]
    if_match = get(prefix + "If-Match")
    if_none_match = get(prefix + "If-None-Match")
    if_modified = parse_http_date(get(prefix + "If-Modified-Since"))
    if_unmodified = parse_http_date(get(prefix + "If-Unmodified-Since"))
    current = etag.strip('"')
    modified = int(mtime)  # HTTP dates have one-second resolution
    if if_match is not None:
        wanted = _etags(if_match)
        if "*" not in wanted and current not in wanted:
            raise S3Error(ErrorCode.PreconditionFailed, Condition=prefix + "If-Match")
    elif if_unmodified is not None and modified > if_unmodified:
        raise S3Error(ErrorCode.PreconditionFailed, Condition=prefix + "If-Unmodified-Since")
    # A 304 carries the validators, as on AWS: caches keyed by ETag refresh from them.
    validators = ({"ETag": f'"{current}"', "Last-Modified": http_date(mtime)}
                  if not_modified is ErrorCode.NotModified else {})
    if if_none_match is not None:
        wanted = _etags(if_none_match)
        if "*" in wanted or current in wanted:
            raise S3Error(not_modified, headers=validators, Condition=prefix + "If-None-Match")
    elif if_modified is not None and modified <= if_modified:
        raise S3Error(not_modified, headers=validators, Condition=prefix + "If-Modified-Since")


_RANGE = re.compile(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*")


def parse_range(value: str | None, size: int) -> tuple[int, int] | None:
    """(start, end exclusive) for a single-range header; None means the whole object.

    Malformed or multi-range headers are ignored as S3 does; an unsatisfiable range raises
    InvalidRange (416).
    """
    if value is None:
        return None
    match = _RANGE.fullmatch(value)
    if not match or (not match.group(1) and not match.group(2)):
        return None
    first, last = match.group(1), match.group(2)
    if not first:  # suffix range: the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            raise _unsatisfiable(size)
        return max(0, size - n), size
    start = int(first)
    end = size - 1 if not last else min(int(last), size - 1)
    if last and int(last) < start:
        return None  # syntactically invalid: ignored
    if start >= size:
        raise _unsatisfiable(size)
    return start, end + 1


def _unsatisfiable(size: int) -> S3Error:
    return S3Error(
        ErrorCode.InvalidRange,
        headers={"Content-Range": f"bytes */{size}"},
        ActualObjectSize=str(size),
    )
