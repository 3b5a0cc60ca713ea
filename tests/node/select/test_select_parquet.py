"""Parquet execution: results match pyarrow.compute on the original table, row groups ruled out by
statistics are never read (counted through the RangeSource), only needed columns are fetched, and
footers are parsed once per object version."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from select_helpers import (
    MemorySource,
    botocore_events,
    parquet_bytes,
    raw_response,
    request_xml,
    select,
)

from anode.select import FooterCache
from anode.select.footer_cache import TAIL_WINDOW

N = 20_000
ROW_GROUP = 1_000
PARQUET = "<Parquet/>"


@pytest.fixture(scope="module")
def table() -> pa.Table:
    base = dt.datetime(2024, 1, 1)
    return pa.table(
        {
            "id": pa.array(range(N), pa.int64()),  # sorted: row groups have disjoint id ranges
            "region": [["eu", "us", "ap", None][i % 4] for i in range(N)],
            "amount": [float((i * 7919) % 10_000) / 100 for i in range(N)],
            "ts": pa.array([base + dt.timedelta(minutes=i) for i in range(N)], pa.timestamp("us")),
            **{f"pad{k}": [f"p{k}-{i}" for i in range(N)] for k in range(6)},
        }
    )


@pytest.fixture(scope="module")
def data(table: pa.Table) -> bytes:
    return parquet_bytes(table, row_group_size=ROW_GROUP, compression="snappy")


def rows(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def test_filter_and_projection_match_pyarrow_compute(table: pa.Table, data: bytes):
    out = select(
        request_xml(
            "SELECT s.id, s.amount FROM S3Object s WHERE s.amount > 95.5 AND s.region = 'us'",
            PARQUET,
            "<JSON/>",
        ),
        MemorySource(data),
    )
    mask = pc.and_(pc.greater(table["amount"], 95.5), pc.equal(table["region"], "us"))
    expected = table.filter(mask).select(["id", "amount"]).to_pylist()
    assert len(expected) > 50
    assert rows(out) == expected


def test_same_results_without_pushdown_or_pruning(data: bytes):
    sql = (
        "SELECT id, LOWER(region) AS r FROM S3Object WHERE (id BETWEEN 1500 AND 1600 "
        "OR id IN (7, 19999)) AND region IS NOT NULL AND NOT region LIKE 'a%'"
    )
    body = request_xml(sql, PARQUET, "<JSON/>")
    fast = select(body, MemorySource(data))
    slow = select(body, MemorySource(data), pushdown=False, column_pruning=False)
    assert fast == slow and len(rows(fast)) > 40


def test_row_groups_excluded_by_statistics_are_not_read(data: bytes):
    """WHERE id BETWEEN 5100 AND 5200 touches one of 20 row groups: only its column chunks (plus
    the footer) may be fetched; without pushdown, every row group is read."""
    body = request_xml("SELECT id FROM S3Object WHERE id BETWEEN 5100 AND 5200", PARQUET, "<JSON/>")
    pruned = MemorySource(data)
    out = select(body, pruned)
    assert [r["id"] for r in rows(out)] == list(range(5100, 5201))
    full = MemorySource(data)
    assert select(body, full, pushdown=False) == out

    footer_reads = 1  # one tail read: the footer fits in the first 64 KiB
    assert len(pruned.reads) - footer_reads <= 2  # one row group's id chunk (maybe + dictionary)
    assert len(full.reads) - footer_reads >= 20
    assert pruned.bytes_read < full.bytes_read


def test_timestamp_and_string_predicates_prune_row_groups(table: pa.Table, data: bytes):
    sql = "SELECT id FROM S3Object WHERE ts >= `2024-01-10T00:00Z` AND ts < `2024-01-10T01:00Z`"
    src = MemorySource(data)
    got = [r["id"] for r in rows(select(request_xml(sql, PARQUET, "<JSON/>"), src))]
    start = dt.datetime(2024, 1, 10)
    mask = pc.and_(
        pc.greater_equal(table["ts"], pa.scalar(start, pa.timestamp("us"))),
        pc.less(table["ts"], pa.scalar(start + dt.timedelta(hours=1), pa.timestamp("us"))),
    )
    assert got == table.filter(mask)["id"].to_pylist() and len(got) == 60
    assert len(src.reads) <= 3


def test_only_needed_columns_are_read(data: bytes):
    body = request_xml("SELECT COUNT(id) FROM S3Object", PARQUET)
    pruned, full = MemorySource(data), MemorySource(data)
    assert select(body, pruned) == select(body, full, column_pruning=False) == f"{N}\n"
    assert pruned.bytes_read * 4 < full.bytes_read


def test_aggregates_match_pyarrow_compute(table: pa.Table, data: bytes):
    out = select(
        request_xml(
            "SELECT COUNT(*), COUNT(region), SUM(amount), AVG(amount), MIN(ts), MAX(id) "
            "FROM S3Object WHERE amount < 10",
            PARQUET,
            "<JSON/>",
        ),
        MemorySource(data),
    )
    (got,) = rows(out)
    sub = table.filter(pc.less(table["amount"], 10))
    assert got["_1"] == sub.num_rows
    assert got["_2"] == pc.count(sub["region"]).as_py()
    assert got["_3"] == pytest.approx(pc.sum(sub["amount"]).as_py())
    assert got["_4"] == pytest.approx(pc.mean(sub["amount"]).as_py())
    assert got["_5"] == pc.min(sub["ts"]).as_py().strftime("%Y-%m-%dT%H:%M:%SZ")
    assert got["_6"] == pc.max(sub["id"]).as_py()


def test_select_star_csv_output_and_limit(table: pa.Table, data: bytes):
    out = select(request_xml("SELECT * FROM S3Object s LIMIT 2", PARQUET), MemorySource(data))
    first = out.splitlines()[0].split(",")
    assert first[:4] == ["0", "eu", "0.0", "2024-01-01T00:00:00Z"] and len(first) == 10
    assert len(out.splitlines()) == 2


def test_unknown_column_is_missing_not_an_error(data: bytes):
    out = select(
        request_xml("SELECT id, nope FROM S3Object WHERE id = 3", PARQUET, "<JSON/>"),
        MemorySource(data),
    )
    assert rows(out) == [{"id": 3}]


def test_not_parquet_is_a_parquet_parsing_error():
    from select_helpers import error_code

    body = request_xml("SELECT * FROM S3Object", PARQUET)
    assert error_code(body, MemorySource(b"a,b\n1,2\n" * 10)) == ("ParquetParsingError", False)


# -- footer cache -----------------------------------------------------------------------------
def test_footer_is_parsed_once_per_object_version(data: bytes):
    cache = FooterCache()
    body = request_xml("SELECT id FROM S3Object WHERE id = 1", PARQUET)
    first, second = MemorySource(data, "b/k/etag1"), MemorySource(data, "b/k/etag1")
    select(body, first, footer_cache=cache)
    select(body, second, footer_cache=cache)
    assert (cache.hits, cache.misses) == (1, 1)
    tail_start = len(data) - min(len(data), TAIL_WINDOW)
    assert any(start == tail_start for start, _ in first.reads)
    assert all(start < tail_start for start, _ in second.reads)  # no footer read on a hit
    select(body, MemorySource(data, "b/k/etag2"), footer_cache=cache)  # new version: new entry
    assert cache.misses == 2 and len(cache) == 2


def test_footer_range_gets_are_served_from_memory(data: bytes):
    cache = FooterCache()
    src = MemorySource(data, "b/k/e")
    size = len(data)
    assert cache.cached_range(src.cache_key, size - 8, 8) is None  # nothing cached yet: no I/O
    assert src.reads == []
    assert cache.serve_tail_range(src, size - 8, 8) == data[-8:]  # loads the footer once
    reads = len(src.reads)
    assert cache.cached_range(src.cache_key, size - 8, 8) == data[-8:]
    footer_len = int.from_bytes(data[-8:-4], "little")
    start = size - 8 - footer_len
    assert cache.serve_tail_range(src, start, footer_len) == data[start : start + footer_len]
    assert len(src.reads) == reads  # served from memory
    assert (cache.misses, cache.range_hits) == (1, 3)
    assert cache.cached_range(src.cache_key, 0, 4) is None  # far from the tail
    assert cache.serve_tail_range(MemorySource(b"x" * 100, "b/csv/e"), 90, 10) is None


def test_cache_is_bounded_by_bytes_with_lru_eviction():
    small = parquet_bytes(pa.table({"a": list(range(100))}))
    probe = FooterCache()
    probe.metadata(MemorySource(small, "probe"))
    charge = probe.used_bytes
    cache = FooterCache(max_bytes=charge * 2 + charge // 2)  # room for two entries
    for key in ("v1", "v2"):
        cache.metadata(MemorySource(small, key))
    cache.metadata(MemorySource(small, "v1"))  # v1 is now most recently used
    cache.metadata(MemorySource(small, "v3"))  # evicts v2
    assert cache.used_bytes <= cache.max_bytes and len(cache) == 2
    assert cache.cached_range("v2", len(small) - 4, 4) is None
    assert cache.cached_range("v1", len(small) - 4, 4) == b"PAR1"
    assert (cache.hits, cache.misses, cache.range_hits) == (1, 3, 1)


def test_stats_report_bytes_scanned(data: bytes):
    events = botocore_events(
        raw_response(
            request_xml("SELECT id FROM S3Object WHERE id < 10", PARQUET), MemorySource(data)
        )
    )
    stats = next(e["Stats"]["Details"] for e in events if "Stats" in e)
    assert 0 < stats["BytesScanned"] < len(data) // 10
    assert stats["BytesReturned"] == len("".join(f"{i}\n" for i in range(10)))


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT COUNT(*), SUM(id), AVG(amount), MIN(region), MAX(ts) FROM S3Object",
        "SELECT COUNT(region), MIN(amount) FROM S3Object WHERE region IN ('eu', 'ap')",
        "SELECT COUNT(*), SUM(amount) FROM S3Object WHERE id > 10 AND region IS NULL",
        "SELECT SUM(amount), MAX(region), COUNT(id) FROM S3Object WHERE id < 0",  # empty
        "SELECT COUNT(*) + 1, MAX(id) - MIN(id) FROM S3Object WHERE amount * 2 > 150",  # per record
        "SELECT AVG(id) FROM S3Object WHERE region LIKE 'e%' OR id BETWEEN 5 AND 500",
    ],
)
def test_vectorized_aggregates_equal_the_per_record_evaluator(data: bytes, sql: str):
    body = request_xml(sql, PARQUET, "<JSON/>")
    fast = select(body, MemorySource(data))
    slow = select(body, MemorySource(data), pushdown=False)
    assert json.loads(fast) == pytest.approx(json.loads(slow)) or fast == slow


def test_count_star_reads_no_column_data(data: bytes):
    src = MemorySource(data)
    assert select(request_xml("SELECT COUNT(*) FROM S3Object", PARQUET), src) == f"{N}\n"
    assert src.bytes_read <= TAIL_WINDOW


def test_like_with_backslash_and_nan_keep_sql_semantics():
    """Arrow's LIKE treats backslash as an escape and NaN <> x as true; SQL does neither, so such
    predicates must not be pushed down in a way that changes the result."""
    data = parquet_bytes(pa.table({"s": ["a\\b", "a%", "ab"], "x": [float("nan"), 1.0, 2.0]}))
    for pushdown in (True, False):
        out = select(
            request_xml(r"SELECT s FROM S3Object WHERE s LIKE 'a\%'", PARQUET),
            MemorySource(data),
            pushdown=pushdown,
        )
        assert out == "a\\b\n"
        out = select(
            request_xml("SELECT x FROM S3Object WHERE x <> 1", PARQUET),
            MemorySource(data),
            pushdown=pushdown,
        )
        assert out == "2.0\n"
        out = select(
            request_xml("SELECT COUNT(*) FROM S3Object WHERE x <> 1", PARQUET),
            MemorySource(data),
            pushdown=pushdown,
        )
        assert out == "1\n"
