"""Value semantics of S3 Select: coercion, three-valued comparison, casts and timestamps.

CSV fields arrive as strings, JSON and Parquet values as Python scalars; these helpers decide how
they mix (a CSV ``'42'`` compares equal to ``42``), so `evaluate` stays a thin tree compiler.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re
from typing import Any

from .ast import MISSING
from .errors import SelectError

UTC = dt.UTC
_INT_RE = re.compile(r"[+-]?\d+\Z")
_FLOAT_RE = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\Z")


def is_absent(value: Any) -> bool:
    return value is None or value is MISSING


def to_number(value: Any) -> int | float | None:
    """The numeric reading of ``value`` or None when it has none (e.g. ``'abc'``)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if _INT_RE.match(text):
            try:
                return int(text)
            except ValueError:  # more digits than Python converts (4300): a float's range
                return float(text)
        if _FLOAT_RE.match(text):
            return float(text)
        low = text.lower()
        if low in ("nan", "inf", "+inf", "-inf", "infinity", "-infinity"):
            return float(low)
    return None


def compare(a: Any, b: Any) -> int | None:
    """-1/0/1, or None when either side is NULL/MISSING or the values are incomparable."""
    if a is None or b is None or a is MISSING or b is MISSING:
        return None
    ta, tb = type(a), type(b)
    if (ta is tb and ta is not bool) or (ta in (int, float) and tb in (int, float)):
        if a != a or b != b:  # NaN: unordered, so every comparison is unknown
            return None
        try:
            return (a > b) - (a < b)
        except TypeError:
            return None
    if isinstance(a, bool) or isinstance(b, bool):
        ba, bb = to_bool(a), to_bool(b)
        if ba is None or bb is None:
            return None
        return (ba > bb) - (ba < bb)
    if isinstance(a, dt.datetime) or isinstance(b, dt.datetime):
        try:
            da = a if isinstance(a, dt.datetime) else parse_timestamp(str(a))
            db = b if isinstance(b, dt.datetime) else parse_timestamp(str(b))
        except ValueError:
            return None
        return (da > db) - (da < db)
    if isinstance(a, (str, int, float, decimal.Decimal)) and isinstance(
        b, (str, int, float, decimal.Decimal)
    ):
        # a string meets a number (CSV fields are strings): compare numerically or not at all
        na, nb = to_number(a), to_number(b)
        if na is None or nb is None:
            return None
        return (na > nb) - (na < nb)
    if a == b:
        return 0
    return None


def equals(a: Any, b: Any) -> bool | None:
    c = compare(a, b)
    if c is None:
        if a is None or b is None or a is MISSING or b is MISSING:
            return None
        if (type(a) is float and a != a) or (type(b) is float and b != b):
            return None
        return a == b
    return c == 0


def to_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        low = value.strip().lower()
        if low == "true":
            return True
        if low == "false":
            return False
    if isinstance(value, (int, float)):
        return value != 0
    return None


def truthy(value: Any) -> bool:
    """WHERE semantics: only TRUE passes (NULL, MISSING and FALSE do not)."""
    if value is True:
        return True
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return False


def cast(value: Any, type_name: str) -> Any:
    if value is None or value is MISSING:
        return value
    try:
        if type_name == "STRING":
            return to_text(value)
        if type_name == "INT":
            if isinstance(value, bool):
                return int(value)
            if isinstance(value, float):
                if math.isnan(value) or math.isinf(value):
                    raise ValueError(value)
                return int(value)
            if isinstance(value, str):
                num = to_number(value)
                if num is None:
                    raise ValueError(value)
                return int(num)
            return int(value)
        if type_name in ("FLOAT", "DECIMAL"):
            if isinstance(value, bool):
                return float(value)
            num = to_number(value)
            if num is None:
                raise ValueError(value)
            return float(num) if type_name == "FLOAT" or isinstance(num, float) else num
        if type_name == "BOOL":
            result = to_bool(value)
            if result is None:
                raise ValueError(value)
            return result
        if type_name == "TIMESTAMP":
            if isinstance(value, dt.datetime):
                return value
            return parse_timestamp(str(value))
    except (ValueError, OverflowError, TypeError) as exc:
        raise SelectError("CastFailed", f"cannot cast {value!r} to {type_name}") from exc
    raise SelectError("InvalidDataType", f"unknown type {type_name}")


def to_text(value: Any) -> str:
    """The textual form used by CAST AS STRING and the CSV writer."""
    if isinstance(value, str):
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, dt.datetime):
        return format_timestamp(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e16:
            return repr(value)
        return repr(value)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, (list, dict)):
        import json

        return json.dumps(value, default=str, separators=(",", ":"))
    return str(value)


# -- timestamps -------------------------------------------------------------------------------
_TS_RE = re.compile(
    r"(?P<y>\d{4})(?:-(?P<mo>\d{2})(?:-(?P<d>\d{2}))?)?"
    r"(?:T(?:(?P<h>\d{2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:\.(?P<f>\d+))?)?"
    r"(?P<tz>Z|[+-]\d{2}:?\d{2})?)?)?\Z"
)


def parse_timestamp(text: str) -> dt.datetime:
    """Parse an ION/ISO-8601 timestamp (``2007T``, ``2007-02-23``, ``2007-02-23T12:14:33.5Z``)."""
    text = text.strip()
    m = _TS_RE.match(text)
    if m is None or (m["mo"] is None and "T" not in text and len(text) != 4):
        raise ValueError(f"invalid timestamp {text!r}")
    if m["h"] is not None and m["tz"] is None:
        raise ValueError(f"timestamp {text!r} with a time needs an offset")
    tz = UTC
    if m["tz"] and m["tz"] != "Z":
        sign = -1 if m["tz"][0] == "-" else 1
        digits = m["tz"][1:].replace(":", "")
        tz = dt.timezone(sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    frac = (m["f"] or "0")[:6].ljust(6, "0")
    return dt.datetime(
        int(m["y"]),
        int(m["mo"] or 1),
        int(m["d"] or 1),
        int(m["h"] or 0),
        int(m["mi"] or 0),
        int(m["s"] or 0),
        int(frac),
        tzinfo=tz,
    )


def format_timestamp(value: dt.datetime) -> str:
    """ION-style text: ``2020-01-02T03:04:05Z`` (fraction and offset only when present)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    offset = value.utcoffset() or dt.timedelta(0)
    if not offset:
        return text + "Z"
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return f"{text}{sign}{minutes // 60:02d}:{minutes % 60:02d}"


_MONTHS = [
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
]  # fmt: skip


def format_pattern(value: dt.datetime, pattern: str) -> str:
    """TO_STRING: the Java-style pattern letters AWS documents (y M d a h H m s S n X x)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "'":
            end = pattern.find("'", i + 1)
            if end < 0:
                raise SelectError("EvaluatorInvalidTimestampFormatPattern", "unterminated quote")
            out.append(pattern[i + 1 : end] if end > i + 1 else "'")
            i = end + 1
            continue
        if not ch.isalpha():
            out.append(ch)
            i += 1
            continue
        j = i
        while j < n and pattern[j] == ch:
            j += 1
        out.append(_format_field(value, ch, j - i))
        i = j
    return "".join(out)


def _format_field(v: dt.datetime, letter: str, count: int) -> str:
    if letter == "y":
        return f"{v.year % 100:02d}" if count == 2 else str(v.year).zfill(count)
    if letter == "M":
        if count >= 5:
            return _MONTHS[v.month - 1][0]
        if count == 4:
            return _MONTHS[v.month - 1]
        if count == 3:
            return _MONTHS[v.month - 1][:3]
        return str(v.month).zfill(count)
    if letter == "d":
        return str(v.day).zfill(count)
    if letter == "a":
        return "AM" if v.hour < 12 else "PM"
    if letter == "h":
        return str((v.hour % 12) or 12).zfill(count)
    if letter == "H":
        return str(v.hour).zfill(count)
    if letter == "m":
        return str(v.minute).zfill(count)
    if letter == "s":
        return str(v.second).zfill(count)
    if letter == "S":
        return f"{v.microsecond:06d}000"[:count].ljust(count, "0")
    if letter == "n":
        return str(v.microsecond * 1000)
    if letter in ("X", "x"):
        offset = v.utcoffset() or dt.timedelta(0)
        minutes = int(offset.total_seconds() // 60)
        if letter == "X" and minutes == 0:
            return "Z"
        sign = "-" if minutes < 0 else "+"
        minutes = abs(minutes)
        hh, mm = minutes // 60, minutes % 60
        if count == 1:
            return f"{sign}{hh:02d}" + (f"{mm:02d}" if mm else "")
        if count == 2:
            return f"{sign}{hh:02d}{mm:02d}"
        return f"{sign}{hh:02d}:{mm:02d}"
    raise SelectError(
        "EvaluatorInvalidTimestampFormatPatternSymbol", f"invalid pattern symbol {letter!r}"
    )
