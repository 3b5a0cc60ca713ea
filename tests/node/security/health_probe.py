"""Measures whether a node's event loop stays responsive while a test attacks it."""

from __future__ import annotations

import threading
import time
import urllib.request


class HealthProbe:
    """GET the admin `/health` of a node (or ``url``) back to back in a thread during a `with`
    block.

    The admin API shares the S3 API's event loop, so `worst` (the slowest answer, seconds; a
    failed request counts with its duration) is how long other clients were kept waiting."""

    def __init__(self, node, url: str | None = None, interval: float = 0.05) -> None:
        self.url = url or node.admin_url + "/health"
        self.interval = interval
        self.latencies: list[float] = []
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                with urllib.request.urlopen(self.url, timeout=30) as response:
                    response.read()
            except OSError:
                self.failures += 1
            self.latencies.append(time.monotonic() - started)
            self._stop.wait(self.interval)

    @property
    def worst(self) -> float:
        return max(self.latencies, default=0.0)

    def __enter__(self) -> HealthProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
