"""Smoke test of `python -m bench`: the whole benchmark at a tiny scale, then the table is read
back and every cell a target should fill must hold a sane number. Not a performance test — it
fails when the benchmark breaks (a target does not start, a workload errors, a row goes missing,
a number is zero or absurd, a server is left running), not when Anode is slow.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from bench.report import Scale, expected_cells, rows  # noqa: E402
from bench.signing import Signer  # noqa: E402

SCALE = Scale(large_mib=12, part_mib=6, parallel=2, list_keys=600, list_page=250)
ARGS = [
    "--duration",
    "0.6",
    "--warmup",
    "0.1",
    "--concurrency",
    "8",
    "--large-mib",
    "12",
    "--part-mib",
    "6",
    "--parallel",
    "2",
    "--list-keys",
    "600",
    "--list-page",
    "250",
    "--fill-concurrency",
    "16",
    "--profile",
]
TARGETS = ["anode", "anode3", "ceiling", "seaweedfs", "dd"]


def test_signer_matches_botocore() -> None:
    """Byte-for-byte the Authorization botocore computes for the same request."""
    now = dt.datetime(2026, 11, 24, 12, 30, 5, tzinfo=dt.UTC)
    ours = Signer("AKIDEXAMPLE", "secret/key+x").headers(
        "GET", "127.0.0.1:9000", "/bucket/a%20b/c", "list-type=2&max-keys=10&prefix=p%2Fq", now=now
    )
    request = AWSRequest(
        method="GET",
        url="http://127.0.0.1:9000/bucket/a%20b/c?list-type=2&max-keys=10&prefix=p%2Fq",
        headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD"},
    )
    request.context["client_config"] = Config(s3={"payload_signing_enabled": False})
    auth = S3SigV4Auth(Credentials("AKIDEXAMPLE", "secret/key+x"), "s3", "us-east-1")
    with mock.patch("botocore.auth.get_current_datetime", lambda: now.replace(tzinfo=None)):
        auth.add_auth(request)
    assert request.headers["X-Amz-Content-SHA256"] == "UNSIGNED-PAYLOAD"
    assert ours["Authorization"] == request.headers["Authorization"]
    assert ours["x-amz-date"] == request.headers["X-Amz-Date"]


def _cell_number(cell: str) -> float:
    match = re.match(r"^([\d,]+(?:\.\d+)?)", cell.strip())
    assert match, f"not a number: {cell!r}"
    return float(match.group(1).replace(",", ""))


def _table(text: str) -> tuple[list[str], dict[str, list[str]]]:
    """The first markdown table: header cells and label -> cells."""
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    body: dict[str, list[str]] = {}
    for line in lines[1:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] == "ratio":
            break
        body[cells[0]] = cells
    return header, body


def _alive(pid: int) -> bool:
    """True if `pid` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_bench_quick_run(tmp_path: Path) -> None:
    output = tmp_path / "latest.md"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANODE_")}
    proc = subprocess.run(
        [sys.executable, "-m", "bench", *ARGS, "--output", str(output), "--workdir", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,  # a bound, not a speed check: speed is `make bench`'s to measure
        env=env,
    )
    assert proc.returncode == 0, f"bench failed:\n{proc.stderr[-4000:]}\n{proc.stdout[-2000:]}"
    text = output.read_text()
    assert text.strip() in proc.stdout

    header, body = _table(text)
    assert header[1:6] == TARGETS and header[6] == "anode / seaweedfs"
    wanted = expected_cells(SCALE, TARGETS)
    for row in rows(SCALE):
        assert row.label in body, f"missing row {row.label!r}"
        cells = dict(zip(header, body[row.label], strict=True))
        for target in TARGETS:
            cell = cells[target]
            if target not in wanted.get(row.id, set()):
                assert cell == "—", f"{row.label} / {target} should be empty, is {cell!r}"
                continue
            value = _cell_number(cell)
            if row.unit == "count":
                assert value == 0, f"{target}: {value} failed requests"
            elif row.unit == "s":
                assert 0 < value < 30, f"{row.label} / {target}: {value}"
            elif row.unit == "ms":
                assert 0 < value < 10_000, f"{row.label} / {target}: {value}"
            else:
                assert value > 0, f"{row.label} / {target}: {value}"
                limit = 200_000 if row.unit == "ops/s" else 100_000
                assert value < limit, f"{row.label} / {target}: {value} is not believable"
        if row.id.endswith("_p50"):
            p99 = dict(zip(header, body[row.label.replace("p50", "p99")], strict=True))
            for target in wanted[row.id]:
                assert _cell_number(p99[target]) >= _cell_number(cells[target])

    assert "| anode GET 4 KiB ops/s / ceiling |" in text
    assert "FAILED" not in text
    profile = tmp_path / "get-small.svg"
    assert profile.exists() and profile.stat().st_size > 1000, "no py-spy flame graph"
    assert re.search(r"\| `.+` \| [\d.]+ % \| [\d.]+ % \|", text), "no profile summary"
    # Everything the run started (servers, load generator) is gone.
    pids = [int(p) for p in re.findall(r"pid (\d+)", proc.stderr)]
    assert len(pids) == 5, proc.stderr  # four servers and the load generator
    assert [p for p in pids if _alive(p)] == []
    assert not list(tmp_path.glob("anode-bench-*")), "temp data dir left behind"


@pytest.mark.parametrize("bad", [["--only", "nosuch"], ["--part-mib", "1"]])
def test_bench_rejects_bad_flags(bad: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench", *bad], cwd=REPO, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 2 and "error" in proc.stderr
