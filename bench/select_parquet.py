"""S3 Select benchmark (`make bench-select`): a >=1 GiB Parquet object and a CSV object on a node.

Parquet: 22 columns, 24 row groups, 6M rows by default (BENCH_ROWS to change). CSV: the same
kind of columns, BENCH_CSV_MB (default 256) MB with a header line.

For each selective query (<=1 % of rows, 2 columns) it reports, in the same run, wall time,
bytes the server sent and CPU-seconds (server; client + server for pyarrow) for: S3 Select; a
client that GETs the whole object and filters with pyarrow; a client reading with pyarrow's
S3FileSystem (range reads, row-group pruning; for CSV it reads the object whole). A closing table
gives S3 Select against pyarrow S3FileSystem row by row, and CSV scan MB/s (object size / S3
Select wall time). It also times Parquet footer reads through the footer cache, cold vs warm.
"""

from __future__ import annotations

import io
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import boto3
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from anode.select import FooterCache

ROWS = int(os.environ.get("BENCH_ROWS", "6000000"))
CSV_MB = int(os.environ.get("BENCH_CSV_MB", "256"))
ROW_GROUP = 250_000
AK, SK = "bench-root", "bench-root-secret-key"


def generate(path: Path) -> pa.Schema:
    writer = None
    for off in range(0, ROWS, 500_000):
        n = min(500_000, ROWS - off)
        cols: dict[str, pa.Array] = {"id": pa.array(range(off, off + n), pa.int64())}
        for k in range(12):
            cols[f"f{k}"] = pc.random(n, initializer=off * 31 + k)
        for k in range(8):
            num = pc.floor(pc.multiply(pc.random(n, initializer=off * 7 + k), 1e12))
            cols[f"s{k}"] = pc.cast(pc.cast(num, pa.int64()), pa.string())
        num = pc.floor(pc.multiply(pc.random(n, initializer=off), 4))
        cols["cat"] = pc.cast(pc.cast(num, pa.int64()), pa.string())
        table = pa.table(cols)
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema, compression="snappy")
        writer.write_table(table, row_group_size=ROW_GROUP)
    assert writer is not None
    writer.close()
    return pq.read_schema(path)


def generate_csv(path: Path) -> int:
    """About CSV_MB MB of CSV (id, 4 floats, 2 numeric strings, cat); returns the row count."""
    rows, off = 0, 0
    with open(path, "wb") as out:
        while out.tell() < CSV_MB * 10**6:
            n = 200_000
            cols: dict[str, pa.Array] = {"id": pa.array(range(off, off + n), pa.int64())}
            for k in range(4):
                cols[f"f{k}"] = pc.round(pc.random(n, initializer=off * 13 + k), 6)
            for k in range(2):
                num = pc.floor(pc.multiply(pc.random(n, initializer=off * 5 + k), 1e12))
                cols[f"s{k}"] = pc.cast(pc.cast(num, pa.int64()), pa.string())
            num = pc.floor(pc.multiply(pc.random(n, initializer=off + 1), 4))
            cols["cat"] = pc.cast(pc.cast(num, pa.int64()), pa.string())
            buf = io.BytesIO()
            pacsv.write_csv(
                pa.table(cols),
                buf,
                pacsv.WriteOptions(include_header=off == 0, quoting_style="none"),
            )
            out.write(buf.getvalue())
            off += n
            rows += n
    return rows


def proc_cpu(pid: int) -> float:
    """CPU-seconds (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_node(root: Path) -> tuple[subprocess.Popen, str, str]:
    s3_port, admin_port = free_port(), free_port()
    config = root / "node.toml"
    config.write_text(
        f'[node]\nid = "bench"\ns3_addr = "127.0.0.1:{s3_port}"\n'
        f'admin_addr = "127.0.0.1:{admin_port}"\n[storage]\ndata_dir = "{root / "data"}"\n'
        f'[root]\naccess_key = "{AK}"\nsecret_key = "{SK}"\n'
    )
    with open(root / "node.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "anode.cli", "server", "--config", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    admin = f"http://127.0.0.1:{admin_port}"
    for _ in range(600):
        try:
            with urllib.request.urlopen(admin + "/ready", timeout=1):
                break
        except OSError:
            time.sleep(0.05)
    return proc, f"http://127.0.0.1:{s3_port}", admin


def bytes_out(admin: str) -> float:
    text = urllib.request.urlopen(admin + "/metrics").read().decode()
    m = re.search(r"^anode_s3_bytes_out_total ([0-9.e+]+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def run_query(s3, fs, admin: str, pid: int, fmt: str, key: str, sql: str, expr, cols) -> dict:
    """One query three ways: (wall s, bytes sent, rows, CPU-s) per client."""
    results = {}
    b0, c0, t0 = bytes_out(admin), proc_cpu(pid), time.perf_counter()
    serial = {"Parquet": {}} if fmt == "parquet" else {"CSV": {"FileHeaderInfo": "USE"}}
    resp = s3.select_object_content(
        Bucket="bench",
        Key=key,
        Expression=sql,
        ExpressionType="SQL",
        InputSerialization=serial,
        OutputSerialization={"CSV": {}},
    )
    payload = b"".join(e["Records"]["Payload"] for e in resp["Payload"] if "Records" in e)
    results["s3 select"] = (
        time.perf_counter() - t0,
        bytes_out(admin) - b0,
        payload.count(b"\n"),
        proc_cpu(pid) - c0,
    )
    fmt_ds = "parquet" if fmt == "parquet" else ds.CsvFileFormat()
    b0, c0, s0, t0 = bytes_out(admin), proc_cpu(pid), self_cpu(), time.perf_counter()
    body = s3.get_object(Bucket="bench", Key=key)["Body"].read()
    if fmt == "parquet":
        table = pq.read_table(io.BytesIO(body), columns=cols, filters=expr)
    else:
        table = pacsv.read_csv(pa.BufferReader(body)).filter(expr).select(cols)
    results["full GET + pyarrow"] = (
        time.perf_counter() - t0,
        bytes_out(admin) - b0,
        table.num_rows,
        proc_cpu(pid) - c0 + self_cpu() - s0,
    )
    del body
    b0, c0, s0, t0 = bytes_out(admin), proc_cpu(pid), self_cpu(), time.perf_counter()
    table = ds.dataset(f"bench/{key}", filesystem=fs, format=fmt_ds).to_table(
        columns=cols, filter=expr
    )
    results["pyarrow S3FileSystem"] = (
        time.perf_counter() - t0,
        bytes_out(admin) - b0,
        table.num_rows,
        proc_cpu(pid) - c0 + self_cpu() - s0,
    )
    return results


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="anode-select-bench-"))
    path = root / "big.parquet"
    t = time.perf_counter()
    generate(path)
    size = path.stat().st_size
    md = pq.read_metadata(path)
    print(
        f"generated {size / 2**30:.2f} GiB, {md.num_columns} columns, "
        f"{md.num_row_groups} row groups, {md.num_rows} rows in {time.perf_counter() - t:.1f}s"
    )
    proc, url, admin = start_node(root)
    try:
        s3 = boto3.client(
            "s3",
            endpoint_url=url,
            aws_access_key_id=AK,
            aws_secret_access_key=SK,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, read_timeout=600),
        )
        s3.create_bucket(Bucket="bench")
        t = time.perf_counter()
        s3.upload_file(
            str(path),
            "bench",
            "big.parquet",
            Config=TransferConfig(multipart_chunksize=64 << 20, max_concurrency=4),
        )
        print(f"uploaded in {time.perf_counter() - t:.1f}s")
        fs = pafs.S3FileSystem(
            access_key=AK, secret_key=SK, endpoint_override=url, scheme="http", region="us-east-1"
        )
        parquet_queries = [
            (
                "random 1%",
                "SELECT id, f0 FROM S3Object WHERE f1 > 0.99",
                pc.field("f1") > 0.99,
                ["id", "f0"],
            ),
            (
                "clustered 0.5%",
                f"SELECT id, s0 FROM S3Object WHERE id BETWEEN {ROWS // 2} AND "
                f"{ROWS // 2 + ROWS // 200 - 1}",
                (pc.field("id") >= ROWS // 2) & (pc.field("id") <= ROWS // 2 + ROWS // 200 - 1),
                ["id", "s0"],
            ),
        ]
        csv_path = root / "big.csv"
        csv_rows = generate_csv(csv_path)
        csv_size = csv_path.stat().st_size
        s3.upload_file(
            str(csv_path),
            "bench",
            "big.csv",
            Config=TransferConfig(multipart_chunksize=64 << 20, max_concurrency=4),
        )
        csv_path.unlink()
        print(f"CSV: {csv_size / 10**6:.0f} MB, {csv_rows} rows")
        csv_queries = [
            (
                "CSV random 1%",
                "SELECT s.id, s.f0 FROM S3Object s WHERE s.f1 > 0.99",
                pc.field("f1") > 0.99,
                ["id", "f0"],
            ),
            (
                "CSV text = and range",
                "SELECT s.id, s.s0 FROM S3Object s WHERE s.cat = '2' AND s.f2 < 0.02",
                (pc.field("cat") == 2) & (pc.field("f2") < 0.02),
                ["id", "s0"],
            ),
            (
                "CSV COUNT/SUM",
                "SELECT COUNT(*), SUM(s.f3) FROM S3Object s WHERE s.f0 < 0.5",
                pc.field("f0") < 0.5,
                ["f3"],
            ),
        ]
        summary = []
        for fmt, key, queries in (
            ("parquet", "big.parquet", parquet_queries),
            ("csv", "big.csv", csv_queries),
        ):
            for name, sql, expr, cols in queries:
                results = run_query(s3, fs, admin, proc.pid, fmt, key, sql, expr, cols)
                print(f"\n{name}: {sql}")
                base_t, base_b = results["full GET + pyarrow"][:2]
                for client, (secs, sent, rows, cpu) in results.items():
                    print(
                        f"  {client:22s} {secs:7.2f}s {sent / 2**20:9.1f} MiB  {rows} rows  "
                        f"cpu {cpu:6.2f}s  speedup x{base_t / secs:.1f}  "
                        f"bytes /{base_b / max(sent, 1):.0f}"
                    )
                summary.append((name, results["s3 select"], results["pyarrow S3FileSystem"]))
        print(
            "\n| query | S3 Select s | pyarrow S3FileSystem s | pyarrow / S3 Select "
            "| S3 Select CPU-s (server) | pyarrow CPU-s (client+server) |"
        )
        print("|---|---:|---:|---:|---:|---:|")
        for name, ours, theirs in summary:
            print(
                f"| {name} | {ours[0]:.2f} | {theirs[0]:.2f} | x{theirs[0] / ours[0]:.2f} "
                f"| {ours[3]:.2f} | {theirs[3]:.2f} |"
            )
        csv_select = [ours[0] for name, ours, _ in summary if name.startswith("CSV")]
        print(
            f"\nCSV scan: {csv_size / min(csv_select) / 10**6:.0f} MB/s best, "
            f"{csv_size / max(csv_select) / 10**6:.0f} MB/s worst (object size / wall time)"
        )

        # footer cache: cold (first read of a new object version) vs warm
        class FileSource:
            def __init__(self, p: Path, key: str) -> None:
                self.p, self.size, self.cache_key = p, p.stat().st_size, key

            def read_range(self, start: int, length: int) -> bytes:
                with open(self.p, "rb") as f:
                    f.seek(start)
                    return f.read(length)

        cache = FooterCache()
        cold = []
        for i in range(20):
            t0 = time.perf_counter()
            cache.metadata(FileSource(path, f"v{i}"))
            cold.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for _ in range(1000):
            cache.metadata(FileSource(path, "v0"))
        warm = (time.perf_counter() - t0) / 1000
        cold_med = sorted(cold)[len(cold) // 2]
        print(
            f"\nfooter: cold {cold_med * 1e3:.2f} ms, warm {warm * 1e6:.1f} us, "
            f"x{cold_med / warm:.0f} (hits {cache.hits}, misses {cache.misses})"
        )
        t0 = time.perf_counter()
        for _ in range(20):
            s3.select_object_content(
                Bucket="bench",
                Key="big.parquet",
                Expression="SELECT id FROM S3Object WHERE id < 0",
                ExpressionType="SQL",
                InputSerialization={"Parquet": {}},
                OutputSerialization={"CSV": {}},
            )["Payload"].close()
        print(
            f"metadata-only S3 Select (all row groups pruned): "
            f"{(time.perf_counter() - t0) / 20 * 1e3:.1f} ms each"
        )
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
