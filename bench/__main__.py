"""`python -m bench`: Anode against the Python ceiling, SeaweedFS and dd, one markdown table.

Targets run one at a time (start, measure, stop, sync) so an idle server never competes for the
two cores with the one being measured; the load generator is a separate process for the whole
run. Everything started here is stopped by PID in `finally` blocks, including on Ctrl-C/SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from . import disk, targets
from .load import MiB, PhaseResult
from .profile import Recording, top_frames
from .report import TARGETS, Results, Scale, render
from .worker import LoadError, LoadProcess

RESULTS = Path(__file__).resolve().parent / "results"
ALL = ("anode", "ceiling", "seaweedfs", "dd", "anode3")
_SIZE = {"small": "4 KiB", "medium": "1 MiB"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="2 s per ops phase instead of 10 s")
    p.add_argument("--duration", type=float, help="seconds per ops phase (default 10, quick 2)")
    p.add_argument("--warmup", type=float, help="unmeasured seconds before each ops phase")
    p.add_argument("--concurrency", type=int, default=32, help="connections in ops phases")
    p.add_argument(
        "--only", default=",".join(ALL), help=f"comma-separated subset of {','.join(ALL)}"
    )
    p.add_argument("--large-mib", type=int, default=256, help="size of the large objects")
    p.add_argument("--part-mib", type=int, default=16, help="multipart part / range size")
    p.add_argument("--parallel", type=int, default=4, help="parts / ranges in flight")
    p.add_argument("--list-keys", type=int, default=10_000, help="keys to list")
    p.add_argument("--list-page", type=int, default=1000, help="ListObjectsV2 max-keys")
    p.add_argument(
        "--fill-concurrency", type=int, default=64, help="connections used to PUT the keys to list"
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="py-spy the node during a re-run of the 4 KiB GET phase "
        "(flame graph get-small.svg next to --output)",
    )
    p.add_argument(
        "--output",
        type=Path,
        default=RESULTS / "latest.md",
        help="where to write the table (default bench/results/latest.md)",
    )
    p.add_argument(
        "--workdir",
        type=Path,
        help="parent for the temporary data dir (default: same fs as ./data)",
    )
    args = p.parse_args(argv)
    args.duration = args.duration or (2.0 if args.quick else 10.0)
    args.warmup = args.warmup if args.warmup is not None else min(1.0, args.duration / 4)
    args.only = [t.strip() for t in args.only.split(",") if t.strip()]
    unknown = set(args.only) - set(ALL)
    if unknown:
        p.error(f"--only: unknown target(s) {', '.join(sorted(unknown))}")
    if args.part_mib < 5 and args.large_mib > args.part_mib:
        p.error("--part-mib: S3 parts (but the last) must be at least 5 MiB")
    return args


def _data_parent(explicit: Path | None) -> Path:
    """A directory on the filesystem that holds ./data (the system temp dir if it is the same)."""
    if explicit:
        return explicit
    repo_data = targets.REPO / "data"
    anchor = repo_data if repo_data.exists() else targets.REPO
    tmp = Path(tempfile.gettempdir())
    return tmp if os.stat(tmp).st_dev == os.stat(anchor).st_dev else targets.REPO


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _loadavg() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(targets.REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


class Bench:
    """One run: owns the load generator, the results and the list of failures."""

    def __init__(self, args: argparse.Namespace, load: LoadProcess, workdir: Path) -> None:
        self.args = args
        self.load = load
        self.workdir = workdir
        self.scale = Scale(
            large_mib=args.large_mib,
            part_mib=args.part_mib,
            parallel=args.parallel,
            list_keys=args.list_keys,
            list_page=args.list_page,
        )
        self.results = Results(self.scale, [t for t in TARGETS if t in args.only])
        self.failures: list[str] = []
        self.cpu: list[str] = []  # "anode GET 4 KiB 98/71/5": server / load gen / other CPU %

    def attempt(self, what: str, fn: Callable[[], Any]) -> Any:
        """Run one measurement; a failure is recorded (and leaves its cell empty), not fatal."""
        try:
            return fn()
        except (LoadError, RuntimeError, OSError, subprocess.SubprocessError) as e:
            first = (str(e).splitlines()[0] if str(e) else type(e).__name__)[:300]
            self.failures.append(f"{what}: {first}")
            _log(f"  FAILED {what}: {first}")
            return None

    def phase(
        self, target: targets.Target, op: str, tag: str, size: int, keys: int = 0
    ) -> PhaseResult | None:
        a = self.args
        common = {
            "target": target,
            "bucket": "bench",
            "prefix": f"{tag}/",
            "size": size,
            "duration": a.duration,
            "concurrency": a.concurrency,
            "warmup": a.warmup,
        }
        if op == "get":
            common["keys"] = keys
        res: PhaseResult | None = self.attempt(
            f"{target.name} {op} {tag}", lambda: self.load.call(f"{op}_objects", **common)
        )
        if res is None:
            return None
        name = target.name
        self.results.set(name, f"{op}_{tag}_ops", res.ops_per_s)
        self.results.set(name, f"{op}_{tag}_p50", res.p50_ms)
        self.results.set(name, f"{op}_{tag}_p99", res.p99_ms)
        self.results.set(name, f"{op}_{tag}_cpu", res.server_cpu_pct)  # not a row: ratios
        self.results.add_errors(name, res.errors)
        _log(
            f"  {name:9} {op.upper()} {tag:6} {res.ops_per_s:9,.0f} ops/s  "
            f"p50 {res.p50_ms:7.2f} ms  p99 {res.p99_ms:7.2f} ms  errors {res.errors}  "
            f"CPU server {res.server_cpu_pct:3.0f} % load gen {res.client_cpu_pct:3.0f} % "
            f"other {res.other_cpu_pct:3.0f} %"
            + (f"  first: {res.first_error}" if res.errors else "")
        )
        self.cpu.append(
            f"{name} {op.upper()} {_SIZE[tag]} {res.server_cpu_pct:.0f}/{res.client_cpu_pct:.0f}"
            f"/{res.other_cpu_pct:.0f}"
        )
        if res.errors:
            self.failures.append(f"{name} {op} {tag}: {res.errors} errors ({res.first_error})")
        return res

    def small_and_medium(self, target: targets.Target) -> None:
        if target.stores:
            self.attempt(
                f"{target.name} create bucket",
                lambda: self.load.call("create_bucket", target=target, bucket="bench"),
            )
        sizes = [("small", self.scale.small)]
        if target.stores:
            sizes.append(("medium", self.scale.medium))
        for tag, size in sizes:
            put = self.phase(target, "put", tag, size)
            keys = put.keys if put and target.stores else 1
            self.phase(target, "get", tag, size, keys)
            if tag == "small" and target.name == "anode" and self.args.profile:
                self.profile(target, size, keys)
        self.results.add_errors(target.name, 0)

    def large(self, target: targets.Target) -> None:
        size = self.scale.large_mib * MiB
        part = self.scale.part_mib * MiB
        common = {"target": target, "bucket": "bench", "size": size}
        for row_id, fn, key, extra in (
            ("put_large", "put_large", "large/single", {}),
            ("get_large", "get_large", "large/single", {}),
            (
                "put_multipart",
                "put_multipart",
                "large/multipart",
                {"part_size": part, "parallel": self.scale.parallel},
            ),
            (
                "get_ranged",
                "get_ranged",
                "large/multipart",
                {"part_size": part, "parallel": self.scale.parallel},
            ),
        ):
            value = self.attempt(
                f"{target.name} {row_id}",
                lambda fn=fn, key=key, extra=extra: self.load.call(fn, key=key, **common, **extra),
            )
            if value is not None:
                self.results.set(target.name, row_id, value)
                _log(f"  {target.name:9} {row_id:13} {value:9,.0f} MiB/s")

    def listing(self, target: targets.Target) -> None:
        n = self.scale.list_keys

        def fill() -> float:
            self.load.call("create_bucket", target=target, bucket="bench-list")
            return self.load.call(
                "fill_keys",
                target=target,
                bucket="bench-list",
                prefix="list/",
                count=n,
                concurrency=self.args.fill_concurrency,
            )

        seconds = self.attempt(f"{target.name} fill {n} keys", fill)
        if seconds is None:
            return
        _log(
            f"  {target.name:9} put {n:,} keys for listing in {seconds:.1f} s "
            f"({n / seconds:,.0f} ops/s)"
        )
        value = self.attempt(
            f"{target.name} list",
            lambda: self.load.call(
                "list_keys",
                target=target,
                bucket="bench-list",
                prefix="list/",
                expected=n,
                page=self.scale.list_page,
                repeats=3,
            ),
        )
        if value is not None:
            self.results.set(target.name, "list", value)
            _log(f"  {target.name:9} list {n:,} keys: {value:.3f} s (median of 3)")

    def profile(self, target: targets.Target, size: int, keys: int) -> None:
        """Two unmeasured re-runs of the 4 KiB GET phase: one for the SVG, one for the summary."""
        svg, raw = self.args.output.parent / "get-small.svg", self.workdir / "get-small.folded"
        svg.parent.mkdir(parents=True, exist_ok=True)
        rates: list[str] = []
        for out, fmt, extra in ((svg, "flamegraph", ()), (raw, "raw", ("--gil",))):
            _log(f"  profiling anode (py-spy {fmt}) during a re-run of GET 4 KiB")
            recording = Recording(target.pid, out, fmt, *extra)
            try:
                time.sleep(0.5)  # let py-spy attach before the load starts
                res = self.attempt(
                    "anode profiled get",
                    lambda: self.load.call(
                        "get_objects",
                        target=target,
                        bucket="bench",
                        prefix="small/",
                        size=size,
                        keys=keys,
                        duration=self.args.duration,
                        concurrency=self.args.concurrency,
                        warmup=0.0,
                    ),
                )
            finally:
                recording.stop()
            rates.append(f"{res.ops_per_s:,.0f}" if res else "failed")
        if not raw.exists() or not svg.exists():
            self.failures.append("profile: py-spy wrote nothing")
            return
        frames, samples = top_frames(raw)
        lines = [
            f"py-spy of the node during re-runs of GET 4 KiB ({' and '.join(rates)} ops/s "
            f"while sampled; flame graph of all threads: {svg.name} next to this file). "
            f"Top functions by samples holding the GIL (`--gil`, {samples} samples; self = "
            "innermost Python frame, so C code such as uvloop counts for its caller):",
            "",
            "| function | self | total |",
            "|---|---:|---:|",
        ]
        lines += [f"| `{f.name}` | {f.self_pct:.1f} % | {f.total_pct:.1f} % |" for f in frames]
        self.results.profile = lines
        _log("\n".join(lines))

    def run_dd(self) -> None:
        os.sync()
        res = self.attempt("dd", lambda: disk.measure(self.workdir, self.scale.large_mib))
        if res:
            for row_id in ("put_large", "put_multipart"):
                self.results.set("dd", row_id, res.write_mib_s)
            for row_id in ("get_large", "get_ranged"):
                self.results.set("dd", row_id, res.read_mib_s)
            _log(
                f"  dd        write {res.write_mib_s:,.0f} MiB/s  read {res.read_mib_s:,.0f} MiB/s"
            )

    def run_target(self, name: str) -> None:
        starters: dict[str, Callable[[], contextlib.AbstractContextManager[targets.Target]]] = {
            "anode": lambda: targets.anode(self.workdir),
            "ceiling": lambda: targets.ceiling(self.workdir, self.scale.small),
            "seaweedfs": lambda: targets.seaweedfs(self.workdir),
            "anode3": lambda: targets.anode3(self.workdir),
        }
        _log(f"{name}: starting")
        t0 = time.monotonic()
        try:
            with starters[name]() as target:
                _log(f"{name}: ready in {time.monotonic() - t0:.1f} s (pid {target.pid})")
                self.small_and_medium(target)
                if target.stores:
                    self.large(target)
                    self.listing(target)
                t0 = time.monotonic()
            _log(f"{name}: stopped in {time.monotonic() - t0:.1f} s")
        except (RuntimeError, TimeoutError, OSError) as e:
            self.failures.append(f"{name}: {str(e).splitlines()[0]}")
            _log(f"  FAILED {name}: {e}")
        os.sync()  # leave no dirty pages from this target to slow down the next


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def _workdir(parent: Path) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="anode-bench-", dir=parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGHUP, _raise_interrupt)
    started = dt.datetime.now(dt.UTC)
    load_before = _loadavg()
    uptime_before = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    _log(f"bench: {uptime_before}")
    load = LoadProcess()
    try:
        with _workdir(_data_parent(args.workdir)) as workdir:
            bench = Bench(args, load, workdir)
            _log(f"bench: data in {workdir}, load generator pid {load.pid}")
            order = [t for t in ("dd", "ceiling", "anode", "anode3", "seaweedfs") if t in args.only]
            for name in order:
                if name == "dd":
                    bench.run_dd()
                else:
                    bench.run_target(name)
            fs = subprocess.run(
                ["df", "--output=source,fstype", str(workdir)], capture_output=True, text=True
            ).stdout.split()[-2:]
    finally:
        load.close()
    elapsed = (dt.datetime.now(dt.UTC) - started).total_seconds()
    res = bench.results
    command = (
        "python -m bench" + (" " + shlex.join(argv if argv is not None else sys.argv[1:])).rstrip()
    )
    res.header = [
        f"# Anode benchmark, {started:%Y-%m-%d %H:%M} UTC",
        "",
        f"- command: `{command}` (commit {_git_commit()}, {elapsed:.0f} s)",
        f"- machine: {os.cpu_count()} CPUs ({_cpu_model()}), Python "
        f"{platform.python_version()}; load average (1/5/15 min) {load_before} before, "
        f"{_loadavg()} after",
        f"- ops phases: {args.duration:g} s each after {args.warmup:g} s warm-up, "
        f"{args.concurrency} connections, one load-generator process (uvloop + aiohttp, "
        "SigV4 with UNSIGNED-PAYLOAD) on the same 2 cores as the server",
        f"- data: temp dir on {' '.join(fs)} (the filesystem of ./data)",
    ]
    res.notes = [
        "Unique bodies (random bytes + a counter) everywhere: Anode dedups chunks by SHA-256.",
        "anode3 is `anode local --nodes 3` (three processes on the same 2 cores): requests take "
        "turns over its three endpoints, as through a Kubernetes Service, so two in three reach "
        "a follower, which forwards writes to the Raft leader. 4 KiB bodies are kept in the "
        "metadata (storage.inline_max, 32 KiB), 1 MiB ones are chunk files with 3 copies.",
        "dd: `bs=4M oflag=direct conv=fsync` write, `iflag=direct` read of the same "
        f"{args.large_mib} MiB; GETs of just-written objects mostly hit the page cache, so "
        "GET / dd-read compares a cached read path with the bare device.",
        "SeaweedFS runs `weed server -s3` (master, volume, filer, gateway in one process) "
        "and does not fsync writes; Anode fsyncs every chunk before it acknowledges.",
        "The ceiling (aiohttp on uvloop answering a fixed 4 KiB body) stores nothing, so it "
        "has only the 4 KiB rows. p50/p99 are per-request latencies under full concurrency.",
        f"Listing: {args.list_keys:,} keys PUT beforehand with {args.fill_concurrency} "
        "connections, then ListObjectsV2 walked to the end; median of 3 walks.",
        "CPU % during ops phases, server / load generator / everything else on the machine "
        "(other users' jobs; 100 = one core, the machine has "
        f"{os.cpu_count()}): " + ", ".join(bench.cpu) + ".",
        *(f"FAILED {f}" for f in bench.failures),
    ]
    table = render(res)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(table)
    print(table)
    _log(f"bench: wrote {args.output}")
    return 1 if bench.failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        _log("bench: interrupted; everything started was stopped")
        sys.exit(130)
