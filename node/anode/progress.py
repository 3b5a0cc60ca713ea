"""Progress of long admin commands (`anode admin members drain`): a bar on a terminal (tqdm),
plain lines when the output is a file or a pipe, JSON lines with `--json` for scripts. Any
other admin call that takes more than a second counts its seconds on a terminal (`waiting`).

`wait` polls until nothing remains; it takes the poll, the clock and the sleep as functions, so
the waiting itself is tested without a cluster.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any, Protocol

from tqdm import tqdm


@dataclass
class Remaining:
    """Work measured by what is left. Work that appears meanwhile (new writes) adds to `total`,
    so `done` never goes backwards."""

    what: str  # e.g. "drain n3"
    unit: str  # e.g. "chunk copies"
    total: int = 0
    remaining: int = 0

    def observe(self, remaining: int) -> None:
        if remaining > self.remaining:
            self.total += remaining - self.remaining
        self.remaining = remaining

    @property
    def done(self) -> int:
        return self.total - self.remaining


class Reporter(Protocol):
    def update(self, state: Remaining, elapsed: float) -> None: ...

    def finish(self, state: Remaining, elapsed: float, outcome: str) -> None: ...


class Lines:
    """One line when the count changes, and at least every `every` seconds."""

    def __init__(self, out: IO[str], every: float = 10.0) -> None:
        self.out, self.every = out, every
        self._last: tuple[int, float] | None = None

    def update(self, state: Remaining, elapsed: float) -> None:
        if self._last is not None:
            count, at = self._last
            if count == state.remaining and elapsed - at < self.every:
                return
        self._last = (state.remaining, elapsed)
        print(
            f"{state.what}: {state.done}/{state.total} {state.unit} done, "
            f"{state.remaining} remaining ({elapsed:.1f} s)",
            file=self.out,
            flush=True,
        )

    def finish(self, state: Remaining, elapsed: float, outcome: str) -> None:
        print(summary(state, elapsed, outcome), file=self.out, flush=True)


def summary(state: Remaining, elapsed: float, outcome: str) -> str:
    text = {"done": "done", "timeout": f"timed out, {state.remaining} {state.unit} remaining"}
    return (
        f"{state.what}: {text.get(outcome, outcome)} after {elapsed:.1f} s "
        f"({state.done} {state.unit} done)"
    )


class JsonLines:
    """One JSON object per poll (`"event": "progress"`) and a last one with the outcome."""

    def __init__(self, out: IO[str], fields: dict[str, Any]) -> None:
        self.out, self.fields = out, fields

    def _write(self, event: str, state: Remaining, elapsed: float) -> None:
        record = {
            "event": event,
            **self.fields,
            "done": state.done,
            "total": state.total,
            "remaining": state.remaining,
            "elapsed": round(elapsed, 3),
        }
        print(json.dumps(record), file=self.out, flush=True)

    def update(self, state: Remaining, elapsed: float) -> None:
        self._write("progress", state, elapsed)

    def finish(self, state: Remaining, elapsed: float, outcome: str) -> None:
        self._write(outcome, state, elapsed)


class Bar:
    """A tqdm bar on a terminal; its total grows if more work appears."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self._bar: tqdm | None = None

    def update(self, state: Remaining, elapsed: float) -> None:
        if self._bar is None:
            if not state.total:
                return
            self._bar = tqdm(
                total=state.total,
                desc=state.what,
                unit=f" {state.unit}",
                file=self.out,
                # 80x24 when the terminal tells 0 (tqdm would hide the bar)
                ncols=shutil.get_terminal_size().columns,
                nrows=shutil.get_terminal_size().lines,
                leave=True,
            )
        if self._bar.total != state.total:
            self._bar.total = state.total
        self._bar.n = state.done
        self._bar.refresh()

    def finish(self, state: Remaining, elapsed: float, outcome: str) -> None:
        if self._bar is not None:
            self.update(state, elapsed)
            self._bar.close()
        print(summary(state, elapsed, outcome), file=self.out, flush=True)


def reporter(out: IO[str], *, as_json: bool, fields: dict[str, Any]) -> Reporter:
    if as_json:
        return JsonLines(out, fields)
    return Bar(out) if out.isatty() else Lines(out)


def wait(
    poll: Callable[[], int],
    state: Remaining,
    report: Reporter,
    *,
    interval: float = 1.0,
    timeout: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Poll until nothing remains ("done") or `timeout` seconds pass ("timeout")."""
    start = clock()
    while True:
        state.observe(poll())
        elapsed = clock() - start
        if state.remaining == 0:
            report.finish(state, elapsed, "done")
            return "done"
        if timeout is not None and elapsed >= timeout:
            report.finish(state, elapsed, "timeout")
            return "timeout"
        report.update(state, elapsed)
        sleep(interval)


@contextmanager
def waiting(what: str, out: IO[str], *, after: float = 1.0) -> Iterator[None]:
    """On a terminal, once a call has taken `after` seconds, a line counting them (erased when
    the call returns); nothing at all elsewhere."""
    if not out.isatty():
        yield
        return
    stop = threading.Event()

    def show() -> None:
        if stop.wait(after):
            return
        start = time.monotonic() - after
        while True:
            out.write(f"\r{what}: waiting, {time.monotonic() - start:.0f} s")
            out.flush()
            if stop.wait(0.5):
                break
        out.write("\r\033[K")
        out.flush()

    thread = threading.Thread(target=show, name="waiting", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
