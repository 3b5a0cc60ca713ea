"""The workloads: asyncio + aiohttp, many concurrent keep-alive connections, SigV4 per request.

These run inside the load-generator process (`bench.worker`), never in the process that owns the
servers, so the client's CPU is its own. Every workload is a plain function taking picklable
arguments and returning a picklable result; each builds its own event loop (uvloop) and session.
Bodies are unique per object (a counter stamped into random bytes) because Anode deduplicates
chunks by SHA-256 and repeated bodies would make it look faster than it is.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import itertools
import os
import re
import resource
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import aiohttp
import uvloop

from .signing import Signer, canonical_query
from .targets import Target

MiB = 1024 * 1024
READ_CHUNK = 1 * MiB


@dataclass
class PhaseResult:
    """A fixed-duration closed-loop phase: throughput, latency percentiles and error count."""

    ops: int = 0
    seconds: float = 0.0
    errors: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    keys: int = 0  # objects written (PUT phases): what a following GET phase may read
    first_error: str = ""
    server_cpu_pct: float = 0.0  # CPU of the server process (all threads), 100 = one core
    client_cpu_pct: float = 0.0  # CPU of this load generator: near 100 means it is the limit
    other_cpu_pct: float = 0.0  # everything else on the machine (other users' jobs: noise)

    @property
    def ops_per_s(self) -> float:
        return self.ops / self.seconds if self.seconds else 0.0


@dataclass
class Client:
    """An aiohttp session plus the signer for one target."""

    target: Target
    session: aiohttp.ClientSession
    signer: Signer = field(init=False)
    urls: Iterator[str] = field(init=False)

    def __post_init__(self) -> None:
        self.signer = Signer(self.target.access_key, self.target.secret_key)
        self.urls = itertools.cycle(self.target.spread or (self.target.url,))

    def request(
        self,
        method: str,
        path: str,
        params: dict[str, str] | None = None,
        *,
        data: bytes | memoryview | None = None,
        headers: dict[str, str] | None = None,
    ) -> aiohttp.client._RequestContextManager:
        path = quote(path, safe="/-_.~")
        query = canonical_query(params)
        base = next(self.urls)
        signed = self.signer.headers(method, base.split("://", 1)[1], path, query)
        if headers:
            signed.update(headers)
        url = f"{base}{path}?{query}" if query else f"{base}{path}"
        return self.session.request(method, url, data=data, headers=signed)


class RequestFailed(Exception):
    pass


def _run(
    coro_fn: Callable[[Client], Awaitable[object]], target: Target, connections: int
) -> object:
    async def main() -> object:
        connector = aiohttp.TCPConnector(limit=connections, force_close=False)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=120)
        async with aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            auto_decompress=False,
            skip_auto_headers=("User-Agent",),
        ) as session:
            return await coro_fn(Client(target, session))

    return uvloop.run(main())


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of `pid` (all threads) and its live children (the 3-node cluster's
    supervisor runs its members as children) from /proc; 0 where unavailable."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(_cpu_seconds(int(child)) for child in children)


def _machine_busy() -> float:
    """CPU seconds all cores spent not idle (from /proc/stat), to tell others' load apart."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    ticks = [int(x) for x in fields]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    busy = sum(ticks[:8]) - idle  # user nice system idle iowait irq softirq steal
    return busy / os.sysconf("SC_CLK_TCK")


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _closed_loop(
    op: Callable[[int], Awaitable[None]],
    concurrency: int,
    duration: float,
    warmup: float,
    server_pid: int = 0,
) -> PhaseResult:
    """`concurrency` workers each run `op` back to back; ops that start after warm-up count."""
    counter = itertools.count()
    result = PhaseResult()
    latencies: list[float] = []
    start = time.perf_counter()
    measure_from = start + warmup
    deadline = measure_from + duration
    last_end = measure_from

    async def worker() -> None:
        nonlocal last_end
        while True:
            t0 = time.perf_counter()
            if t0 >= deadline:
                return
            seq = next(counter)
            try:
                await op(seq)
            except Exception as e:
                if t0 >= measure_from:
                    result.errors += 1
                    result.first_error = result.first_error or f"{type(e).__name__}: {e}"
                continue
            t1 = time.perf_counter()
            if t0 >= measure_from:
                latencies.append(t1 - t0)
                last_end = max(last_end, t1)

    cpu: list[tuple[float, float, float, float]] = []

    async def sample_cpu() -> None:
        await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
        cpu.append((time.perf_counter(), _cpu_seconds(server_pid), _self_cpu(), _machine_busy()))

    sampler = asyncio.ensure_future(sample_cpu())
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    await sampler
    wall = time.perf_counter() - cpu[0][0]
    if wall > 0:
        result.server_cpu_pct = 100 * (_cpu_seconds(server_pid) - cpu[0][1]) / wall
        result.client_cpu_pct = 100 * (_self_cpu() - cpu[0][2]) / wall
        machine = 100 * (_machine_busy() - cpu[0][3]) / wall
        result.other_cpu_pct = max(0.0, machine - result.server_cpu_pct - result.client_cpu_pct)
    latencies.sort()
    result.ops = len(latencies)
    result.seconds = max(last_end - measure_from, 1e-9)
    result.p50_ms = _percentile(latencies, 0.50) * 1000
    result.p99_ms = _percentile(latencies, 0.99) * 1000
    result.keys = next(counter)
    return result


async def _check(resp: aiohttp.ClientResponse, *ok: int) -> None:
    if resp.status not in (ok or (200,)):
        body = (await resp.read())[:300]
        raise RequestFailed(f"{resp.method} {resp.url.path} -> {resp.status}: {body!r}")


def _stamped(base: bytes, seq: int, salt: bytes) -> bytes:
    """`base` with a unique 24-byte prefix, so no two objects share a chunk."""
    return salt + seq.to_bytes(8, "big") + base[24:]


def create_bucket(target: Target, bucket: str) -> None:
    async def go(c: Client) -> None:
        async with c.request("PUT", f"/{bucket}") as resp:
            if resp.status == 409:  # already ours from an earlier phase
                return
            await _check(resp)

    _run(go, target, 1)


def put_objects(
    target: Target,
    bucket: str,
    prefix: str,
    size: int,
    duration: float,
    concurrency: int,
    warmup: float,
) -> PhaseResult:
    """PUT unique `size`-byte objects `prefix00000000…` for `duration` seconds."""
    base = os.urandom(size)  # sizes under 24 bytes are sent as is (not unique)
    salt = os.urandom(16)

    async def go(c: Client) -> PhaseResult:
        async def op(seq: int) -> None:
            body = _stamped(base, seq, salt) if size >= 24 else base
            async with c.request("PUT", f"/{bucket}/{prefix}{seq:08d}", data=body) as resp:
                await _check(resp)
                await resp.read()

        return await _closed_loop(op, concurrency, duration, warmup, target.pid)

    return _run(go, target, concurrency)  # type: ignore[return-value]


def get_objects(
    target: Target,
    bucket: str,
    prefix: str,
    size: int,
    keys: int,
    duration: float,
    concurrency: int,
    warmup: float,
) -> PhaseResult:
    """GET objects written by `put_objects` (round robin over `keys`), checking their size."""

    async def go(c: Client) -> PhaseResult:
        async def op(seq: int) -> None:
            key = f"/{bucket}/{prefix}{(seq * 7919) % keys:08d}" if target.stores else "/x"
            async with c.request("GET", key) as resp:
                await _check(resp)
                body = await resp.read()
            if len(body) != size:
                raise RequestFailed(f"GET {key}: {len(body)} bytes, expected {size}")

        return await _closed_loop(op, concurrency, duration, warmup, target.pid)

    return _run(go, target, concurrency)  # type: ignore[return-value]


def _large_body(size: int) -> tuple[bytes, str]:
    body = os.urandom(size)
    return body, hashlib.md5(body).hexdigest()


def put_large(target: Target, bucket: str, key: str, size: int) -> float:
    """One PUT of `size` fresh random bytes; returns MiB/s. Checks the ETag is the body's MD5."""
    body, md5 = _large_body(size)

    async def go(c: Client) -> float:
        t0 = time.perf_counter()
        async with c.request("PUT", f"/{bucket}/{key}", data=body) as resp:
            await _check(resp)
            etag = resp.headers.get("ETag", "").strip('"')
        elapsed = time.perf_counter() - t0
        if etag != md5:
            raise RequestFailed(f"PUT {key}: ETag {etag!r}, body MD5 {md5}")
        return size / MiB / elapsed

    return _run(go, target, 1)  # type: ignore[return-value]


async def _read_all(resp: aiohttp.ClientResponse) -> int:
    n = 0
    async for chunk in resp.content.iter_chunked(READ_CHUNK):
        n += len(chunk)
    return n


def get_large(target: Target, bucket: str, key: str, size: int) -> float:
    """One streaming GET of the whole object; returns MiB/s."""

    async def go(c: Client) -> float:
        t0 = time.perf_counter()
        async with c.request("GET", f"/{bucket}/{key}") as resp:
            await _check(resp)
            n = await _read_all(resp)
        elapsed = time.perf_counter() - t0
        if n != size:
            raise RequestFailed(f"GET {key}: {n} bytes, expected {size}")
        return size / MiB / elapsed

    return _run(go, target, 1)  # type: ignore[return-value]


def put_multipart(
    target: Target, bucket: str, key: str, size: int, part_size: int, parallel: int
) -> float:
    """Create, upload parts `parallel` at a time, complete; returns MiB/s over all of it."""
    body, _ = _large_body(size)
    view = memoryview(body)
    parts = [(n + 1, off) for n, off in enumerate(range(0, size, part_size))]

    async def go(c: Client) -> float:
        t0 = time.perf_counter()
        async with c.request("POST", f"/{bucket}/{key}", {"uploads": ""}) as resp:
            await _check(resp)
            text = await resp.text()
        match = re.search(r"<UploadId>([^<]+)</UploadId>", text)
        if not match:
            raise RequestFailed(f"CreateMultipartUpload: no UploadId in {text[:300]!r}")
        upload_id = match.group(1)
        etags: dict[int, str] = {}
        queue = list(parts)

        async def uploader() -> None:
            while queue:
                number, off = queue.pop(0)
                params = {"partNumber": str(number), "uploadId": upload_id}
                chunk = view[off : off + part_size]
                async with c.request("PUT", f"/{bucket}/{key}", params, data=chunk) as resp:
                    await _check(resp)
                    etags[number] = resp.headers["ETag"]

        await asyncio.gather(*(uploader() for _ in range(parallel)))
        xml = "".join(
            f"<Part><PartNumber>{n}</PartNumber><ETag>{etags[n]}</ETag></Part>"
            for n in sorted(etags)
        )
        payload = f"<CompleteMultipartUpload>{xml}</CompleteMultipartUpload>".encode()
        async with c.request(
            "POST", f"/{bucket}/{key}", {"uploadId": upload_id}, data=payload
        ) as resp:
            await _check(resp)
            text = await resp.text()
        elapsed = time.perf_counter() - t0
        if "<Error>" in text:  # S3 may report a failed complete inside a 200
            raise RequestFailed(f"CompleteMultipartUpload: {text[:300]!r}")
        return size / MiB / elapsed

    return _run(go, target, parallel)  # type: ignore[return-value]


def get_ranged(
    target: Target, bucket: str, key: str, size: int, part_size: int, parallel: int
) -> float:
    """GET the object as `part_size` ranges, `parallel` at a time; returns MiB/s."""
    ranges = [(off, min(off + part_size, size) - 1) for off in range(0, size, part_size)]

    async def go(c: Client) -> float:
        queue = list(ranges)
        total = 0

        async def reader() -> None:
            nonlocal total
            while queue:
                first, last = queue.pop(0)
                headers = {"Range": f"bytes={first}-{last}"}
                async with c.request("GET", f"/{bucket}/{key}", headers=headers) as resp:
                    await _check(resp, 206)
                    n = await _read_all(resp)
                if n != last - first + 1:
                    raise RequestFailed(f"range {first}-{last}: {n} bytes")
                total += n

        t0 = time.perf_counter()
        await asyncio.gather(*(reader() for _ in range(parallel)))
        elapsed = time.perf_counter() - t0
        if total != size:
            raise RequestFailed(f"ranged GET read {total} bytes, expected {size}")
        return size / MiB / elapsed

    return _run(go, target, parallel)  # type: ignore[return-value]


def fill_keys(target: Target, bucket: str, prefix: str, count: int, concurrency: int) -> float:
    """PUT `count` tiny objects with high concurrency (set-up for the listing; not a metric)."""

    async def go(c: Client) -> float:
        keys = iter(range(count))
        t0 = time.perf_counter()

        async def worker() -> None:
            for i in keys:
                body = f"listing object {i}".encode()
                async with c.request("PUT", f"/{bucket}/{prefix}{i:06d}", data=body) as resp:
                    await _check(resp)
                    await resp.read()

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - t0

    return _run(go, target, concurrency)  # type: ignore[return-value]


_KEY = re.compile(rb"<Key>")
_TOKEN = re.compile(rb"<NextContinuationToken>([^<]+)</NextContinuationToken>")


def list_keys(
    target: Target, bucket: str, prefix: str, expected: int, page: int, repeats: int
) -> float:
    """Seconds to walk every key under `prefix` with ListObjectsV2 pages; median of `repeats`."""

    async def once(c: Client) -> float:
        t0 = time.perf_counter()
        seen = 0
        token: str | None = None
        while True:
            params = {"list-type": "2", "prefix": prefix, "max-keys": str(page)}
            if token:
                params["continuation-token"] = token
            async with c.request("GET", f"/{bucket}", params) as resp:
                await _check(resp)
                body = await resp.read()
            seen += len(_KEY.findall(body))
            match = _TOKEN.search(body)
            if not match:
                break
            token = html.unescape(match.group(1).decode())
        elapsed = time.perf_counter() - t0
        if seen != expected:
            raise RequestFailed(f"listed {seen} keys under {prefix!r}, expected {expected}")
        return elapsed

    async def go(c: Client) -> float:
        return statistics.median([await once(c) for _ in range(repeats)])

    return _run(go, target, 1)  # type: ignore[return-value]
