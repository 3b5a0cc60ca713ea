"""S3 checks run inside the cluster by the e2e (image e2e/client/Dockerfile), with the credentials
a Bucket's Secret puts in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_ENDPOINT_URL, AWS_REGION, BUCKET_NAME). Each mode prints JSON lines; the last one is the
result the e2e asserts on. Exit status 0 only when every check passed.

  roundtrip --other B...   boto3 and aws CLI round trips in BUCKET_NAME; every bucket B must
                           refuse these credentials (403 AccessDenied) for list, put and get
  writer --stop-file F     PUT + read-back objects in a loop until F exists, then re-read all
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

RETRIES = 10  # "standard" mode: 5xx, throttling and connection errors, with backoff


def client():
    config = Config(
        retries={"max_attempts": RETRIES, "mode": "standard"},
        connect_timeout=5,
        read_timeout=30,
        s3={"addressing_style": "path"},
    )
    return boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"], config=config)


def emit(**fields) -> None:
    print(json.dumps(fields, sort_keys=True), flush=True)


def error_code(call) -> str:
    try:
        call()
    except ClientError as e:
        return f"{e.response['ResponseMetadata']['HTTPStatusCode']} {e.response['Error']['Code']}"
    return "allowed"


def roundtrip(others: list[str]) -> bool:
    s3, bucket = client(), os.environ["BUCKET_NAME"]
    body = os.urandom(3 * 1024 * 1024 + 17)
    s3.put_object(Bucket=bucket, Key="pod/boto3.bin", Body=body)
    got = s3.get_object(Bucket=bucket, Key="pod/boto3.bin")["Body"].read()
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp, "in.txt"), Path(tmp, "out.txt")
        src.write_bytes(b"hello from a pod, through the Service\n" * 1000)
        aws = ["aws", "--endpoint-url", os.environ["AWS_ENDPOINT_URL"], "s3"]
        subprocess.run([*aws, "cp", str(src), f"s3://{bucket}/pod/cli.txt"], check=True)
        subprocess.run([*aws, "cp", f"s3://{bucket}/pod/cli.txt", str(dst)], check=True)
        cli_equal = src.read_bytes() == dst.read_bytes()
    refused = {}
    for other in others:
        refused[other] = {
            "list": error_code(lambda b=other: s3.list_objects_v2(Bucket=b)),
            "put": error_code(lambda b=other: s3.put_object(Bucket=b, Key="intruder", Body=b"x")),
            "get": error_code(lambda b=other: s3.get_object(Bucket=b, Key="anything")),
        }
    ok = (
        got == body
        and cli_equal
        and "pod/boto3.bin" in keys
        and all(v == "403 AccessDenied" for r in refused.values() for v in r.values())
    )
    emit(
        result="roundtrip",
        ok=ok,
        endpoint=os.environ["AWS_ENDPOINT_URL"],
        bucket=bucket,
        boto3_equal=got == body,
        cli_equal=cli_equal,
        listed=keys,
        refused=refused,
    )
    return ok


def writer(stop_file: Path, prefix: str, max_seconds: float) -> bool:
    s3, bucket = client(), os.environ["BUCKET_NAME"]
    digests: dict[str, str] = {}
    failures: list[str] = []
    slowest = 0.0
    start = time.monotonic()
    i = 0
    while not stop_file.exists() and time.monotonic() - start < max_seconds:
        key = f"{prefix}/{i:05d}"
        body = random.randbytes(random.randint(1, 256) * 1024)
        t0 = time.monotonic()
        try:
            s3.put_object(Bucket=bucket, Key=key, Body=body)
            digests[key] = hashlib.sha256(body).hexdigest()
            got = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            if got != body:
                failures.append(f"{key}: read back different bytes")
        except (ClientError, BotoCoreError) as e:
            failures.append(f"{key}: {e}")
        slowest = max(slowest, time.monotonic() - t0)
        i += 1
        if i % 20 == 0:
            emit(progress=i, acknowledged=len(digests), failures=len(failures))
        time.sleep(0.05)
    lost = []
    for key, digest in digests.items():
        try:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            if hashlib.sha256(body).hexdigest() != digest:
                lost.append(f"{key}: different bytes")
        except (ClientError, BotoCoreError) as e:
            lost.append(f"{key}: {e}")
    ok = not failures and not lost and len(digests) > 0
    emit(
        result="writer",
        ok=ok,
        attempted=i,
        acknowledged=len(digests),
        failures=failures[:20],
        lost=lost[:20],
        slowest_put_get_s=round(slowest, 2),
        seconds=round(time.monotonic() - start, 1),
    )
    return ok


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    rt = sub.add_parser("roundtrip")
    rt.add_argument("--other", action="append", default=[])
    wr = sub.add_parser("writer")
    wr.add_argument("--stop-file", type=Path, default=Path("/tmp/stop"))
    wr.add_argument("--prefix", default="writer")
    wr.add_argument("--max-seconds", type=float, default=900)
    args = parser.parse_args()
    if args.mode == "roundtrip":
        ok = roundtrip(args.other)
    else:
        ok = writer(args.stop_file, args.prefix, args.max_seconds)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
