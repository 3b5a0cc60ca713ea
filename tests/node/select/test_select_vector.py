"""The vectorized evaluator (pyarrow.compute over record batches) against the per-record one.

The per-record evaluator is the reference: over hypothesis-generated data and expressions, both
must give the same records byte for byte, or fail with the same S3 Select error code (NULL and
MISSING semantics, text meeting numbers, CAST, LIKE, BETWEEN, IN, aggregates, LIMIT). Other tests
check that the common queries really run vectorized, and that the CSV blocks Arrow must not
parse (quotes, comments, lone CR, ragged rows, bad UTF-8) still give the per-record result.
"""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from select_helpers import MemorySource, botocore_events, parquet_bytes, raw_response, request_xml

from anode.select import FooterCache, SelectError, parse_request
from anode.select.budget import CpuBudget
from anode.select.engine import _Execution
from anode.select.inputs import ByteCounters
from anode.select.outputs import csv_columns_writer, make_writer
from anode.select.request import CsvOutput

CSV_USE = "<CSV><FileHeaderInfo>USE</FileHeaderInfo></CSV>"
PARQUET = "<Parquet/>"


def outcome(body: bytes, data: bytes, vectorize: bool) -> tuple[str, str]:
    """The records a query returns, or its error code (the engine run synchronously)."""
    try:
        execution = start(body, data, vectorize)
        output = b""
        while True:
            payload, done = execution.step()
            output += payload
            if done:
                return "ok", output.decode()
    except SelectError as exc:
        return "error", exc.code


def start(body: bytes, data: bytes, vectorize: bool = True) -> _Execution:
    return _Execution(
        parse_request(body),
        MemorySource(data),
        FooterCache(),
        ByteCounters(),
        True,
        True,
        CpuBudget(30),
        vectorize,
    )


def run_plain(body: bytes, data: bytes) -> _Execution:
    """Run a query synchronously; the execution tells how its batches were evaluated."""
    execution = start(body, data)
    while not execution.step()[1]:
        pass
    return execution


def test_the_vectorize_flag_reaches_the_event_stream():
    body = request_xml("SELECT s.a FROM S3Object s WHERE s.a > 1", CSV_USE)
    for vectorize in (True, False):
        events = botocore_events(
            raw_response(body, MemorySource(b"a\n1\n2\n"), vectorize=vectorize)
        )
        assert b"".join(e["Records"]["Payload"] for e in events if "Records" in e) == b"2\n"


# ---- generated data ---------------------------------------------------------------------------
TRICKY = [
    "", " ", "1", "-2", "+3", "1.5", "-0.25", "1e3", ".5", "1.", "007", "-0", "0", "nan", "NaN",
    "inf", "-Infinity", "-nan", "+infinity", "1e400", "true", "FALSE", " true ", "abc", "a%b",
    "a_b", "ab", "b", "Z",
    "9007199254740993", "12345678901234567890", "\x1c1", "1\x0b", "x\ty",
]  # fmt: skip
RARE = ["é", "٣", "\u00a0true"]  # non-ASCII: Python's whitespace, digits and case differ
cell = st.one_of(st.sampled_from(TRICKY * 8 + RARE), st.text(alphabet="ab1.-_%e ", max_size=4))
csv_rows = st.lists(st.lists(cell, min_size=3, max_size=3), min_size=0, max_size=12)
odd_line = st.sampled_from(["", '"q,x",1,2', "1,2", "1,2,3,4", "#c,1,2", "a\rb,1,2", "\xff"])


@st.composite
def csv_objects(draw: st.DrawFn) -> bytes:
    lines = ["a,B,c"] + [",".join(row) for row in draw(csv_rows)]
    if draw(st.booleans()):  # sometimes a line only the per-record parser may read
        lines.insert(draw(st.integers(1, len(lines))), draw(odd_line))
    return (
        ("\n".join(lines) + draw(st.sampled_from(["\n", "", "\r\n"])))
        .encode("utf-8", "surrogateescape")
        .replace(b"\xc3\xbf", b"\xff")
    )


CSV_COLUMNS = ["s.a", "s.b", "s.c", "s._2", 's."B"', "s.A"]
PARQUET_COLUMNS = ["i", "f", "t", "b", "i32", "s.T"]
LITERALS = [
    "1", "0", "-3", "2.5", "1e3", "'1'", "'abc'", "'a'", "''", "'true'", "TRUE", "FALSE", "NULL",
    "'nan'", "9007199254740993", "CAST('nan' AS FLOAT)",
]  # fmt: skip
PATTERNS = ["'a%'", "'%b'", "'_'", "'%'", "'a_b'", "'%1%'", "'a!%b' ESCAPE '!'", "''"]
TYPES = ["INT", "FLOAT", "STRING", "BOOL", "DECIMAL"]


def expressions(columns: list[str]) -> st.SearchStrategy[str]:
    leaves = st.one_of(st.sampled_from(columns), st.sampled_from(LITERALS))

    def compound(sub: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        pair = st.tuples(sub, sub)
        return st.one_of(
            st.tuples(sub, st.sampled_from(["=", "<>", "<", "<=", ">", ">="]), sub).map(
                lambda t: f"({t[0]} {t[1]} {t[2]})"
            ),
            st.tuples(sub, st.sampled_from(["+", "-", "*", "/", "%", "||"]), sub).map(
                lambda t: f"({t[0]} {t[1]} {t[2]})"
            ),
            st.tuples(sub, st.sampled_from(["AND", "OR"]), sub).map(
                lambda t: f"({t[0]} {t[1]} {t[2]})"
            ),
            sub.map(lambda e: f"(NOT {e})"),
            sub.map(lambda e: f"(- {e})"),
            st.tuples(sub, st.sampled_from(TYPES)).map(lambda t: f"CAST({t[0]} AS {t[1]})"),
            st.tuples(sub, sub, sub, st.booleans()).map(
                lambda t: f"({t[0]} {'NOT ' if t[3] else ''}BETWEEN {t[1]} AND {t[2]})"
            ),
            st.tuples(sub, st.lists(sub, min_size=1, max_size=3), st.booleans()).map(
                lambda t: f"({t[0]} {'NOT ' if t[2] else ''}IN ({', '.join(t[1])}))"
            ),
            st.tuples(sub, st.sampled_from(PATTERNS), st.booleans()).map(
                lambda t: f"({t[0]} {'NOT ' if t[2] else ''}LIKE {t[1]})"
            ),
            st.tuples(sub, st.sampled_from(["NULL", "NOT NULL", "MISSING", "NOT MISSING"])).map(
                lambda t: f"({t[0]} IS {t[1]})"
            ),
            st.tuples(st.sampled_from(["LOWER", "UPPER", "CHAR_LENGTH"]), sub).map(
                lambda t: f"{t[0]}({t[1]})"
            ),
            pair.map(lambda t: f"COALESCE({t[0]}, {t[1]})"),
        )

    return st.recursive(leaves, compound, max_leaves=6)


@st.composite
def queries(draw: st.DrawFn, expr: st.SearchStrategy[str]) -> str:
    where = f" WHERE {draw(expr)}" if draw(st.booleans()) else ""
    limit = f" LIMIT {draw(st.integers(0, 5))}" if draw(st.integers(0, 3)) == 0 else ""
    shape = draw(st.sampled_from(["items", "star", "aggregates"]))
    if shape == "star":
        return f"SELECT * FROM S3Object s{where}{limit}"
    if shape == "items":
        items = ", ".join(draw(st.lists(expr, min_size=1, max_size=3)))
        return f"SELECT {items} FROM S3Object s{where}{limit}"
    calls = draw(
        st.lists(
            st.tuples(st.sampled_from(["COUNT", "SUM", "AVG", "MIN", "MAX"]), expr), max_size=3
        )
    )
    items = ", ".join(["COUNT(*)"] + [f"{fn}({e})" for fn, e in calls])
    return f"SELECT {items} FROM S3Object s{where}{limit}"


CSV_EXPRESSIONS = expressions(CSV_COLUMNS)
PARQUET_EXPRESSIONS = expressions(PARQUET_COLUMNS)


def assert_agree(sql: str, data: bytes, input_xml: str, output_xml: str) -> None:
    body = request_xml(sql, input_xml, output_xml)
    assert outcome(body, data, True) == outcome(body, data, False), sql


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(queries(CSV_EXPRESSIONS), csv_objects(), st.sampled_from(["<CSV/>", "<JSON/>"]))
@example("SELECT s.a FROM S3Object s WHERE s.a = 'nan' OR s.a > 5", b"a\nnan\n7\nx\n", "<CSV/>")
@example(
    "SELECT SUM(s.a), MIN(s.a), MAX(s.b) FROM S3Object s", b"a,b\n0.1\n1\n-0.0,x\n0.0,y\n", "<CSV/>"
)
def test_csv_vectorized_agrees_with_per_record(sql: str, data: bytes, output: str):
    assert_agree(sql, data, CSV_USE, output)


def parquet_tables() -> st.SearchStrategy[bytes]:
    ints = st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1), st.integers(-5, 5))
    floats = st.one_of(st.none(), st.floats(allow_nan=True), st.sampled_from([0.0, -0.0, 1.5]))
    quoted = ["a,b", 'say "hi"', "two\nlines", "cr\r"]  # the CSV writer must quote these
    texts = st.one_of(st.none(), st.sampled_from(TRICKY * 8 + RARE + quoted))
    row = st.tuples(ints, floats, texts, st.one_of(st.none(), st.booleans()), st.integers(-9, 9))

    def build(rows: list[tuple]) -> bytes:
        cols = list(zip(*rows, strict=True)) if rows else [[]] * 5
        table = pa.table(
            {
                "i": pa.array(cols[0], pa.int64()),
                "f": pa.array(cols[1], pa.float64()),
                "t": pa.array(cols[2], pa.string()),
                "b": pa.array(cols[3], pa.bool_()),
                "i32": pa.array(cols[4], pa.int32()),
            }
        )
        return parquet_bytes(table, row_group_size=4)

    return st.lists(row, max_size=10).map(build)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(queries(PARQUET_EXPRESSIONS), parquet_tables(), st.sampled_from(["<CSV/>", "<JSON/>"]))
def test_parquet_vectorized_agrees_with_per_record(sql: str, data: bytes, output: str):
    assert_agree(sql, data, PARQUET, output)


JSON_LINES = "<JSON><Type>LINES</Type></JSON>"
JSON_COLUMNS = ["s.a", "s.b", "s.A", 's."a"']
JSON_EXPRESSIONS = expressions(JSON_COLUMNS)
json_value = st.one_of(
    st.integers(-5, 5),
    st.integers(-(2**70), 2**70),
    st.sampled_from([1.5, -0.25, 2.0, 1e300, 0.1]),
    st.sampled_from([*TRICKY, "2020-01-01T00:00:00Z"]),
    st.booleans(),
    st.none(),
    st.just({"x": 1}),
    st.just([1, 2]),
)
json_objects = st.dictionaries(st.sampled_from(["a", "b", "A"]), json_value, max_size=3)
odd_json = st.sampled_from(["", "  ", "7", '{"a": 1} {"a": 2}', '{"a": 1, "a": 2}', "{bad", "[1]"])


@st.composite
def json_lines_objects(draw: st.DrawFn) -> bytes:
    uniform = draw(st.booleans())  # the same keys and types on every line: Arrow's good case
    if uniform:
        rows = draw(st.lists(st.tuples(st.integers(-9, 9), st.sampled_from(TRICKY)), max_size=9))
        lines = [json.dumps({"a": i, "b": t}) for i, t in rows]
    else:
        lines = [json.dumps(o) for o in draw(st.lists(json_objects, max_size=9))]
    if draw(st.integers(0, 3)) == 0:
        lines.insert(draw(st.integers(0, len(lines))), draw(odd_json))
    return ("\n".join(lines) + draw(st.sampled_from(["\n", ""]))).encode()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(queries(JSON_EXPRESSIONS), json_lines_objects(), st.sampled_from(["<CSV/>", "<JSON/>"]))
def test_json_lines_vectorized_agrees_with_per_record(sql: str, data: bytes, output: str):
    assert_agree(sql, data, JSON_LINES, output)


def test_json_lines_queries_run_vectorized():
    data = "".join(
        json.dumps({"id": i, "name": f"n{i % 7}", "v": i + 0.5}) + "\n" for i in range(5000)
    )
    body = request_xml(
        "SELECT s.id, s.v FROM S3Object s WHERE s.name = 'n3' AND s.v > 100", JSON_LINES
    )
    execution = run_plain(body, data.encode())
    assert execution.frames > 0 and execution.fallbacks == 0
    assert outcome(body, data.encode(), True) == outcome(body, data.encode(), False)


def test_lines_longer_than_a_block_go_per_record():
    long = "é" * 600_000  # 1.2 MB, 600K characters: within the record limit
    for data in (f"a\n{long}\n1\n", f"a\n{'x' * 1_100_000}\n1\n"):  # the second is over it
        for sql in ("SELECT CHAR_LENGTH(s.a) FROM S3Object s", "SELECT * FROM S3Object s LIMIT 0"):
            assert_agree(sql, data.encode(), CSV_USE, "<CSV/>")
    jdata = json.dumps({"a": long}) + "\n" + json.dumps({"a": "x"}) + "\n"
    assert_agree("SELECT CHAR_LENGTH(s.a) FROM S3Object s", jdata.encode(), JSON_LINES, "<CSV/>")


# ---- the common queries really run vectorized ---------------------------------------------------
WIDE = "id,name,price,qty\n" + "".join(f"{i},n{i % 7},{i * 0.5},{i % 13}\n" for i in range(20_000))


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM S3Object s WHERE s.qty > 10",
        "SELECT s.id, s.name FROM S3Object s WHERE s.name LIKE 'n1%' AND s.price BETWEEN 5 AND 500",
        "SELECT s.id FROM S3Object s WHERE CAST(s.qty AS INT) IN (1, 3) OR s.name = 'n4' LIMIT 7",
        "SELECT COUNT(*), SUM(s.price), MIN(s.qty), MAX(s.name), AVG(s.id) FROM S3Object s "
        "WHERE s.id % 3 = 0",
        "SELECT UPPER(s.name) || '-' || s.id, s.price * 2 FROM S3Object s WHERE s.id < 100",
    ],
)
def test_common_csv_queries_run_vectorized(sql: str):
    body = request_xml(sql, CSV_USE)
    execution = run_plain(body, WIDE.encode())
    assert execution.frames > 0 and execution.fallbacks == 0
    assert outcome(body, WIDE.encode(), True) == outcome(body, WIDE.encode(), False)


def test_a_batch_with_an_error_replays_per_record_and_keeps_earlier_output():
    rows = "".join(f"{i:07d}\n" for i in range(140_000)) + "oops\n"  # > 1 block
    body = request_xml("SELECT CAST(_1 AS INT) FROM S3Object WHERE CAST(_1 AS INT) % 2 = 0")
    execution = start(body, rows.encode())
    output, error = b"", None
    try:
        while True:
            payload, done = execution.step()
            output += payload
            if done:
                break
    except SelectError as exc:
        error = exc.code
    assert error == "CastFailed" and execution.frames >= 1 and execution.fallbacks == 1
    assert output.startswith(b"0\n2\n4\n") and len(output) > 100_000


@pytest.mark.parametrize(
    "data",
    [
        b'a,b\n1,"x,y"\n2,z\n',  # quotes
        b"a,b\n1,x\r2,y\n",  # a lone CR
        b"a,b\n1\n2,y,z\n",  # ragged
        b"a,b\n\xef\xbb\xbf1,x\n",  # a BOM inside
    ],
)
def test_blocks_arrow_must_not_parse_give_the_per_record_result(data: bytes):
    for sql in ("SELECT * FROM S3Object s", "SELECT s.b FROM S3Object s WHERE s.a <> '0'"):
        for output in ("<CSV/>", "<JSON/>"):
            assert_agree(sql, data, CSV_USE, output)


@pytest.mark.parametrize("sql", ["SELECT * FROM S3Object s", "SELECT s.a FROM S3Object s"])
def test_invalid_utf8_is_still_invalid_text_encoding(sql: str):
    """Arrow converts (and checks) only the columns a query names; the block is checked too."""
    body = request_xml(sql, CSV_USE)
    assert outcome(body, b"a,b\n1,x\n2,\xff\n", True) == ("error", "InvalidTextEncoding")


def test_parquet_queries_run_vectorized():
    table = pa.table({"id": range(1000), "v": [i * 0.25 for i in range(1000)], "s": ["x"] * 1000})
    data = parquet_bytes(table, row_group_size=300)
    body = request_xml("SELECT id, v * 2 FROM S3Object WHERE v > 10 AND s = 'x'", PARQUET)
    execution = run_plain(body, data)
    assert execution.frames > 0 and execution.fallbacks == 0
    assert outcome(body, data, True) == outcome(body, data, False)


# ---- the columnar CSV writer against the per-record one ------------------------------------------
csv_outputs = st.builds(
    CsvOutput,
    field_delimiter=st.sampled_from([",", ";", "\t"]),
    record_delimiter=st.sampled_from(["\n", "\r\n", "#"]),
    quote_character=st.sampled_from(['"', "'"]),
    quote_escape_character=st.sampled_from(['"', "\\"]),
    quote_fields=st.sampled_from(["ASNEEDED", "ALWAYS"]),
)
column_values = st.one_of(
    st.lists(st.one_of(st.none(), st.text(alphabet="ab,;'\"#\n\r\t é", max_size=4))),
    st.lists(st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1))),
    st.lists(st.one_of(st.none(), st.floats())),
    st.lists(st.one_of(st.none(), st.booleans())),
)


@settings(max_examples=100, deadline=None)
@given(csv_outputs, st.lists(column_values, min_size=1, max_size=3), st.booleans())
def test_the_columnar_csv_writer_writes_what_the_record_writer_writes(opts, columns, as_list):
    rows = min(len(c) for c in columns)
    columns = [c[:rows] for c in columns]
    expected = "".join(
        make_writer("CSV", opts, "\n")([(f"_{i}", v) for i, v in enumerate(row)])
        for row in zip(*columns, strict=True)
    )
    given_columns = columns if as_list else [pa.array(c) for c in columns]
    assert csv_columns_writer(opts)(given_columns, rows) == expected


@pytest.mark.parametrize(
    "values",
    [
        [0.1] * 7 + [1e16, 1.0, -1e16, 0.3],  # the order of float additions shows
        [float("nan"), 1.0, 2.0],  # NaN first: the per-record MIN/MAX keep it
        [0.0, -0.0, 1.0],  # -0.0 and 0.0 tie: the first one stays
        [-0.0, 0.0, -1.0],
    ],
)
def test_parquet_float_aggregates_fold_as_the_per_record_evaluator(values: list[float]):
    data = parquet_bytes(pa.table({"f": values}), row_group_size=4)
    for sql in ("SELECT SUM(f), AVG(f) FROM S3Object", "SELECT MIN(f), MAX(f) FROM S3Object"):
        assert_agree(sql, data, PARQUET, "<JSON/>")


def test_deeply_nested_json_lines_never_reach_arrows_parser():
    """pyarrow.json recurses per nesting level and crashed the process at 50,000 levels."""
    deep = b'{"a":' * 50_000 + b"1" + b"}" * 50_000
    for data in (deep + b"\n", b'{"a": 1}\n' * 100 + deep + b"\n"):
        body = request_xml("SELECT s.a FROM S3Object s", JSON_LINES)
        assert outcome(body, data, True) == ("error", "JSONParsingError")
