"""The disk baseline: what `dd` writes and reads on the filesystem the stores use, same run.

Write: `dd if=/dev/zero bs=4M oflag=direct conv=fsync` — bypasses the page cache and includes
the final fsync, the fair bar for a store that fsyncs every chunk before acknowledging. Read:
`dd iflag=direct` of that file — the device's read speed with no page cache. Note that the
stores' GETs of data they just wrote are usually served from the page cache, so GET / dd-read
compares a cached read path with the bare device; the report says so.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

MiB = 1024 * 1024


@dataclass
class DiskResult:
    write_mib_s: float
    read_mib_s: float
    size_mib: int


def _dd(args: list[str]) -> float:
    """Run dd; returns MiB/s computed from its byte count and seconds (not its rounded rate)."""
    proc = subprocess.run(["dd", *args], capture_output=True, text=True, check=True)
    match = re.search(r"^(\d+) bytes .* copied, ([\d.]+) s", proc.stderr, re.MULTILINE)
    if not match:
        raise RuntimeError(f"cannot parse dd output: {proc.stderr!r}")
    return int(match.group(1)) / MiB / float(match.group(2))


def measure(directory: Path, size_mib: int = 256) -> DiskResult:
    """dd write then read `size_mib` MiB in 4 MiB blocks under `directory`; removes the file."""
    path = directory / "dd.bin"
    count = str(max(1, size_mib // 4))
    try:
        write = _dd(
            ["if=/dev/zero", f"of={path}", "bs=4M", f"count={count}", "oflag=direct", "conv=fsync"]
        )
        read = _dd([f"if={path}", "of=/dev/null", "bs=4M", "iflag=direct"])
    finally:
        path.unlink(missing_ok=True)
    return DiskResult(write, read, size_mib)
