"""`make soak`: the model harness (tests/model) again and again, each run from a fresh seed,
for SOAK_MINUTES (default 60; a run that has started is finished). Every run's seed, result and
counts of requests and faults go to SOAK_LOG (default soak-seeds.txt); it stops at the first
failing run, whose output (seed and shrunk steps) is on the console."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path


def main() -> int:
    minutes = float(os.environ.get("SOAK_MINUTES", "60"))
    log = Path(os.environ.get("SOAK_LOG", "soak-seeds.txt"))
    deadline = time.monotonic() + minutes * 60
    totals: Counter[str] = Counter()
    runs = 0
    while time.monotonic() < deadline:
        seed = random.SystemRandom().randrange(1 << 32)
        with tempfile.NamedTemporaryFile(suffix=".jsonl") as stats:
            env = {
                **os.environ,
                "MODEL_SEED": str(seed),
                "MODEL_STATS": stats.name,
                "MODEL_PROFILE": os.environ.get("MODEL_PROFILE", "soak"),
            }
            started = time.monotonic()
            result = subprocess.run(
                [sys.executable, "-m", "pytest", "tests/model", "-q", "-p", "no:cacheprovider"],
                env=env,
                check=False,
            )
            counts: Counter[str] = Counter()
            for line in Path(stats.name).read_text().splitlines():
                counts.update(json.loads(line))
        runs += 1
        totals.update(counts)
        entry = (
            f"{time.strftime('%Y-%m-%dT%H:%M:%S')} MODEL_SEED={seed} exit={result.returncode}"
            f" seconds={time.monotonic() - started:.0f} {json.dumps(dict(sorted(counts.items())))}"
        )
        with log.open("a") as f:
            f.write(entry + "\n")
        print(entry, flush=True)
        if result.returncode != 0:
            print(f"soak: run {runs} failed; replay with MODEL_SEED={seed}", flush=True)
            return 1
    print(f"soak: {runs} runs passed; totals {json.dumps(dict(sorted(totals.items())))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
