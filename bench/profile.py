"""py-spy around one phase: a flame graph (SVG) or collapsed stacks ranked into a summary.

Sampling costs CPU on a 2-core machine (two samplers at once lost two thirds of their samples),
so the benchmark profiles separate re-runs of the phase, one sampler each, never the measured
run. `--nonblocking` keeps py-spy from pausing the server at every sample. The summary uses
`--gil`: the node is one process whose throughput is bounded by the thread holding the GIL.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path


def py_spy() -> str:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else "py-spy"


@dataclass
class Frame:
    name: str
    self_pct: float
    total_pct: float


class Recording:
    """`py-spy record` of `pid` into `out` (`flamegraph` SVG or `raw` stacks) until `stop()`."""

    def __init__(self, pid: int, out: Path, fmt: str, *extra: str, rate: int = 100) -> None:
        self.out = out
        argv = [
            py_spy(),
            "record",
            "--pid",
            str(pid),
            "--rate",
            str(rate),
            "--nonblocking",
            "--format",
            fmt,
            "-o",
            str(out),
            *extra,
        ]
        self.procs = [
            subprocess.Popen(
                argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
            )
        ]

    def stop(self) -> None:
        """SIGINT makes py-spy write its output; kill it by PID if it hangs."""
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGINT)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait()


_LINE = re.compile(r"^(.*) (\d+)$")
_FRAME_LINE = re.compile(r":\d+\)$")


def _function(frame: str) -> str:
    """`handle (aiohttp/web_protocol.py:512)` -> `handle (aiohttp/web_protocol.py)`."""
    return _FRAME_LINE.sub(")", frame.strip())


def top_frames(raw: Path, n: int = 10) -> tuple[list[Frame], int]:
    """Functions ranked by self samples, with inclusive share; and the total sample count."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        stack, count = match.group(1), int(match.group(2))
        frames = [_function(f) for f in stack.split(";") if f.strip()]
        total += count
        if not frames:
            continue
        own[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
    if not total:
        return [], 0
    ranked = [
        Frame(name, 100 * c / total, 100 * inclusive[name] / total)
        for name, c in own.most_common(n)
    ]
    return ranked, total
