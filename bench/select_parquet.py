"""S3 Select benchmark (`make bench-select`): a >=1 GiB Parquet object on a real node.

22 columns, 24 row groups, 6M rows by default (BENCH_ROWS to change).

For each selective query (<=1 % of rows, 2 columns) it reports, in the same run, wall time and
bytes the server sent for: S3 Select; a client that GETs the whole object and filters with
pyarrow; a client reading with pyarrow's S3FileSystem (range reads, row-group pruning). It also
times Parquet footer reads through the footer cache, cold versus warm.
"""

from __future__ import annotations

import io
import os
import re
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
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from anode.select import FooterCache

ROWS = int(os.environ.get("BENCH_ROWS", "6000000"))
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
            stdout=log, stderr=subprocess.STDOUT,
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


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="anode-select-bench-"))
    path = root / "big.parquet"
    t = time.perf_counter()
    generate(path)
    size = path.stat().st_size
    md = pq.read_metadata(path)
    print(f"generated {size / 2**30:.2f} GiB, {md.num_columns} columns, "
          f"{md.num_row_groups} row groups, {md.num_rows} rows in {time.perf_counter() - t:.1f}s")
    proc, url, admin = start_node(root)
    try:
        s3 = boto3.client("s3", endpoint_url=url, aws_access_key_id=AK, aws_secret_access_key=SK,
                          region_name="us-east-1",
                          config=Config(s3={"addressing_style": "path"}, read_timeout=600))
        s3.create_bucket(Bucket="bench")
        t = time.perf_counter()
        s3.upload_file(str(path), "bench", "big.parquet",
                       Config=TransferConfig(multipart_chunksize=64 << 20, max_concurrency=4))
        print(f"uploaded in {time.perf_counter() - t:.1f}s")
        fs = pafs.S3FileSystem(access_key=AK, secret_key=SK, endpoint_override=url,
                               scheme="http", region="us-east-1")
        queries = [
            ("random 1%", "SELECT id, f0 FROM S3Object WHERE f1 > 0.99",
             pc.field("f1") > 0.99, ["id", "f0"]),
            ("clustered 0.5%", f"SELECT id, s0 FROM S3Object WHERE id BETWEEN {ROWS // 2} AND "
             f"{ROWS // 2 + ROWS // 200 - 1}",
             (pc.field("id") >= ROWS // 2) & (pc.field("id") <= ROWS // 2 + ROWS // 200 - 1),
             ["id", "s0"]),
        ]
        for name, sql, expr, cols in queries:
            results = {}
            b0, t0 = bytes_out(admin), time.perf_counter()
            resp = s3.select_object_content(
                Bucket="bench", Key="big.parquet", Expression=sql, ExpressionType="SQL",
                InputSerialization={"Parquet": {}}, OutputSerialization={"CSV": {}})
            payload = b"".join(e["Records"]["Payload"] for e in resp["Payload"] if "Records" in e)
            results["s3 select"] = (time.perf_counter() - t0, bytes_out(admin) - b0,
                                    payload.count(b"\n"))
            b0, t0 = bytes_out(admin), time.perf_counter()
            body = s3.get_object(Bucket="bench", Key="big.parquet")["Body"].read()
            table = pq.read_table(io.BytesIO(body), columns=cols, filters=expr)
            results["full GET + pyarrow"] = (time.perf_counter() - t0, bytes_out(admin) - b0,
                                             table.num_rows)
            del body
            b0, t0 = bytes_out(admin), time.perf_counter()
            table = ds.dataset("bench/big.parquet", filesystem=fs, format="parquet").to_table(
                columns=cols, filter=expr)
            results["pyarrow S3FileSystem"] = (time.perf_counter() - t0, bytes_out(admin) - b0,
                                               table.num_rows)
            base_t, base_b = results["full GET + pyarrow"][:2]
            print(f"\n{name}: {sql}")
            for client, (secs, sent, rows) in results.items():
                print(f"  {client:22s} {secs:7.2f}s {sent / 2**20:9.1f} MiB  {rows} rows  "
                      f"speedup x{base_t / secs:.1f}  bytes /{base_b / max(sent, 1):.0f}")
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
        print(f"\nfooter: cold {cold_med * 1e3:.2f} ms, warm {warm * 1e6:.1f} us, "
              f"x{cold_med / warm:.0f} (hits {cache.hits}, misses {cache.misses})")
        b0, t0 = bytes_out(admin), time.perf_counter()
        for _ in range(20):
            s3.select_object_content(
                Bucket="bench", Key="big.parquet",
                Expression="SELECT id FROM S3Object WHERE id < 0", ExpressionType="SQL",
                InputSerialization={"Parquet": {}},
                OutputSerialization={"CSV": {}})["Payload"].close()
        print(f"metadata-only S3 Select (all row groups pruned): "
              f"{(time.perf_counter() - t0) / 20 * 1e3:.1f} ms each")
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
