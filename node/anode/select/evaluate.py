"""Compiles query expressions into plain Python closures evaluated once per record.

Compiling once (rather than walking the tree for every record) keeps the per-record cost to a few
function calls. Records are `CsvRow`s (positional fields plus an optional header) or dicts (JSON
objects, Parquet rows); `lookup` hides the difference.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from typing import Any

from ..wildcard import Wildcard, compile_wildcard
from . import ast
from .ast import MISSING
from .errors import SelectError
from .values import (
    UTC,
    cast,
    compare,
    equals,
    format_pattern,
    is_absent,
    parse_timestamp,
    to_number,
    to_text,
    truthy,
)

Fn = Callable[[Any], Any]
# Integers may outgrow 64 bits (CSV fields can hold any number) but not without end: repeated
# multiplication would otherwise build numbers whose next product takes seconds of C time.
MAX_INT_BITS = 4096


class CsvHeader:
    """Column names of a CSV object (FileHeaderInfo USE), with case-insensitive lookup."""

    __slots__ = ("exact", "lower", "names")

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.exact = {name: i for i, name in reversed(list(enumerate(names)))}
        self.lower = {name.lower(): i for i, name in reversed(list(enumerate(names)))}


class CsvRow:
    """One CSV record: its fields as strings and the header they are named by (if any)."""

    __slots__ = ("fields", "header")

    def __init__(self, fields: list[str], header: CsvHeader | None) -> None:
        self.fields = fields
        self.header = header


def lookup(value: Any, step: ast.PathStep) -> Any:
    """Follow one path step from ``value``; absent attributes are MISSING."""
    if type(value) is CsvRow:
        if step.name is None:
            return MISSING
        header = value.header
        if header is not None:
            idx = header.exact.get(step.name)
            if idx is None and not step.quoted:
                idx = header.lower.get(step.name.lower())
            if idx is not None:
                return value.fields[idx] if idx < len(value.fields) else MISSING
        name = step.name
        if name.startswith("_") and name[1:].isascii() and name[1:].isdigit() and len(name) < 12:
            pos = int(name[1:]) - 1
            return value.fields[pos] if 0 <= pos < len(value.fields) else MISSING
        return MISSING
    if isinstance(value, dict):
        if step.name is None:
            return MISSING
        if step.name in value:
            return value[step.name]
        if not step.quoted:
            low = step.name.lower()
            for key, item in value.items():
                if key.lower() == low:
                    return item
        return MISSING
    if isinstance(value, list) and step.index is not None:
        return value[step.index] if 0 <= step.index < len(value) else MISSING
    return MISSING


def compile_expr(
    node: ast.Node,
    aggregates: dict[int, Any] | None = None,
    *,
    check: Callable[[], None] | None = None,
) -> Fn:
    """Turn ``node`` into ``fn(record) -> value``.

    ``aggregates`` maps ``id(Aggregate node)`` to its final value for the post-aggregation
    projection; Aggregate nodes are not otherwise evaluable per record. ``check`` (the query's
    CPU budget) is called during long evaluations.
    """
    c = _Compiler(aggregates, check)
    return c.compile(node)


class _Compiler:
    def __init__(self, aggregates: dict[int, Any] | None, check: Callable[[], None] | None) -> None:
        self.aggregates = aggregates
        self.check = check

    def compile(self, node: ast.Node) -> Fn:
        method = getattr(self, "c_" + type(node).__name__)
        return method(node)

    def c_Literal(self, node: ast.Literal) -> Fn:
        value = node.value
        return lambda row: value

    def c_Path(self, node: ast.Path) -> Fn:
        steps = node.steps
        if not steps:
            return lambda row: row
        if len(steps) == 1:
            step = steps[0]
            return lambda row: lookup(row, step)

        def path(row: Any) -> Any:
            value = row
            for step in steps:
                value = lookup(value, step)
                if value is MISSING:
                    return MISSING
            return value

        return path

    def c_Aggregate(self, node: ast.Aggregate) -> Fn:
        if self.aggregates is None:
            raise SelectError("UnsupportedSqlOperation", "aggregate used outside SELECT list")
        results = self.aggregates
        key = id(node)
        return lambda row: results[key]

    def c_Unary(self, node: ast.Unary) -> Fn:
        operand = self.compile(node.operand)
        if node.op == "NOT":

            def not_(row: Any) -> Any:
                value = operand(row)
                if is_absent(value):
                    return None
                return not truthy(value)

            return not_
        negate = node.op == "-"

        def sign(row: Any) -> Any:
            value = operand(row)
            if is_absent(value):
                return value
            num = to_number(value)
            if num is None:
                raise SelectError("EvaluatorInvalidArguments", f"cannot negate {value!r}")
            return -num if negate else num

        return sign

    def c_Binary(self, node: ast.Binary) -> Fn:
        left, right = self.compile(node.left), self.compile(node.right)
        op = node.op
        if op == "AND":

            def and_(row: Any) -> Any:
                a = left(row)
                if a is False or (not is_absent(a) and not truthy(a)):
                    return False
                b = right(row)
                if b is False or (not is_absent(b) and not truthy(b)):
                    return False
                return None if is_absent(a) or is_absent(b) else True

            return and_
        if op == "OR":

            def or_(row: Any) -> Any:
                a = left(row)
                if truthy(a):
                    return True
                b = right(row)
                if truthy(b):
                    return True
                return None if is_absent(a) or is_absent(b) else False

            return or_
        if op in _COMPARISONS:
            test = _COMPARISONS[op]

            def cmp(row: Any) -> Any:
                a, b = left(row), right(row)
                if op == "=" or op == "<>":
                    eq = equals(a, b)
                    return None if eq is None else (eq if op == "=" else not eq)
                c = compare(a, b)
                return None if c is None else test(c)

            return cmp
        if op == "||":

            def concat(row: Any) -> Any:
                a, b = left(row), right(row)
                if a is MISSING or b is MISSING:
                    return MISSING
                if a is None or b is None:
                    return None
                return to_text(a) + to_text(b)

            return concat
        arith = _ARITHMETIC[op]

        def arithmetic(row: Any) -> Any:
            a, b = left(row), right(row)
            if a is MISSING or b is MISSING:
                return MISSING
            if a is None or b is None:
                return None
            na, nb = to_number(a), to_number(b)
            if na is None or nb is None:
                raise SelectError(
                    "EvaluatorInvalidArguments", f"cannot apply {op} to {a!r} and {b!r}"
                )
            try:
                result = arith(na, nb)
            except OverflowError:  # an integer too large for a float
                raise SelectError("IntegerOverflow", f"{op} overflows") from None
            if type(result) is int and result.bit_length() > MAX_INT_BITS:
                raise SelectError(
                    "IntegerOverflow", f"{op} gives an integer over {MAX_INT_BITS} bits"
                )
            return result

        return arithmetic

    def c_Between(self, node: ast.Between) -> Fn:
        operand, low, high = (self.compile(n) for n in (node.operand, node.low, node.high))
        negated = node.negated

        def between(row: Any) -> Any:
            value = operand(row)
            c1, c2 = compare(value, low(row)), compare(value, high(row))
            if c1 is None or c2 is None:
                return None
            return (c1 >= 0 and c2 <= 0) != negated

        return between

    def c_InList(self, node: ast.InList) -> Fn:
        operand = self.compile(node.operand)
        items = [self.compile(item) for item in node.items]
        negated = node.negated

        def in_list(row: Any) -> Any:
            value = operand(row)
            if is_absent(value):
                return None
            unknown = False
            for item in items:
                eq = equals(value, item(row))
                if eq:
                    return not negated
                if eq is None:
                    unknown = True
            return None if unknown else negated

        return in_list

    def c_Like(self, node: ast.Like) -> Fn:
        operand, pattern = self.compile(node.operand), self.compile(node.pattern)
        escape = self.compile(node.escape) if node.escape is not None else (lambda row: None)
        negated, check = node.negated, self.check
        constant = isinstance(node.pattern, ast.Literal) and (
            node.escape is None or isinstance(node.escape, ast.Literal)
        )
        cached = like_pattern(pattern(None), escape(None)) if constant else None

        def like(row: Any) -> Any:
            value = operand(row)
            if is_absent(value):
                return None
            matcher = cached
            if matcher is None:
                pat = pattern(row)
                if is_absent(pat):
                    return None
                matcher = like_pattern(pat, escape(row))
            if not isinstance(value, str):
                value = to_text(value)
            return matcher.matches(value, check) != negated

        return like

    def c_IsCheck(self, node: ast.IsCheck) -> Fn:
        operand = self.compile(node.operand)
        negated = node.negated
        if node.kind == "MISSING":
            return lambda row: (operand(row) is MISSING) != negated
        return lambda row: is_absent(operand(row)) != negated

    def c_Cast(self, node: ast.Cast) -> Fn:
        operand = self.compile(node.operand)
        type_name = node.type_name
        return lambda row: cast(operand(row), type_name)

    def c_Case(self, node: ast.Case) -> Fn:
        subject = self.compile(node.operand) if node.operand is not None else None
        whens = [(self.compile(c), self.compile(v)) for c, v in node.whens]
        default = self.compile(node.default) if node.default is not None else (lambda row: None)

        def case(row: Any) -> Any:
            if subject is None:
                for cond, value in whens:
                    if truthy(cond(row)):
                        return value(row)
            else:
                target = subject(row)
                for cond, value in whens:
                    if equals(target, cond(row)):
                        return value(row)
            return default(row)

        return case

    def c_Call(self, node: ast.Call) -> Fn:
        args = [self.compile(arg) for arg in node.args]
        impl = _FUNCTIONS[node.name]
        if node.name == "COALESCE":

            def coalesce(row: Any) -> Any:
                for arg in args:
                    value = arg(row)
                    if not is_absent(value):
                        return value
                return None

            return coalesce
        return lambda row: impl(*[arg(row) for arg in args])


_COMPARISONS: dict[str, Callable[[int], bool]] = {
    "=": lambda c: c == 0,
    "<>": lambda c: c != 0,
    "<": lambda c: c < 0,
    "<=": lambda c: c <= 0,
    ">": lambda c: c > 0,
    ">=": lambda c: c >= 0,
}


def _div(a: Any, b: Any) -> Any:
    if b == 0:
        raise SelectError("EvaluatorInvalidArguments", "division by zero")
    if isinstance(a, int) and isinstance(b, int):
        q = abs(a) // abs(b)
        return q if (a >= 0) == (b >= 0) else -q
    return a / b


def _mod(a: Any, b: Any) -> Any:
    if b == 0:
        raise SelectError("EvaluatorInvalidArguments", "division by zero")
    if isinstance(a, int) and isinstance(b, int):
        r = abs(a) % abs(b)
        return r if a >= 0 else -r
    try:
        return math.fmod(a, b)
    except ValueError:  # infinity % x
        return math.nan


_ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": _div,
    "%": _mod,
}


def like_pattern(pattern: Any, escape: Any) -> Wildcard:
    """Compile a LIKE pattern (``%``, ``_``, optional one-character ESCAPE) for the shared
    non-backtracking matcher."""
    if not isinstance(pattern, str) or (escape is not None and not isinstance(escape, str)):
        raise SelectError("LikeInvalidInputs", "LIKE pattern and escape must be strings")
    if escape is not None and len(escape) != 1:
        raise SelectError("EvaluatorLikePatternInvalidEscapeSequence", "ESCAPE must be 1 char")
    try:
        return compile_wildcard(pattern, many="%", one="_", escape=escape)
    except ValueError as exc:
        raise SelectError(
            "EvaluatorLikePatternInvalidEscapeSequence", f"bad escape in {pattern!r}"
        ) from exc


# -- scalar functions (NULL/MISSING in -> NULL out unless noted) --------------------------------
def _nullsafe(fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any) -> Any:
        if any(is_absent(a) for a in args):
            return None
        return fn(*args)

    return wrapper


def _text_arg(value: Any, fn: str) -> str:
    if isinstance(value, str):
        return value
    raise SelectError("IncorrectSqlFunctionArgumentType", f"{fn} expects a string")


def _int_arg(value: Any, fn: str) -> int:
    num = to_number(value)
    if num is None:
        raise SelectError("IncorrectSqlFunctionArgumentType", f"{fn} expects a number")
    try:
        return int(num)
    except (OverflowError, ValueError):  # infinity, NaN
        raise SelectError("IllegalSqlFunctionArgument", f"{fn} needs a finite number") from None


def _substring(text: Any, start: Any, length: Any = None) -> Any:
    if is_absent(text) or is_absent(start):
        return None
    s = _text_arg(text, "SUBSTRING")
    begin = _int_arg(start, "SUBSTRING")
    if length is None:
        return s[max(begin, 1) - 1 :]
    if is_absent(length):
        return None
    count = _int_arg(length, "SUBSTRING")
    if count < 0:
        raise SelectError("EvaluatorInvalidArguments", "SUBSTRING length must be >= 0")
    end = begin + count  # exclusive, 1-based (SQL semantics: start may be < 1)
    return s[max(begin, 1) - 1 : max(end, 1) - 1]


def _trim(text: Any, mode: str, chars: Any) -> Any:
    if is_absent(text):
        return None
    s = _text_arg(text, "TRIM")
    strip = " " if chars is None else _text_arg(chars, "TRIM")
    if len(strip) > 8:  # str.strip scans `strip` per character: O(len(s) x len(strip)) in C
        return _strip_set(s, set(strip), mode)
    if mode == "LEADING":
        return s.lstrip(strip)
    if mode == "TRAILING":
        return s.rstrip(strip)
    return s.strip(strip)


def _strip_set(s: str, chars: set[str], mode: str) -> str:
    start, end = 0, len(s)
    if mode != "TRAILING":
        while start < end and s[start] in chars:
            start += 1
    if mode != "LEADING":
        while end > start and s[end - 1] in chars:
            end -= 1
    return s[start:end]


def _ts_arg(value: Any, fn: str) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            return parse_timestamp(value)
        except ValueError:
            pass
    raise SelectError("IncorrectSqlFunctionArgumentType", f"{fn} expects a timestamp")


def _extract(part: str, value: Any) -> Any:
    if is_absent(value):
        return None
    ts = _ts_arg(value, "EXTRACT")
    if part == "TIMEZONE_HOUR" or part == "TIMEZONE_MINUTE":
        minutes = int((ts.utcoffset() or dt.timedelta(0)).total_seconds() // 60)
        sign = -1 if minutes < 0 else 1
        hh, mm = divmod(abs(minutes), 60)
        return sign * (hh if part == "TIMEZONE_HOUR" else mm)
    return getattr(ts, part.lower())


def _date_add(part: str, amount: Any, value: Any) -> Any:
    if is_absent(amount) or is_absent(value):
        return None
    ts = _ts_arg(value, "DATE_ADD")
    n = _int_arg(amount, "DATE_ADD")
    try:
        return _add(part, n, ts)
    except (OverflowError, ValueError):  # past year 9999 (or before year 1)
        raise SelectError(
            "IllegalSqlFunctionArgument", f"DATE_ADD({part}, ...) leaves the timestamp range"
        ) from None


def _add(part: str, n: int, ts: dt.datetime) -> dt.datetime:
    if part in ("YEAR", "MONTH"):
        months = ts.month - 1 + n * (12 if part == "YEAR" else 1)
        year, month = ts.year + months // 12, months % 12 + 1
        import calendar

        day = min(ts.day, calendar.monthrange(year, month)[1])
        return ts.replace(year=year, month=month, day=day)
    unit = {"DAY": "days", "HOUR": "hours", "MINUTE": "minutes", "SECOND": "seconds"}[part]
    return ts + dt.timedelta(**{unit: n})


def _date_diff(part: str, first: Any, second: Any) -> Any:
    if is_absent(first) or is_absent(second):
        return None
    a, b = _ts_arg(first, "DATE_DIFF"), _ts_arg(second, "DATE_DIFF")
    if part in ("YEAR", "MONTH"):
        months = (b.year - a.year) * 12 + (b.month - a.month)
        # a partial month does not count
        if months > 0 and (b.day, b.time()) < (a.day, a.time()):
            months -= 1
        elif months < 0 and (b.day, b.time()) > (a.day, a.time()):
            months += 1
        return int(months / 12) if part == "YEAR" else months
    seconds = (b - a).total_seconds()
    unit = {"DAY": 86400, "HOUR": 3600, "MINUTE": 60, "SECOND": 1}[part]
    return int(seconds / unit)


def _to_string(value: Any, pattern: Any) -> Any:
    if is_absent(value) or is_absent(pattern):
        return None
    return format_pattern(_ts_arg(value, "TO_STRING"), _text_arg(pattern, "TO_STRING"))


def _to_timestamp(value: Any) -> Any:
    if is_absent(value):
        return None
    if isinstance(value, dt.datetime):
        return value
    try:
        return parse_timestamp(_text_arg(value, "TO_TIMESTAMP"))
    except ValueError as exc:
        raise SelectError("ValueParseFailure", f"cannot parse {value!r} as a timestamp") from exc


def _nullif(a: Any, b: Any) -> Any:
    return None if equals(a, b) else a


def _char_length(value: Any) -> int:
    return len(_text_arg(value, "CHAR_LENGTH"))


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "LOWER": _nullsafe(lambda s: _text_arg(s, "LOWER").lower()),
    "UPPER": _nullsafe(lambda s: _text_arg(s, "UPPER").upper()),
    "CHAR_LENGTH": _nullsafe(_char_length),
    "CHARACTER_LENGTH": _nullsafe(_char_length),
    "SUBSTRING": _substring,
    "TRIM": _trim,
    "COALESCE": lambda *args: None,  # compiled specially (lazy)
    "NULLIF": _nullif,
    "UTCNOW": lambda: dt.datetime.now(UTC),
    "EXTRACT": _extract,
    "DATE_ADD": _date_add,
    "DATE_DIFF": _date_diff,
    "TO_STRING": _to_string,
    "TO_TIMESTAMP": _to_timestamp,
}
