"""Evaluator semantics: SQL three-valued logic, NULL vs MISSING, coercion of CSV strings, and the
scalar functions, checked one expression at a time against a record."""

from __future__ import annotations

import datetime as dt

import pytest

from anode.select.ast import MISSING
from anode.select.errors import SelectError
from anode.select.evaluate import CsvHeader, CsvRow, compile_expr
from anode.select.sql_parser import parse

UTC = dt.UTC
RECORD = {"n": 7, "f": 2.5, "s": "Hello", "z": None, "t": "2021-03-04T05:06:07Z", "b": True}


def ev(expr: str, record: object = None) -> object:
    query = parse(f"SELECT {expr} FROM S3Object o")
    return compile_expr(query.items[0].expr)(RECORD if record is None else record)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("o.n + 1", 8),
        ("o.n - o.f", 4.5),
        ("o.n * 2", 14),
        ("o.n / 2", 3),  # integer division truncates
        ("-7 / 2", -3),
        ("o.n % 4", 3),
        ("o.f / 2", 1.25),
        ("o.s || ' world'", "Hello world"),
        ("o.n + o.z", None),
        ("o.n + o.nope", MISSING),
        ("o.n > 5 AND o.f < 3", True),
        ("o.z = 1 AND FALSE", False),  # NULL AND FALSE is FALSE
        ("o.z = 1 OR TRUE", True),  # NULL OR TRUE is TRUE
        ("o.z = 1 OR FALSE", None),
        ("NOT (o.z = 1)", None),
        ("o.z IS NULL", True),
        ("o.nope IS NULL", True),  # MISSING is also NULL
        ("o.nope IS MISSING", True),
        ("o.z IS MISSING", False),
        ("o.n IS NOT NULL", True),
        ("o.n BETWEEN 7 AND 8", True),
        ("o.n NOT BETWEEN 1 AND 6", True),
        ("o.n IN (1, 7)", True),
        ("o.n NOT IN (1, 2)", True),
        ("o.n IN (1, NULL)", None),
        ("o.s LIKE 'H%o'", True),
        ("o.s LIKE 'h%'", False),  # case-sensitive
        ("o.s LIKE '_ello'", True),
        ("'50%' LIKE '50!%' ESCAPE '!'", True),
        ("'50x' LIKE '50!%' ESCAPE '!'", False),
        ("CASE WHEN o.n > 5 THEN 'big' ELSE 'small' END", "big"),
        ("CASE o.n WHEN 1 THEN 'one' WHEN 7 THEN 'seven' END", "seven"),
        ("CASE o.n WHEN 1 THEN 'one' END", None),
        ("COALESCE(o.z, o.nope, 'x')", "x"),
        ("NULLIF(o.n, 7)", None),
        ("NULLIF(o.n, 8)", 7),
        ("LOWER(o.s)", "hello"),
        ("UPPER(o.s)", "HELLO"),
        ("CHAR_LENGTH(o.s)", 5),
        ("CHARACTER_LENGTH('héllo')", 5),
        ("SUBSTRING(o.s, 2)", "ello"),
        ("SUBSTRING(o.s FROM 2 FOR 3)", "ell"),
        ("SUBSTRING(o.s, 0, 2)", "H"),  # SQL: positions before 1 count against the length
        ("TRIM('  x  ')", "x"),
        ("TRIM(LEADING 'x' FROM 'xxaxx')", "axx"),
        ("TRIM(TRAILING FROM '  a  ')", "  a"),
        ("LOWER(o.z)", None),
        ("CAST('12' AS INT)", 12),
        ("CAST(12.7 AS INT)", 12),
        ("CAST('1.5' AS FLOAT)", 1.5),
        ("CAST(o.n AS STRING)", "7"),
        ("CAST('true' AS BOOL)", True),
        ("CAST(o.z AS INT)", None),
        ("EXTRACT(YEAR FROM CAST(o.t AS TIMESTAMP))", 2021),
        ("EXTRACT(MINUTE FROM TO_TIMESTAMP(o.t))", 6),
        ("EXTRACT(TIMEZONE_HOUR FROM `2021-01-01T10:00+05:30`)", 5),
        ("DATE_ADD(day, 30, `2021-02-01T`)", dt.datetime(2021, 3, 3, tzinfo=UTC)),
        ("DATE_ADD(month, 1, `2021-01-31T`)", dt.datetime(2021, 2, 28, tzinfo=UTC)),
        ("DATE_ADD(year, -1, `2020-02-29T`)", dt.datetime(2019, 2, 28, tzinfo=UTC)),
        ("DATE_DIFF(day, `2021-01-01T`, `2021-03-01T`)", 59),
        ("DATE_DIFF(month, `2021-01-15T`, `2021-03-14T`)", 1),
        ("DATE_DIFF(year, `2010-06-01T`, `2021-05-31T`)", 10),
        ("DATE_DIFF(hour, `2021-01-01T00:00Z`, `2021-01-01T05:30Z`)", 5),
        ("TO_STRING(`2021-03-04T05:06:07Z`, 'yyyy-MM-dd HH:mm:ss')", "2021-03-04 05:06:07"),
        ("TO_STRING(`2021-03-04T15:06Z`, 'MMMM d, y h:mm a')", "March 4, 2021 3:06 PM"),
        ("TO_STRING(`2021-03-04T05:06+01:00`, 'yyyyMMdd''T''HHmmXXX')", "20210304T0506+01:00"),
        ("TO_TIMESTAMP('2021-03-04')", dt.datetime(2021, 3, 4, tzinfo=UTC)),
    ],
)
def test_expression_value(expr: str, expected: object):
    assert ev(expr) == expected
    assert type(ev(expr)) is type(expected)


def test_utcnow_is_now():
    value = ev("UTCNOW()")
    assert abs((dt.datetime.now(UTC) - value).total_seconds()) < 5


def test_csv_strings_compare_numerically_with_numbers_and_lexically_with_strings():
    row = CsvRow(["10", "9", "abc"], CsvHeader(["a", "b", "c"]))
    assert ev("o.a > 9", row) is True
    assert ev("o.a > o.b", row) is False  # two strings: lexical order, as SQL says
    assert ev("CAST(o.a AS INT) > CAST(o.b AS INT)", row) is True
    assert ev("o.c > 1", row) is None  # not a number: unknown, so the row does not pass
    assert ev("o._3", row) == "abc"
    assert ev('o."A"', row) is MISSING  # quoted names are case-sensitive
    assert ev("o.A", row) == "10"
    assert ev("o._4", row) is MISSING


def test_nan_compares_as_unknown():
    record = {"x": float("nan")}
    assert ev("o.x = o.x", record) is None
    assert ev("o.x > 1", record) is None
    assert ev("o.x <> 1", record) is None


def test_timestamps_compare_with_ion_literals():
    assert ev("TO_TIMESTAMP(o.t) > `2021-03-04T`") is True
    assert ev("TO_TIMESTAMP(o.t) < `2021T`") is False


@pytest.mark.parametrize(
    ("expr", "code"),
    [
        ("CAST('abc' AS INT)", "CastFailed"),
        ("CAST('x' AS TIMESTAMP)", "CastFailed"),
        ("o.n / 0", "EvaluatorInvalidArguments"),
        ("o.s + 1", "EvaluatorInvalidArguments"),
        ("LOWER(o.n)", "IncorrectSqlFunctionArgumentType"),
        ("TO_TIMESTAMP('yesterday')", "ValueParseFailure"),
        ("o.s LIKE 'a!b' ESCAPE '!'", "EvaluatorLikePatternInvalidEscapeSequence"),
        ("o.s LIKE 'a' ESCAPE '!!'", "EvaluatorLikePatternInvalidEscapeSequence"),
        ("TO_STRING(`2021T`, 'yyyy QQ')", "EvaluatorInvalidTimestampFormatPatternSymbol"),
        ("SUBSTRING(o.s, 1, -1)", "EvaluatorInvalidArguments"),
    ],
)
def test_runtime_errors_have_aws_codes(expr: str, code: str):
    with pytest.raises(SelectError) as info:
        ev(expr)
    assert info.value.code == code
