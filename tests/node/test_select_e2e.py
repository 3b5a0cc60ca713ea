"""S3 Select end to end: boto3's select_object_content against a real `anode server` process,
results compared with the same query computed by pyarrow.compute on the original data."""

from __future__ import annotations

import io
import json
import urllib.request

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError, EventStreamError
from s3util import error_code


@pytest.fixture(scope="module")
def s3(node):
    return node.client()


@pytest.fixture(scope="module")
def table() -> pa.Table:
    n = 50_000
    return pa.table(
        {
            "id": pa.array(range(n), pa.int64()),
            "city": [["Paris", "Lyon", "Nice", "Lille"][i % 4] for i in range(n)],
            "amount": [float((i * 7919) % 100_000) / 100 for i in range(n)],
        }
    )


@pytest.fixture(scope="module")
def bucket(s3, table: pa.Table) -> str:
    s3.create_bucket(Bucket="select-e2e")
    csv = io.BytesIO()
    pacsv.write_csv(table, csv)
    s3.put_object(Bucket="select-e2e", Key="data.csv", Body=csv.getvalue())
    lines = "".join(json.dumps(r) + "\n" for r in table.to_pylist()).encode()
    s3.put_object(Bucket="select-e2e", Key="data.jsonl", Body=lines)
    pq_buf = io.BytesIO()
    pq.write_table(table, pq_buf, row_group_size=5_000)
    s3.put_object(Bucket="select-e2e", Key="data.parquet", Body=pq_buf.getvalue())
    return "select-e2e"


def run(
    s3, bucket: str, key: str, sql: str, inp: dict, out: dict | None = None
) -> tuple[str, dict]:
    response = s3.select_object_content(
        Bucket=bucket,
        Key=key,
        Expression=sql,
        ExpressionType="SQL",
        InputSerialization=inp,
        OutputSerialization=out or {"JSON": {}},
        RequestProgress={"Enabled": True},
    )
    records, stats, ended = [], {}, False
    for event in response["Payload"]:
        if "Records" in event:
            records.append(event["Records"]["Payload"])
        elif "Stats" in event:
            stats = event["Stats"]["Details"]
        elif "End" in event:
            ended = True
    assert ended
    return b"".join(records).decode(), stats


def expected_ids(table: pa.Table) -> list[int]:
    mask = pc.and_(pc.equal(table["city"], "Nice"), pc.greater(table["amount"], 990))
    return table.filter(mask)["id"].to_pylist()


@pytest.mark.parametrize(
    ("key", "inp"),
    [
        ("data.csv", {"CSV": {"FileHeaderInfo": "USE"}}),
        ("data.jsonl", {"JSON": {"Type": "LINES"}}),
        ("data.parquet", {"Parquet": {}}),
    ],
)
def test_select_matches_pyarrow_compute(s3, bucket, table, key, inp):
    sql = "SELECT s.id FROM S3Object s WHERE s.city = 'Nice' AND CAST(s.amount AS FLOAT) > 990"
    out, stats = run(s3, bucket, key, sql, inp)
    ids = [int(json.loads(line)["id"]) for line in out.splitlines()]
    assert ids == expected_ids(table) and len(ids) > 50
    assert stats["BytesReturned"] == len(out.encode())


def test_parquet_select_reads_a_fraction_of_the_object(s3, bucket):
    size = s3.head_object(Bucket=bucket, Key="data.parquet")["ContentLength"]
    out, stats = run(
        s3,
        bucket,
        "data.parquet",
        "SELECT id FROM S3Object WHERE id BETWEEN 100 AND 104",
        {"Parquet": {}},
    )
    assert [json.loads(x)["id"] for x in out.splitlines()] == [100, 101, 102, 103, 104]
    assert stats["BytesScanned"] < size // 10


def test_parquet_object_spanning_many_chunks(s3, bucket):
    """A Parquet object larger than the 4 MiB chunk size: reads cross chunk boundaries."""
    n = 400_000
    big = pa.table({f"c{k}": pc.random(n, initializer=k) for k in range(3)})
    buf = io.BytesIO()
    pq.write_table(big, buf, row_group_size=50_000, compression="none")
    assert buf.tell() > 9 * 1024 * 1024
    s3.put_object(Bucket=bucket, Key="big.parquet", Body=buf.getvalue())
    out, stats = run(
        s3, bucket, "big.parquet", "SELECT c0, c2 FROM S3Object WHERE c1 > 0.995", {"Parquet": {}}
    )
    got = [(r["c0"], r["c2"]) for r in map(json.loads, out.splitlines())]
    sub = big.filter(pc.greater(big["c1"], 0.995))
    assert got == list(zip(sub["c0"].to_pylist(), sub["c2"].to_pylist(), strict=True))
    assert len(got) > 1000 and stats["BytesScanned"] < buf.tell()


def test_csv_output_and_aggregates(s3, bucket, table):
    out, _ = run(
        s3,
        bucket,
        "data.csv",
        "SELECT COUNT(*), MAX(CAST(amount AS FLOAT)) FROM S3Object WHERE city = 'Lyon'",
        {"CSV": {"FileHeaderInfo": "USE"}},
        {"CSV": {}},
    )
    count, top = out.strip().split(",")
    lyon = table.filter(pc.equal(table["city"], "Lyon"))
    assert int(count) == lyon.num_rows
    assert float(top) == pc.max(lyon["amount"]).as_py()


def test_gzip_csv_scan_range_and_crlf_output(s3, bucket, table):
    import gzip

    csv = io.BytesIO()
    pacsv.write_csv(table.slice(0, 1000), csv)
    s3.put_object(Bucket=bucket, Key="small.csv.gz", Body=gzip.compress(csv.getvalue()))
    out, _ = run(
        s3,
        bucket,
        "small.csv.gz",
        "SELECT s.id, s.city FROM S3Object s WHERE s.id IN ('3', '4')",
        {"CSV": {"FileHeaderInfo": "USE"}, "CompressionType": "GZIP"},
        {"CSV": {"RecordDelimiter": "\r\n", "QuoteFields": "ALWAYS"}},
    )
    assert out == '"3","Lille"\r\n"4","Paris"\r\n'
    response = s3.select_object_content(
        Bucket=bucket,
        Key="data.jsonl",
        Expression="SELECT s.id FROM S3Object s",
        ExpressionType="SQL",
        InputSerialization={"JSON": {"Type": "LINES"}},
        OutputSerialization={"JSON": {}},
        ScanRange={"Start": 1000, "End": 2000},
    )
    payload = b"".join(e["Records"]["Payload"] for e in response["Payload"] if "Records" in e)
    ids = [json.loads(x)["id"] for x in payload.splitlines()]
    lines = [json.dumps(r) + "\n" for r in table.slice(0, 100).to_pylist()]
    starts = [sum(len(x) for x in lines[:i]) for i in range(100)]
    assert ids == [i for i, start in enumerate(starts) if 1000 <= start <= 2000]


def test_bad_sql_is_an_xml_error_with_the_select_code(s3, bucket):
    with pytest.raises(ClientError) as info:
        run(s3, bucket, "data.csv", "SELECT FROM S3Object", {"CSV": {}})
    assert error_code(info) == ("ParseEmptySelect", 400)


def test_missing_object_is_no_such_key(s3, bucket):
    with pytest.raises(ClientError) as info:
        run(s3, bucket, "nope.csv", "SELECT * FROM S3Object", {"CSV": {}})
    assert error_code(info) == ("NoSuchKey", 404)


def test_error_during_the_stream_is_an_event_stream_error(s3, bucket):
    # the first 20000 records cast fine (and are streamed); then 'Paris' does not
    sql = "SELECT CASE WHEN CAST(_1 AS INT) < 20000 THEN _1 ELSE CAST(_2 AS INT) END FROM S3Object"
    with pytest.raises(EventStreamError) as info:
        run(s3, bucket, "data.csv", sql, {"CSV": {"FileHeaderInfo": "IGNORE"}})
    assert info.value.response["Error"]["Code"] == "CastFailed"


def test_error_in_the_first_batch_is_an_xml_error(s3, bucket):
    with pytest.raises(ClientError) as info:
        sql = "SELECT CAST(_2 AS INT) FROM S3Object"
        run(s3, bucket, "data.csv", sql, {"CSV": {"FileHeaderInfo": "IGNORE"}})
    assert error_code(info) == ("CastFailed", 400)


def test_parquet_footer_range_gets_are_served_from_the_cache(node, s3, bucket, table):
    from prometheus_client.parser import text_string_to_metric_families

    def range_hits() -> float:
        with urllib.request.urlopen(node.admin_url + "/metrics") as r:
            text = r.read().decode()
        return next(s.value for f in text_string_to_metric_families(text) for s in f.samples
                    if s.name == "anode_parquet_footer_range_hits_total")

    from anode_procs import s3_client

    s3 = s3_client(node.s3_url)  # the node whose metrics we read (a cluster has several)
    s3.copy_object(Bucket=bucket, Key="footer.parquet", CopySource=f"{bucket}/data.parquet")
    size = s3.head_object(Bucket=bucket, Key="footer.parquet")["ContentLength"]
    before = range_hits()
    tail = s3.get_object(Bucket=bucket, Key="footer.parquet", Range="bytes=-8")["Body"].read()
    assert tail[-4:] == b"PAR1"
    again = s3.get_object(Bucket=bucket, Key="footer.parquet",
                          Range=f"bytes={size - 1000}-{size - 1}")["Body"].read()
    assert again[-8:] == tail
    assert range_hits() >= before + 1
    # pyarrow reading through plain GETs gets the same table back
    import pyarrow.fs as pafs

    fs = pafs.S3FileSystem(access_key=node.access_key, secret_key=node.secret_key,
                           endpoint_override=node.s3_url, scheme="http", region="us-east-1")
    assert pq.read_table(f"{bucket}/footer.parquet", filesystem=fs).equals(table)
