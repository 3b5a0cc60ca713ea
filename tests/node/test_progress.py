"""Progress of long admin commands (anode/progress.py): the waiting loop, plain lines, JSON lines
and the terminal bar, with a scripted poll and clock. The real `anode admin members drain` on a
cluster is in test_cluster.py::test_decommissioned_node_leaves_everything_fully_replicated."""

from __future__ import annotations

import io
import json
import time

from anode.progress import Bar, JsonLines, Lines, Remaining, reporter, wait, waiting


class Script:
    """A poll answering the given counts, and a clock that advances one second per sleep."""

    def __init__(self, counts: list[int]) -> None:
        self.counts, self.now, self.sleeps = iter(counts), 0.0, 0

    def poll(self) -> int:
        return next(self.counts)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += seconds


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(counts: list[int], report, **kwargs) -> tuple[str, Remaining]:
    script = Script(counts)
    state = Remaining("drain n3", "chunk copies")
    outcome = wait(script.poll, state, report, clock=script.clock, sleep=script.sleep, **kwargs)
    return outcome, state


def test_done_never_goes_backwards_when_work_appears() -> None:
    state = Remaining("x", "items")
    seen = []
    for remaining in [10, 6, 8, 3, 0]:
        state.observe(remaining)
        seen.append((state.done, state.total))
    assert seen == [(0, 10), (4, 10), (4, 12), (9, 12), (12, 12)]


def test_plain_lines_report_changes_and_the_end() -> None:
    out = io.StringIO()
    outcome, state = run([40, 40, 25, 25, 10, 0], Lines(out, every=10))
    assert outcome == "done" and state.done == 40
    assert out.getvalue().splitlines() == [
        "drain n3: 0/40 chunk copies done, 40 remaining (0.0 s)",
        "drain n3: 15/40 chunk copies done, 25 remaining (2.0 s)",
        "drain n3: 30/40 chunk copies done, 10 remaining (4.0 s)",
        "drain n3: done after 5.0 s (40 chunk copies done)",
    ]


def test_plain_lines_repeat_while_nothing_moves() -> None:
    out = io.StringIO()
    run([5] * 25 + [0], Lines(out, every=10))
    lines = out.getvalue().splitlines()
    assert len(lines) == 4 and all("5 remaining" in line for line in lines[:3])


def test_json_lines_for_scripts() -> None:
    out = io.StringIO()
    assert run([3, 1, 0], JsonLines(out, {"member": "n3"}))[0] == "done"
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(r["event"], r["remaining"], r["done"]) for r in records] == [
        ("progress", 3, 0),
        ("progress", 1, 2),
        ("done", 0, 3),
    ]
    assert all(r["member"] == "n3" and r["total"] == 3 for r in records)


def test_a_timeout_is_an_outcome_not_a_hang() -> None:
    out = io.StringIO()
    outcome, state = run([7] * 100, Lines(out), timeout=5)
    assert outcome == "timeout" and state.remaining == 7
    assert out.getvalue().splitlines()[-1].startswith("drain n3: timed out, 7 chunk copies")


def test_a_terminal_gets_a_bar_and_a_pipe_gets_lines() -> None:
    terminal = Terminal()
    assert isinstance(reporter(terminal, as_json=False, fields={}), Bar)
    assert isinstance(reporter(io.StringIO(), as_json=False, fields={}), Lines)
    assert isinstance(reporter(terminal, as_json=True, fields={}), JsonLines)
    outcome, _ = run([8, 4, 0], Bar(terminal))
    assert outcome == "done"
    screen = terminal.getvalue()
    assert "drain n3" in screen and "\r" in screen and "100%" in screen and "8/8" in screen


def test_a_slow_call_counts_its_seconds_on_a_terminal_only() -> None:
    terminal, pipe = Terminal(), io.StringIO()
    for out in (terminal, pipe):
        with waiting("POST /scrub", out, after=0.2):
            time.sleep(0.9)
        with waiting("GET /status", out, after=5):
            pass  # a quick call shows nothing
    assert pipe.getvalue() == ""
    screen = terminal.getvalue()
    assert screen.startswith("\rPOST /scrub: waiting, 0 s") and screen.endswith("\r\033[K")
    assert "GET /status" not in screen
