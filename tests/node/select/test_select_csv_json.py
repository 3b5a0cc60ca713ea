"""Execution over CSV and JSON objects: results equal the same query computed independently with
pyarrow.compute on the original table, every input/output option is honoured, and large objects
are streamed in bounded range reads."""

from __future__ import annotations

import asyncio
import bz2
import gzip
import io
import json

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pytest
from select_helpers import (
    MemorySource,
    botocore_events,
    error_code,
    raw_response,
    request_xml,
    select,
)

from anode.select import FooterCache, SelectError, parse_request, run_select
from anode.select.inputs import READ_CHUNK

USE = "<CSV><FileHeaderInfo>USE</FileHeaderInfo></CSV>"


@pytest.fixture(scope="module")
def table() -> pa.Table:
    n = 3000
    return pa.table(
        {
            "id": pa.array(range(n), pa.int64()),
            "name": [f"user{i:05d}" for i in range(n)],
            "price": [round((i * 37) % 1000 / 10, 1) for i in range(n)],
            "cat": [["alpha", "beta", "gamma, inc"][i % 3] for i in range(n)],
        }
    )


@pytest.fixture(scope="module")
def csv_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pacsv.write_csv(table, buf)
    return buf.getvalue()


@pytest.fixture(scope="module")
def jsonl_bytes(table: pa.Table) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in table.to_pylist()).encode()


def read_csv_output(text: str, names: list[str]) -> pa.Table:
    opts = pacsv.ReadOptions(column_names=names)
    return pacsv.read_csv(io.BytesIO(text.encode()), read_options=opts)


def test_csv_filter_and_projection_match_pyarrow_compute(table: pa.Table, csv_bytes: bytes):
    out = select(
        request_xml(
            "SELECT s.id, s.name, s.cat FROM S3Object s "
            "WHERE CAST(s.price AS FLOAT) >= 50.5 AND s.cat <> 'beta'",
            USE,
        ),
        MemorySource(csv_bytes),
    )
    got = read_csv_output(out, ["id", "name", "cat"])
    mask = pc.and_(pc.greater_equal(table["price"], 50.5), pc.not_equal(table["cat"], "beta"))
    expected = table.filter(mask).select(["id", "name", "cat"])
    assert got.num_rows > 100
    assert got.to_pylist() == expected.to_pylist()


def test_csv_aggregates_match_pyarrow_compute(table: pa.Table, csv_bytes: bytes):
    out = select(
        request_xml(
            "SELECT COUNT(*), SUM(CAST(price AS FLOAT)), AVG(CAST(price AS FLOAT)), "
            "MIN(id), MAX(name) FROM S3Object WHERE cat LIKE 'gam%'",
            USE,
            "<JSON/>",
        ),
        MemorySource(csv_bytes),
    )
    row = json.loads(out)
    sub = table.filter(pc.starts_with(table["cat"], "gam"))
    assert row["_1"] == sub.num_rows
    assert row["_2"] == pytest.approx(pc.sum(sub["price"]).as_py())
    assert row["_3"] == pytest.approx(pc.mean(sub["price"]).as_py())
    assert row["_4"] == pc.min(sub["id"]).as_py()
    assert row["_5"] == pc.max(sub["name"]).as_py()


def test_csv_positional_columns_header_ignore_and_limit(csv_bytes: bytes):
    ignore = "<CSV><FileHeaderInfo>IGNORE</FileHeaderInfo></CSV>"
    out = select(
        request_xml("SELECT _2, _1 FROM S3Object LIMIT 3", ignore), MemorySource(csv_bytes)
    )
    assert out == "user00000,0\nuser00001,1\nuser00002,2\n"
    none = select(request_xml("SELECT _1 FROM S3Object LIMIT 2"), MemorySource(csv_bytes))
    assert none == "id\n0\n"


def test_csv_select_star_keeps_quoting_as_needed(csv_bytes: bytes):
    out = select(
        request_xml("SELECT * FROM S3Object s WHERE s.id = '2'", USE), MemorySource(csv_bytes)
    )
    assert out == '2,user00002,7.4,"gamma, inc"\n'


def test_csv_custom_delimiters_quotes_escapes_and_comments():
    data = b"# a comment line;k|v;1|'it\\'s';2|'semi;colon';#another;3|plain"
    opts = (
        "<CSV><FileHeaderInfo>USE</FileHeaderInfo><FieldDelimiter>|</FieldDelimiter>"
        "<RecordDelimiter>;</RecordDelimiter><QuoteCharacter>'</QuoteCharacter>"
        "<QuoteEscapeCharacter>\\</QuoteEscapeCharacter><Comments>#</Comments>"
        "<AllowQuotedRecordDelimiter>TRUE</AllowQuotedRecordDelimiter></CSV>"
    )
    out = select(
        request_xml("SELECT s.v, s.k FROM S3Object s", opts, "<JSON/>"), MemorySource(data)
    )
    assert [json.loads(line) for line in out.splitlines()] == [
        {"v": "it's", "k": "1"},
        {"v": "semi;colon", "k": "2"},
        {"v": "plain", "k": "3"},
    ]


def test_quoted_record_delimiter_splits_records_unless_allowed():
    data = b'a,"x\ny",b\nc,d,e\n'
    allowed = "<CSV><AllowQuotedRecordDelimiter>TRUE</AllowQuotedRecordDelimiter></CSV>"
    out = select(request_xml("SELECT _2 FROM S3Object", allowed, "<JSON/>"), MemorySource(data))
    assert [json.loads(x)["_2"] for x in out.splitlines()] == ["x\ny", "d"]
    # without it, 'a,"x' is a record of its own, with an unterminated quote
    code, _ = error_code(request_xml("SELECT _1 FROM S3Object"), MemorySource(data))
    assert code == "CSVUnescapedQuote"


def test_csv_output_options():
    data = b'a,b\n1,he said "hi"\n'
    out_xml = (
        "<CSV><QuoteFields>ALWAYS</QuoteFields><FieldDelimiter>\t</FieldDelimiter>"
        "<RecordDelimiter>&#13;&#10;</RecordDelimiter><QuoteEscapeCharacter>\\</QuoteEscapeCharacter></CSV>"
    )
    out = select(request_xml("SELECT * FROM S3Object", USE, out_xml), MemorySource(data))
    assert out == '"1"\t"he said \\"hi\\""\r\n'
    out = select(request_xml("SELECT a, b, NULL FROM S3Object", USE), MemorySource(data))
    assert out == '1,"he said ""hi""",\n'


def test_crlf_records_and_utf8_bom():
    data = "\ufeffname,n\r\nzoë,1\r\n".encode()
    out = select(
        request_xml("SELECT name, CHAR_LENGTH(name) FROM S3Object", USE), MemorySource(data)
    )
    assert out == "zoë,3\n"


@pytest.mark.parametrize("compression", ["GZIP", "BZIP2"])
def test_compressed_csv_including_multi_member_streams(
    compression: str, table: pa.Table, csv_bytes: bytes
):
    half = len(csv_bytes) // 2
    cut = csv_bytes.index(b"\n", half) + 1
    pack = gzip.compress if compression == "GZIP" else bz2.compress
    data = pack(csv_bytes[:cut]) + pack(csv_bytes[cut:])  # two members, like `cat a.gz b.gz`
    out = select(
        request_xml("SELECT COUNT(*) FROM S3Object", USE, compression=compression),
        MemorySource(data),
    )
    assert int(out) == table.num_rows


def test_corrupt_compression_fails_before_the_stream_starts(csv_bytes: bytes):
    request = parse_request(request_xml("SELECT * FROM S3Object", USE, compression="GZIP"))

    async def first_message() -> bytes:
        async for message in run_select(
            request, MemorySource(csv_bytes), footer_cache=FooterCache()
        ):
            return message
        return b""

    with pytest.raises(SelectError) as info:
        asyncio.run(first_message())
    assert info.value.code == "InvalidCompressionFormat"


def test_truncated_gzip_is_reported(csv_bytes: bytes):
    data = gzip.compress(csv_bytes)[:-20]
    body = request_xml("SELECT COUNT(*) FROM S3Object", USE, compression="GZIP")
    assert error_code(body, MemorySource(data)) == ("TruncatedInput", False)


def test_error_after_records_were_sent_is_an_error_event():
    rows = "".join(f"{i}\n" for i in range(10_000)) + "oops\n"
    body = request_xml("SELECT CAST(_1 AS INT) FROM S3Object")
    assert error_code(body, MemorySource(rows.encode())) == ("CastFailed", True)
    raw = raw_response(body, MemorySource(rows.encode()))
    from botocore.eventstream import EventStreamBuffer

    buf = EventStreamBuffer()
    buf.add_data(raw)
    kinds = [m.headers.get(":event-type", m.headers.get(":error-code")) for m in buf]
    assert kinds[0] == "Records" and kinds[-1] == "CastFailed" and "End" not in kinds


def test_large_csv_is_read_in_bounded_chunks_and_limit_stops_early():
    line = b"x" * 99 + b"\n"
    data = line * (5 * READ_CHUNK // 100)  # ~5 MiB
    src = MemorySource(data)
    out = select(request_xml("SELECT COUNT(*) FROM S3Object"), src)
    assert int(out) == len(data) // 100
    assert max(length for _, length in src.reads) <= READ_CHUNK
    assert src.bytes_read == len(data)
    limited = MemorySource(data)
    select(request_xml("SELECT * FROM S3Object LIMIT 1"), limited)
    assert limited.bytes_read <= READ_CHUNK


@pytest.mark.parametrize("input_xml", [USE, "<JSON><Type>LINES</Type></JSON>"])
def test_scan_ranges_partition_records_exactly_once(
    input_xml: str, csv_bytes: bytes, jsonl_bytes: bytes
):
    data = csv_bytes if input_xml == USE else jsonl_bytes
    step = 7919  # not aligned with records
    ids: list[int] = []
    for start in range(0, len(data), step):
        end = min(start + step - 1, len(data) - 1)
        extra = f"<ScanRange><Start>{start}</Start><End>{end}</End></ScanRange>"
        out = select(
            request_xml("SELECT s.id FROM S3Object s", input_xml, "<JSON/>", extra=extra),
            MemorySource(data),
        )
        ids += [int(json.loads(x)["id"]) for x in out.splitlines()]
    assert ids == list(range(3000))


def test_scan_range_end_only_means_the_last_bytes(jsonl_bytes: bytes):
    extra = "<ScanRange><End>200</End></ScanRange>"
    out = select(
        request_xml(
            "SELECT s.id FROM S3Object s", "<JSON><Type>LINES</Type></JSON>", "<JSON/>", extra=extra
        ),
        MemorySource(jsonl_bytes),
    )
    ids = [json.loads(x)["id"] for x in out.splitlines()]
    assert ids and ids[-1] == 2999 and len(ids) <= 4


def test_json_lines_filter_matches_pyarrow_compute(table: pa.Table, jsonl_bytes: bytes):
    out = select(
        request_xml(
            "SELECT s.name, s.price * 2 AS double FROM S3Object s WHERE s.price BETWEEN 10 AND 12",
            "<JSON><Type>LINES</Type></JSON>",
            "<JSON/>",
        ),
        MemorySource(jsonl_bytes),
    )
    got = [json.loads(x) for x in out.splitlines()]
    sub = table.filter(
        pc.and_(pc.greater_equal(table["price"], 10), pc.less_equal(table["price"], 12))
    )
    assert [g["name"] for g in got] == sub["name"].to_pylist()
    assert [g["double"] for g in got] == pytest.approx(pc.multiply(sub["price"], 2).to_pylist())


def test_json_document_nested_paths_missing_fields_and_arrays():
    doc = (
        b'{"store": {"items": [{"n": "a", "q": 1, "tags": ["x"]}, {"n": "b"}]}}\n'
        b'{\n  "store": {"items": [{"n": "c", "q": 3}]}\n}'
    )
    out = select(
        request_xml(
            "SELECT i.n, i.q, i.tags[0] AS t FROM S3Object[*].store.items[*] i "
            "WHERE i.q IS NOT MISSING",
            "<JSON><Type>DOCUMENT</Type></JSON>",
            "<JSON/>",
        ),
        MemorySource(doc),
    )
    assert [json.loads(x) for x in out.splitlines()] == [
        {"n": "a", "q": 1, "t": "x"},
        {"n": "c", "q": 3},  # MISSING values are omitted from JSON output
    ]
    out = select(
        request_xml("SELECT COUNT(*) FROM S3Object[*].store.items[*]", "<JSON/>"), MemorySource(doc)
    )
    assert out == "3\n"


def test_json_select_star_and_scalar_records():
    doc = b'{"a": 1, "b": {"c": [1, 2]}}\n{"a": 2}\n'
    out = select(
        request_xml(
            "SELECT * FROM S3Object s WHERE s.a = 1", "<JSON><Type>LINES</Type></JSON>", "<JSON/>"
        ),
        MemorySource(doc),
    )
    assert json.loads(out) == {"a": 1, "b": {"c": [1, 2]}}
    out = select(
        request_xml("SELECT s.a + 1 FROM S3Object s", "<JSON><Type>LINES</Type></JSON>", "<CSV/>"),
        MemorySource(doc),
    )
    assert out == "2\n3\n"


@pytest.mark.parametrize(
    ("data", "json_type", "code"),
    [
        (b'{"a": 1}\n{"a": \n', "LINES", "JSONParsingError"),
        (b'{"a": 1} {"a" 2}', "DOCUMENT", "JSONParsingError"),
        (b'{"a": "\xff\xfe"}', "DOCUMENT", "InvalidTextEncoding"),
    ],
)
def test_bad_json_is_reported_with_its_code(data: bytes, json_type: str, code: str):
    body = request_xml(
        "SELECT * FROM S3Object", f"<JSON><Type>{json_type}</Type></JSON>", "<JSON/>"
    )
    request = parse_request(body)

    async def drain() -> None:
        async for _ in run_select(request, MemorySource(data), footer_cache=FooterCache()):
            pass

    with pytest.raises(SelectError) as info:
        asyncio.run(drain())
    assert info.value.code == code


def test_progress_events_when_requested(csv_bytes: bytes):
    extra = "<RequestProgress><Enabled>TRUE</Enabled></RequestProgress>"
    events = botocore_events(
        raw_response(
            request_xml("SELECT COUNT(*) FROM S3Object", USE, extra=extra), MemorySource(csv_bytes)
        )
    )
    progress = [e["Progress"]["Details"] for e in events if "Progress" in e]
    stats = next(e["Stats"]["Details"] for e in events if "Stats" in e)
    assert progress and progress[-1]["BytesScanned"] == len(csv_bytes)
    assert stats["BytesScanned"] == stats["BytesProcessed"] == len(csv_bytes)
    assert stats["BytesReturned"] == len(b"3000\n")


def test_wide_records_are_batched_by_bytes_not_only_by_count():
    """4096 records of 64 KiB would be 256 MiB in one batch; batches stay near BATCH_BYTES."""
    from anode.select.inputs import BATCH_BYTES, ByteCounters, csv_batches

    row = ("y" * 65_536 + "\n").encode()
    data = row * 400
    request = parse_request(request_xml("SELECT * FROM S3Object"))
    sizes = [len(b) for b in csv_batches(request, MemorySource(data), ByteCounters())]
    assert sum(sizes) == 400
    assert max(sizes) * len(row) <= BATCH_BYTES + 2 * READ_CHUNK
