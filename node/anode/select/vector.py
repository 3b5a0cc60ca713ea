"""Evaluates query expressions over whole Arrow record batches with `pyarrow.compute`.

The per-record evaluator (`evaluate`) defines the semantics; this module only computes the same
results faster, under one rule: a vectorized kernel either returns exactly what the per-record
evaluator would for every row, or gives up. It gives up in two ways:

* `NotVectorizable` at compile time, for a construct it does not handle for this batch layout
  (timestamps, CASE, most functions, nested paths, MISSING columns...): the query runs per
  record for batches of that layout;
* `Uncertain` at run time, when this batch holds a value whose result it cannot promise (an error
  the per-record evaluator raises, such as a non-numeric CAST or a division by zero; an integer
  too large for an exact float comparison; non-ASCII text where Python's notion of whitespace,
  digits or case differs from Arrow's): that batch is evaluated per record, which reproduces the
  exact result or error. Short-circuiting (AND, OR) needs no special care for the same reason.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from . import ast
from .ast import MISSING
from .errors import SelectError
from .evaluate import compile_expr, like_pattern
from .values import to_text

MAX_EXACT = 2**53  # integers beyond this do not all survive a trip through a float
# Python's str.strip() whitespace within ASCII (Arrow's ascii trim lacks \x1c-\x1f)
_WS = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"
_INT = r"^[+-]?[0-9]+$"
_FLOAT = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_SPECIAL = pa.array(["nan", "inf", "+inf", "-inf", "infinity", "-infinity"])
MAX_LIKE_WILDCARDS = 8  # longer patterns run per record, where the CPU budget can stop them
MAX_LIKE_CHARS = 256


class NotVectorizable(Exception):
    """The expression (for this batch layout) needs the per-record evaluator."""


class Uncertain(Exception):
    """This batch holds a value whose result only the per-record evaluator can promise."""


@dataclass
class Frame:
    """One input batch in columnar form.

    ``layout`` keys compiled plans (batches with equal layouts resolve names alike);
    ``resolve(step)`` gives a column index or MISSING; ``rows(batch)`` converts (rows of) the
    batch to the records the per-record evaluator takes (None when the batch holds only some
    of the columns); ``replay()`` gives those records for the whole batch, always.
    """

    batch: pa.RecordBatch
    layout: Hashable
    resolve: Callable[[ast.PathStep], Any]
    rows: Callable[[pa.RecordBatch], list[Any]] | None
    replay: Callable[[], list[Any]]
    exact: bool = True


@dataclass(frozen=True)
class V:
    """A vectorized value: ``data`` is a `pa.Array` (one value per row) or a `pa.Scalar`
    (the same for every row); ``kind`` is str, int, float, bool or null."""

    kind: str
    data: Any


VFn = Callable[[pa.RecordBatch], V]
_NUMERIC = ("int", "float")


def _kind_of(arrow_type: pa.DataType) -> str:
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "str"
    if pa.types.is_integer(arrow_type) and arrow_type != pa.uint64():
        return "int"
    if pa.types.is_float32(arrow_type) or pa.types.is_float64(arrow_type):
        return "float"
    if pa.types.is_boolean(arrow_type):
        return "bool"
    raise NotVectorizable(f"column type {arrow_type}")


_ARROW = {"str": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}


def _const(value: Any) -> V:
    if value is None:
        return V("null", pa.scalar(None, pa.null()))
    if isinstance(value, bool):
        return V("bool", pa.scalar(value))
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise NotVectorizable("integer literal beyond 64 bits")
        return V("int", pa.scalar(value, pa.int64()))
    if isinstance(value, float):
        return V("float", pa.scalar(value, pa.float64()))
    if isinstance(value, str):
        return V("str", pa.scalar(value, pa.string()))
    raise NotVectorizable(f"constant {value!r}")


# -- helpers over arrays or scalars ---------------------------------------------------------------
def _any(mask: Any) -> bool:
    """Whether any row of a boolean array/scalar is true (nulls count as false)."""
    if isinstance(mask, pa.Scalar):
        return mask.as_py() is True
    return pc.any(mask).as_py() is True


def _valid(data: Any) -> Any:
    return pc.is_valid(data)


def _false_if_null(mask: Any) -> Any:
    return pc.fill_null(mask, False)


def _ascii_only(data: Any) -> None:
    """Python's whitespace, digits and case go beyond ASCII: such rows go per record."""
    if _any(pc.invert(_false_if_null(pc.string_is_ascii(data)))):
        raise Uncertain("non-ASCII text")


def _check_int_exact(v: V) -> None:
    """Raise Uncertain when an integer value would not convert to a float exactly."""
    if v.kind != "int":
        return
    if _any(_false_if_null(pc.greater(pc.abs_checked(v.data), MAX_EXACT))):
        raise Uncertain("integer beyond 2**53 against a float")


def _as_float(v: V) -> Any:
    if v.kind == "float":
        return v.data
    _check_int_exact(v)
    return pc.cast(v.data, pa.float64())


def _null_bool() -> V:
    return V("bool", pa.scalar(None, pa.bool_()))


class Numbers:
    """The numeric reading of strings (`values.to_number`): ``value`` is the float, null when
    not a number; ``is_int`` (computed on demand) says the text was an integer."""

    def __init__(self, text: Any, value: Any, is_num: Any) -> None:
        self.text = text
        self.value = value
        self.is_num = is_num
        self._is_int: Any = None

    @property
    def is_int(self) -> Any:
        if self._is_int is None:  # (a failing int64 cast costs 15x this regex)
            self._is_int = _false_if_null(pc.match_substring_regex(self.text, _INT))
        return self._is_int


def read_numbers(data: Any) -> Numbers:
    _ascii_only(data)
    numbers = _all_numbers(data)
    if numbers is None:
        text = pc.utf8_trim(data, _WS)
        is_num = _spelled_numbers(text)
        value = pc.cast(pc.if_else(is_num, text, pa.scalar(None, pa.string())), pa.float64())
        numbers = Numbers(text, value, is_num)
    length = pc.binary_length(numbers.text)
    if _any(pc.and_(numbers.is_num, pc.greater(length, 15))) and (
        _any(pc.and_(numbers.is_int, pc.greater(length, 15)))
        or _any(pc.and_(numbers.is_num, pc.greater(length, 100)))
    ):
        raise Uncertain("number text too long to read exactly here")
    return numbers


def _spelled_numbers(text: Any) -> Any:
    """Where trimmed ``text`` is a number to `values.to_number` (its regexes and names)."""
    is_num = _false_if_null(pc.match_substring_regex(text, _FLOAT))  # integers match it too
    special = _false_if_null(pc.is_in(pc.ascii_lower(text), value_set=_SPECIAL))
    return pc.or_(is_num, special)


def _all_numbers(data: Any) -> Numbers | None:
    """The fast reading of a column of numbers, or None when some text is not one.

    Arrow's float parser takes what `to_number` takes except for some spellings of NaN and
    infinity ("-nan", "+infinity"), so only the non-finite results are checked by regex.
    """
    for trim in (False, True):
        text = pc.utf8_trim(data, _WS) if trim else data
        try:
            value = pc.cast(text, pa.float64())
        except pa.ArrowInvalid:
            continue
        odd = pc.invert(pc.fill_null(pc.is_finite(value), True))
        if _any(odd) and _any(pc.and_(odd, pc.invert(_spelled_numbers(text)))):
            return None
        return Numbers(text, value, _false_if_null(_valid(text)))
    return None


def to_numeric(v: V) -> V:
    """`to_number` for arithmetic: a uniformly int or float value, else Uncertain
    (a non-number raises per record; a batch mixing int and float text keeps per-row types)."""
    if v.kind in _NUMERIC:
        return v
    if v.kind == "null":
        return v
    if v.kind != "str":
        if _any(_valid(v.data)):
            raise Uncertain("not a number")
        return V("null", pa.scalar(None, pa.null()))
    nums = read_numbers(v.data)
    valid = _valid(v.data)
    if _any(pc.and_(valid, pc.is_null(nums.value))):
        raise Uncertain("text that is not a number")
    ints = pc.and_(valid, nums.is_int)
    floats = pc.and_(valid, pc.invert(nums.is_int))
    if _any(ints) and _any(floats):
        raise Uncertain("integer and decimal text mixed")
    if _any(floats):
        return V("float", nums.value)
    return V("int", _parse_ints(nums))


# -- truth ----------------------------------------------------------------------------------------
def truth(v: V) -> Any:
    """`values.truthy` per row (a boolean array or scalar without nulls)."""
    if v.kind == "bool":
        return _false_if_null(v.data)
    if v.kind == "str":
        _ascii_only(v.data)
        low = pc.ascii_lower(pc.utf8_trim(v.data, _WS))
        return _false_if_null(pc.equal(low, "true"))
    if isinstance(v.data, pa.Scalar):
        return pa.scalar(False)
    return pc.and_(_valid(v.data), pa.scalar(False))  # numbers are never TRUE


def absent(v: V) -> Any:
    if v.kind == "null":
        return pa.scalar(True)
    return pc.is_null(v.data)


# -- comparison ----------------------------------------------------------------------------------
_FLIP = {"=": "=", "<>": "<>", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_OPS = {
    "=": pc.equal,
    "<>": pc.not_equal,
    "<": pc.less,
    "<=": pc.less_equal,
    ">": pc.greater,
    ">=": pc.greater_equal,
}
_ZERO_TRUE = {"=": True, "<>": False, "<": False, "<=": True, ">": False, ">=": True}


def _is_nan(v: V) -> Any:
    if v.kind != "float":
        return pa.scalar(False)
    return _false_if_null(pc.is_nan(v.data))


def _null_where(mask: Any, data: Any) -> Any:
    return pc.if_else(mask, pa.scalar(None, pa.bool_()), data)


def _to_bool_text(data: Any) -> Any:
    """`values.to_bool` of text: true/false (trimmed, any case), else null."""
    _ascii_only(data)
    low = pc.ascii_lower(pc.utf8_trim(data, _WS))
    known = _false_if_null(pc.is_in(low, value_set=pa.array(["true", "false"])))
    return pc.if_else(known, pc.equal(low, "true"), pa.scalar(None, pa.bool_()))


def _to_bool_num(v: V) -> Any:
    return pc.not_equal(v.data, 0) if v.kind == "int" else pc.not_equal(v.data, 0.0)


def compare(op: str, a: V, b: V) -> V:
    """``a op b`` with `values.compare` / `values.equals` semantics (a bool V)."""
    if a.kind == "null" or b.kind == "null":
        return _null_bool()
    order = {"bool": 0, "str": 1, "int": 2, "float": 2}
    if order[a.kind] > order[b.kind]:
        a, b, op = b, a, _FLIP[op]
    fn, equality = _OPS[op], op in ("=", "<>")
    if a.kind in _NUMERIC and b.kind in _NUMERIC:
        if a.kind != b.kind:
            x, y = _as_float(a), _as_float(b)
        else:
            x, y = a.data, b.data
        return V("bool", _null_where(pc.or_(_is_nan(a), _is_nan(b)), fn(x, y)))
    if a.kind == "str" and b.kind == "str":
        return V("bool", fn(a.data, b.data))
    if a.kind == "bool" and b.kind == "bool":
        return V("bool", fn(a.data, b.data))
    if a.kind == "str" and b.kind in _NUMERIC:
        x, y = read_numbers(a.data).value, _as_float(b)
        # text meeting a number compares numerically, where NaN compares as equal
        nan = pc.or_(_false_if_null(pc.is_nan(x)), _is_nan(b))
        both = pc.and_(_valid(x), _valid(y))
        result = pc.if_else(pc.and_(nan, both), pa.scalar(_ZERO_TRUE[op]), fn(x, y))
        if equality:  # a non-number: `=` is Python equality (False), unknown against NaN/NULL
            not_number = pc.and_(_valid(a.data), pc.is_null(x))
            unknown = pc.or_(_is_nan(b), pc.is_null(y))
            result = pc.if_else(not_number, _null_where(unknown, pa.scalar(op == "<>")), result)
        return V("bool", result)
    # bool against text or a number: both sides read as booleans
    x = a.data
    y = _to_bool_text(b.data) if b.kind == "str" else _to_bool_num(b)
    result = fn(x, y)
    if equality and b.kind == "str":  # unreadable text: Python equality, i.e. unequal
        unreadable = pc.and_(_false_if_null(_valid(b.data)), pc.is_null(y))
        result = pc.if_else(
            pc.and_(unreadable, _false_if_null(_valid(x))), pa.scalar(op == "<>"), result
        )
    return V("bool", result)


# -- the compiler --------------------------------------------------------------------------
class Compiler:
    """Compiles expressions for one batch layout into ``fn(batch) -> V``."""

    def __init__(self, frame: Frame, check: Callable[[], None]) -> None:
        self.resolve = frame.resolve
        self.exact = frame.exact
        self.schema = frame.batch.schema
        self.check = check

    def compile(self, node: ast.Node) -> VFn:
        if _is_constant(node):
            return self._constant(node)
        method = getattr(self, "c_" + type(node).__name__, None)
        if method is None:
            raise NotVectorizable(type(node).__name__)
        return method(node)

    def _constant(self, node: ast.Node) -> VFn:
        try:
            value = compile_expr(node, check=self.check)(None)
        except SelectError:  # raised per record: let the per-record evaluator raise it

            def fail(batch: pa.RecordBatch) -> V:
                raise Uncertain("constant raises")

            return fail
        if value is MISSING:
            raise NotVectorizable("MISSING")
        result = _const(value)
        return lambda batch: result

    def c_Path(self, node: ast.Path) -> VFn:
        if len(node.steps) != 1 or node.steps[0].name is None:
            raise NotVectorizable("path")
        index = self.resolve(node.steps[0])
        if index is MISSING:
            raise NotVectorizable("missing column")
        kind = _kind_of(self.schema.field(index).type)
        if not self.exact:
            return lambda batch: V(kind, _checked(batch.column(index), kind))
        if kind == "float" and not pa.types.is_float64(self.schema.field(index).type):
            return lambda batch: V(kind, pc.cast(batch.column(index), pa.float64()))
        return lambda batch: V(kind, batch.column(index))

    def c_Unary(self, node: ast.Unary) -> VFn:
        operand = self.compile(node.operand)
        if node.op == "NOT":

            def not_(batch: pa.RecordBatch) -> V:
                v = operand(batch)
                return V("bool", _null_where(absent(v), pc.invert(truth(v))))

            return not_
        negate = node.op == "-"

        def sign(batch: pa.RecordBatch) -> V:
            v = to_numeric(operand(batch))
            if v.kind == "null" or not negate:
                return v
            try:
                return V(v.kind, pc.negate_checked(v.data))
            except pa.ArrowInvalid as exc:
                raise Uncertain("overflow") from exc

        return sign

    def c_Binary(self, node: ast.Binary) -> VFn:
        left, right, op = self.compile(node.left), self.compile(node.right), node.op
        if op == "AND":

            def and_(batch: pa.RecordBatch) -> V:
                a, b = left(batch), right(batch)
                falsy = pc.or_(
                    pc.and_(pc.invert(absent(a)), pc.invert(truth(a))),
                    pc.and_(pc.invert(absent(b)), pc.invert(truth(b))),
                )
                unknown = pc.or_(absent(a), absent(b))
                return V("bool", pc.if_else(falsy, False, _null_where(unknown, pa.scalar(True))))

            return and_
        if op == "OR":

            def or_(batch: pa.RecordBatch) -> V:
                a, b = left(batch), right(batch)
                true = pc.or_(truth(a), truth(b))
                unknown = pc.or_(absent(a), absent(b))
                return V("bool", pc.if_else(true, True, _null_where(unknown, pa.scalar(False))))

            return or_
        if op in _OPS:
            return lambda batch: compare(op, left(batch), right(batch))
        if op == "||":

            def concat(batch: pa.RecordBatch) -> V:
                a, b = left(batch), right(batch)
                if a.kind == "null" or b.kind == "null":
                    return V("null", pa.scalar(None, pa.null()))
                return V("str", pc.binary_join_element_wise(_text(a), _text(b), ""))

            return concat
        return self._arithmetic(op, left, right)

    def _arithmetic(self, op: str, left: VFn, right: VFn) -> VFn:
        def arithmetic(batch: pa.RecordBatch) -> V:
            a, b = to_numeric(left(batch)), to_numeric(right(batch))
            if a.kind == "null" or b.kind == "null":
                return V("null", pa.scalar(None, pa.null()))
            both = pc.and_(_false_if_null(_valid(a.data)), _false_if_null(_valid(b.data)))
            if op in ("/", "%") and _any(pc.and_(both, _false_if_null(pc.equal(b.data, 0)))):
                raise Uncertain("division by zero")
            try:
                if a.kind == "int" and b.kind == "int":
                    x, y = a.data, b.data
                    if op == "%":  # truncated remainder, as C (and `_mod`) computes it
                        q = pc.divide_checked(x, y)
                        return V("int", pc.subtract_checked(x, pc.multiply_checked(q, y)))
                    return V("int", _ARITH_CHECKED[op](x, y))
                if op == "%":
                    raise Uncertain("float remainder")
                x, y = _as_float(a), _as_float(b)
                return V("float", _ARITH[op](x, y))
            except (pa.ArrowInvalid, ZeroDivisionError) as exc:
                raise Uncertain("overflow") from exc

        return arithmetic

    def c_Between(self, node: ast.Between) -> VFn:
        operand, low, high = (self.compile(n) for n in (node.operand, node.low, node.high))
        negated = node.negated

        def between(batch: pa.RecordBatch) -> V:
            v = operand(batch)
            ge, le = compare(">=", v, low(batch)), compare("<=", v, high(batch))
            if ge.kind == "null" or le.kind == "null":
                return _null_bool()
            inside = pc.and_(ge.data, le.data)  # null if either is
            return V("bool", pc.invert(inside) if negated else inside)

        return between

    def c_InList(self, node: ast.InList) -> VFn:
        operand = self.compile(node.operand)
        items = [self.compile(item) for item in node.items]
        negated = node.negated

        def in_list(batch: pa.RecordBatch) -> V:
            v = operand(batch)
            hit: Any = pa.scalar(False)
            unknown: Any = pa.scalar(False)
            for item in items:
                eq = compare("=", v, item(batch))
                hit = pc.or_(hit, _false_if_null(eq.data))
                unknown = pc.or_(unknown, pc.is_null(eq.data))
            result = pc.if_else(hit, not negated, _null_where(unknown, pa.scalar(negated)))
            return V("bool", _null_where(absent(v), result))

        return in_list

    def c_Like(self, node: ast.Like) -> VFn:
        if not isinstance(node.pattern, ast.Literal) or not isinstance(node.pattern.value, str):
            raise NotVectorizable("LIKE with a computed pattern")
        escape = None
        if node.escape is not None:
            if not isinstance(node.escape, ast.Literal):
                raise NotVectorizable("LIKE with a computed escape")
            escape = node.escape.value
        like_pattern(node.pattern.value, escape)  # the per-record compile raised already
        regex = like_regex(node.pattern.value, escape)
        operand, negated = self.compile(node.operand), node.negated

        def like(batch: pa.RecordBatch) -> V:
            v = operand(batch)
            if v.kind == "null":
                return _null_bool()
            hit = pc.match_substring_regex(_text(v), regex)
            return V("bool", pc.invert(hit) if negated else hit)

        return like

    def c_IsCheck(self, node: ast.IsCheck) -> VFn:
        operand, negated = self.compile(node.operand), node.negated
        if node.kind == "MISSING":  # the columns a plan reads are never MISSING

            def is_missing(batch: pa.RecordBatch) -> V:
                operand(batch)  # for its errors, and a JSON column's null check
                return V("bool", pa.scalar(negated))

            return is_missing

        def is_null(batch: pa.RecordBatch) -> V:
            result = absent(operand(batch))
            return V("bool", pc.invert(result) if negated else result)

        return is_null

    def c_Cast(self, node: ast.Cast) -> VFn:
        operand, type_name = self.compile(node.operand), node.type_name
        if type_name not in ("STRING", "INT", "FLOAT", "DECIMAL", "BOOL"):
            raise NotVectorizable(f"CAST AS {type_name}")

        def cast(batch: pa.RecordBatch) -> V:
            v = operand(batch)
            if v.kind == "null":
                return v
            return _cast(v, type_name)

        return cast

    def c_Call(self, node: ast.Call) -> VFn:
        if node.name == "COALESCE":
            args = [self.compile(arg) for arg in node.args]

            def coalesce(batch: pa.RecordBatch) -> V:
                values = [arg(batch) for arg in args]
                kinds = {v.kind for v in values} - {"null"}
                if len(kinds) > 1:
                    raise Uncertain("COALESCE over mixed types")
                if not kinds:
                    return V("null", pa.scalar(None, pa.null()))
                kind = kinds.pop()
                data = [v.data for v in values if v.kind != "null"]
                return V(kind, pc.coalesce(*data) if len(data) > 1 else data[0])

            return coalesce
        if node.name in ("LOWER", "UPPER", "CHAR_LENGTH", "CHARACTER_LENGTH"):
            (arg,) = (self.compile(a) for a in node.args)
            name = node.name

            def text_fn(batch: pa.RecordBatch) -> V:
                v = arg(batch)
                if v.kind == "null":
                    return V("null", pa.scalar(None, pa.null()))
                if v.kind != "str":
                    if _any(_valid(v.data)):
                        raise Uncertain(f"{name} of a non-string")
                    return V("null", pa.scalar(None, pa.null()))
                if name == "LOWER":
                    _ascii_only(v.data)
                    return V("str", pc.ascii_lower(v.data))
                if name == "UPPER":
                    _ascii_only(v.data)
                    return V("str", pc.ascii_upper(v.data))
                return V("int", pc.cast(pc.utf8_length(v.data), pa.int64()))

            return text_fn
        raise NotVectorizable(node.name)


_ARITH_CHECKED = {"+": pc.add_checked, "-": pc.subtract_checked, "*": pc.multiply_checked}
_ARITH_CHECKED["/"] = pc.divide_checked
_ARITH = {"+": pc.add, "-": pc.subtract, "*": pc.multiply, "/": pc.divide}


def _checked(column: pa.Array, kind: str) -> pa.Array:
    """A column of a JSON frame, when its values are what `json.loads` gave."""
    if column.null_count:
        raise Uncertain("JSON null or a missing key")
    if kind == "float":
        column = pc.cast(column, pa.float64())
        if _any(_false_if_null(pc.equal(pc.trunc(column), column))):
            raise Uncertain("a double that may have been written as an integer")
    return column


def _text(v: V) -> Any:
    """`to_text` for LIKE and ||: strings as they are, integers in decimal."""
    if v.kind == "str":
        return v.data
    if v.kind == "int":
        return pc.cast(v.data, pa.string())
    if v.kind == "bool":
        return pc.cast(v.data, pa.string())  # "true" / "false"
    if isinstance(v.data, pa.Scalar):  # floats: Python's repr, not Arrow's formatting
        return pa.scalar(to_text(v.data.as_py()) if v.data.is_valid else None, pa.string())
    return pa.array([None if x is None else to_text(x) for x in v.data.to_pylist()], pa.string())


def _cast(v: V, type_name: str) -> V:
    kind = v.kind
    if type_name == "STRING":
        return V("str", _text(v))
    if type_name == "BOOL":
        if kind == "bool":
            return v
        result = _to_bool_text(v.data) if kind == "str" else _to_bool_num(v)
        if _any(pc.and_(_false_if_null(_valid(v.data)), pc.is_null(result))):
            raise Uncertain("CAST AS BOOL fails")
        return V("bool", result)
    if kind == "bool":
        target = pa.int64() if type_name == "INT" else pa.float64()
        return V("int" if type_name == "INT" else "float", pc.cast(v.data, target))
    if kind == "str":
        nums = read_numbers(v.data)
        if _any(pc.and_(_false_if_null(_valid(v.data)), pc.is_null(nums.value))):
            raise Uncertain("CAST of text that is not a number")
        if type_name == "DECIMAL":
            return to_numeric(v)
        if type_name == "FLOAT":
            return V("float", nums.value)
        # INT: integer text exactly, decimal text truncated
        floats = pc.and_(_false_if_null(_valid(v.data)), pc.invert(nums.is_int))
        if _any(floats):
            return V("int", _truncate(nums.value))
        return V("int", _parse_ints(nums))
    if type_name == "INT":
        return v if kind == "int" else V("int", _truncate(v.data))
    if type_name == "FLOAT":
        return V("float", _as_float(v))
    return v  # DECIMAL keeps ints and floats as they are


def _parse_ints(numbers: Numbers) -> Any:
    """Integer text (at most 15 characters) as int64; Arrow refuses a leading +."""
    text = numbers.text
    if _any(_false_if_null(pc.starts_with(text, "+"))):
        text = pc.replace_substring_regex(text, r"^\+", "")
    return pc.cast(text, pa.int64())


def _truncate(data: Any) -> Any:
    finite = pc.is_finite(data)
    if _any(pc.invert(_false_if_null(pc.or_(finite, pc.is_null(data))))):
        raise Uncertain("CAST of NaN or infinity")
    if _any(_false_if_null(pc.greater_equal(pc.abs(data), 2.0**63))):
        raise Uncertain("integer beyond 64 bits")
    return pc.cast(pc.trunc(data), pa.int64())


def like_regex(pattern: str, escape: str | None) -> str:
    """The RE2 regex (anchored, dot matching newlines) of a LIKE pattern; NotVectorizable when
    it has too many wildcards to match in bounded time per batch."""
    out: list[str] = []
    wildcards = 0
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        i += 1
        if escape is not None and ch == escape:
            ch = pattern[i]
            i += 1
            out.append(_literal(ch))
        elif ch == "%":
            wildcards += 1
            out.append(".*")
        elif ch == "_":
            wildcards += 1
            out.append(".")
        else:
            out.append(_literal(ch))
    if wildcards > MAX_LIKE_WILDCARDS or len(pattern) > MAX_LIKE_CHARS:
        raise NotVectorizable("LIKE pattern too complex")
    return "(?s)^" + "".join(out) + "$"


def _literal(ch: str) -> str:
    return ch if ch.isascii() and ch.isalnum() else f"\\x{{{ord(ch):x}}}"


def _is_constant(node: ast.Node) -> bool:
    for sub in ast.walk(node):
        if isinstance(sub, (ast.Path, ast.Aggregate)):
            return False
        if isinstance(sub, ast.Call) and sub.name == "UTCNOW":
            return False
    return True


def to_python(v: V, n: int) -> list[Any]:
    """The values of ``v`` for ``n`` rows, as the per-record evaluator returns them."""
    if isinstance(v.data, pa.Scalar):
        return [v.data.as_py()] * n
    return v.data.to_pylist()
