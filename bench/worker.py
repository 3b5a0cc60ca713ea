"""The load generator's process: a spawned child that runs `bench.load` workloads on request.

Keeping the client in its own process gives it its own GIL and core, so what we measure is the
server, not the benchmark's bookkeeping. It is one long-lived process (not one per phase) so
phases do not pay interpreter start-up; it ignores SIGINT so that a Ctrl-C is handled once, by
the parent, which then stops it by PID.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import signal
import traceback
from multiprocessing.connection import Connection
from typing import Any

from . import load


def _serve(conn: Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        if request is None:
            return
        name, kwargs = request
        try:
            conn.send(("ok", getattr(load, name)(**kwargs)))
        except Exception as e:
            conn.send(("error", f"{type(e).__name__}: {e}\n{traceback.format_exc()}"))


class LoadError(RuntimeError):
    """A workload failed inside the load generator."""


class LoadProcess:
    """Handle on the load-generator child: `call("put_objects", ...)` runs it over there."""

    def __init__(self) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child,), name="bench-load", daemon=True)
        self._proc.start()
        child.close()

    @property
    def pid(self) -> int:
        return self._proc.pid or 0

    def call(self, name: str, **kwargs: Any) -> Any:
        self._conn.send((name, kwargs))
        status, value = self._conn.recv()
        if status != "ok":
            raise LoadError(f"{name} failed: {value}")
        return value

    def close(self) -> None:
        """Ask it to exit; terminate, then kill, by PID if it does not."""
        with contextlib.suppress(OSError):
            self._conn.send(None)
        self._proc.join(timeout=5)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(timeout=5)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()
        self._conn.close()
