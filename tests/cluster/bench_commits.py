"""Metadata commits/s through RaftConsensus on a local 3-node cluster (not run in CI).

    .venv/bin/python tests/cluster/bench_commits.py [--seconds 5] [--failovers 3]

Each proposal is one PutObject; "ops/s" counts acknowledged proposals (committed on a majority,
fsynced, applied on the proposing member). "in-process" rows run the proposers inside a member
(no HTTP per proposal: the consensus layer itself); "HTTP" rows send each proposal to the
control API of a member, round robin over all three (followers forward to
the leader). Prints a table with the commands per log entry (batching), and optionally leader
failover times after SIGKILL.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).parent))

from harness import Cluster, bucket_cmd, put_cmd


async def run(
    cluster: Cluster, concurrency: int, seconds: float, tag: str, barrier: bool = False
) -> dict[str, float]:
    urls = [m.url for m in cluster.alive()]
    latencies: list[float] = []
    errors = 0
    stop = time.monotonic() + seconds

    async def worker(i: int, session: aiohttp.ClientSession) -> None:
        nonlocal errors
        n = 0
        while time.monotonic() < stop:
            url = urls[(i + n) % len(urls)]
            started = time.monotonic()
            if barrier:
                request = session.post(url + "/barrier", json={})
            else:
                body = {"commands": [put_cmd("bench", f"{tag}-{i}-{n}", "v" * 32)]}
                request = session.post(url + "/propose", json=body)
            async with request as resp:
                await resp.read()
                if resp.status == 200:
                    latencies.append(time.monotonic() - started)
                else:
                    errors += 1
            n += 1

    before = [cluster.status(m)["batching"] for m in cluster.alive()]
    connector = aiohttp.TCPConnector(limit=concurrency + 8)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.monotonic()
        await asyncio.gather(*(worker(i, session) for i in range(concurrency)))
        elapsed = time.monotonic() - started
    after = [cluster.status(m)["batching"] for m in cluster.alive()]
    entries = sum(a[0] - b[0] for a, b in zip(after, before, strict=True))
    latencies.sort()
    return {
        "ops": len(latencies) / elapsed,
        "p50": statistics.median(latencies) * 1000 if latencies else 0.0,
        "p99": latencies[int(len(latencies) * 0.99)] * 1000 if latencies else 0.0,
        "per_entry": len(latencies) / entries if entries else 0.0,
        "errors": errors,
    }


async def in_process(
    cluster: Cluster, members: list, concurrency: int, seconds: float, tag: str
) -> dict[str, float]:
    """Proposers inside the member processes (`/load`): the consensus layer without HTTP."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=seconds + 60)) as s:

        async def one(m, i: int) -> dict:
            body = {
                "concurrency": concurrency,
                "seconds": seconds,
                "bucket": "bench",
                "tag": f"{tag}-{i}",
            }
            async with s.post(m.url + "/load", json=body) as resp:
                return await resp.json()

        replies = await asyncio.gather(*(one(m, i) for i, m in enumerate(members)))
    latencies = sorted(x for r in replies for x in r["latencies"])
    elapsed = max(r["elapsed"] for r in replies)
    entries = sum(r["entries"] for r in replies)
    return {
        "ops": len(latencies) / elapsed,
        "p50": statistics.median(latencies) * 1000 if latencies else 0.0,
        "p99": latencies[int(len(latencies) * 0.99)] * 1000 if latencies else 0.0,
        "per_entry": len(latencies) / entries if entries else 0.0,
        "errors": sum(r["errors"] for r in replies),
    }


def failovers(cluster: Cluster, count: int) -> list[float]:
    times = []
    for _ in range(count):
        leader = cluster.wait_leader()
        cluster.kill(leader.node_id)
        started = time.monotonic()
        new = cluster.wait_leader(timeout=20)
        # "took over": the new leader commits a proposal
        while cluster.propose(new, [put_cmd("bench", f"f{time.time()}", "v")])[0] != 200:
            time.sleep(0.01)
        times.append(time.monotonic() - started)
        cluster.start(leader.node_id)
        cluster.wait_converged(timeout=30)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--failovers", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cluster = Cluster(Path(tmp), 3)
        try:
            cluster.start()
            leader = cluster.wait_leader()
            assert cluster.propose(leader, [bucket_cmd("bench")])[0] == 200
            rows = []
            for concurrency in (1, 64):
                result = asyncio.run(
                    in_process(cluster, [leader], concurrency, args.seconds, f"l{concurrency}")
                )
                rows.append((f"in-process on leader, {concurrency}", result))
            follower = next(m for m in cluster.members if m is not leader)
            result = asyncio.run(in_process(cluster, [follower], 64, args.seconds, "f64"))
            rows.append(("in-process on a follower, 64", result))
            for concurrency in (1, 64):
                result = asyncio.run(run(cluster, concurrency, args.seconds, f"c{concurrency}"))
                rows.append((f"HTTP to all 3 nodes, {concurrency}", result))
            result = asyncio.run(run(cluster, 64, args.seconds, "r", barrier=True))
            rows.append(("HTTP read barriers, all 3, 64", result))
            print(
                f"{'3 nodes, 127.0.0.1':34} {'ops/s':>8} {'p50 ms':>8} {'p99 ms':>8}"
                f" {'per entry':>9} {'errors':>6}"
            )
            for name, r in rows:
                print(
                    f"{name:34} {r['ops']:8.0f} {r['p50']:8.1f} {r['p99']:8.1f}"
                    f" {r['per_entry']:9.1f} {r['errors']:6d}"
                )
            if args.failovers:
                times = failovers(cluster, args.failovers)
                print(
                    "failover (SIGKILL leader -> next commit), s: "
                    + ", ".join(f"{t:.2f}" for t in times)
                    + f"; median {statistics.median(times):.2f}"
                )
        finally:
            cluster.stop_all()


if __name__ == "__main__":
    main()
