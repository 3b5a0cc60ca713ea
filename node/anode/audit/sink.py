"""Where audit records go: a size-rotated file and/or stdout (synchronous, one line each, as
logging writes them), and an HTTP webhook through a bounded queue that a background task
drains in batches, so a slow or dead receiver never holds a request: when the queue is full
records are dropped and counted (`anode_audit_dropped_records_total`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import logging.handlers
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp

from .record import AuditRecord

if TYPE_CHECKING:
    from ..config import AuditConfig
    from ..metrics import Metrics

log = logging.getLogger(__name__)
BATCH = 500  # records per webhook POST at most
_WARN_EVERY = 60.0  # seconds between warnings about a failing webhook


class Webhook:
    """POSTs records as newline-delimited JSON, in batches, from a bounded queue."""

    def __init__(self, url: str, *, queue_size: int, timeout: float, metrics: Metrics) -> None:
        self.url = url
        self.timeout = timeout
        self.metrics = metrics
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize=queue_size)
        self._task: asyncio.Task[None] | None = None
        self._warned = 0.0

    def offer(self, line: str) -> None:
        """Queue a record without ever waiting; drop (and count) it when the queue is full."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        try:
            self.queue.put_nowait(line)
        except asyncio.QueueFull:
            self.metrics.audit_dropped.labels("queue_full").inc()

    async def _run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                batch = [await self.queue.get()]
                while len(batch) < BATCH and not self.queue.empty():
                    batch.append(self.queue.get_nowait())
                await self._post(session, batch)

    async def _post(self, session: aiohttp.ClientSession, batch: list[str]) -> None:
        body = ("\n".join(batch) + "\n").encode()
        try:
            async with session.post(
                self.url, data=body, headers={"Content-Type": "application/x-ndjson"}
            ) as response:
                if response.status >= 300:
                    raise aiohttp.ClientError(f"HTTP {response.status}")
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            self.metrics.audit_dropped.labels("send_failed").inc(len(batch))
            now = time.monotonic()
            if now - self._warned > _WARN_EVERY:
                self._warned = now
                log.warning(
                    "audit webhook %s failed (%s): %d records dropped",
                    self.url,
                    e or type(e).__name__,
                    len(batch),
                )

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class AuditLog:
    """The configured sinks of one node, and which categories reach them."""

    def __init__(
        self, config: AuditConfig, *, data_dir: Path, node_id: str, metrics: Metrics
    ) -> None:
        self.enabled = config.enabled
        self.categories = frozenset(config.categories)
        self.node_id = node_id
        self.metrics = metrics
        # a logger of its own, outside the logging tree: the node's log settings never touch it
        self.logger = logging.Logger("anode.audit.records", logging.INFO)
        self.logger.propagate = False
        formatter = logging.Formatter("%(message)s")
        handlers: list[logging.Handler] = []
        if config.enabled and config.file:
            path = Path(config.file)
            path = path if path.is_absolute() else data_dir / path
            path.parent.mkdir(parents=True, exist_ok=True)
            handlers.append(
                logging.handlers.RotatingFileHandler(
                    path, maxBytes=config.max_size, backupCount=config.backups, encoding="utf-8"
                )
            )
        if config.enabled and config.stdout:
            handlers.append(logging.StreamHandler(sys.stdout))
        for handler in handlers:
            handler.setFormatter(formatter)
            self.logger.addHandler(handler)
        self.webhook = (
            Webhook(
                config.webhook_url,
                queue_size=config.webhook_queue,
                timeout=config.webhook_timeout,
                metrics=metrics,
            )
            if config.enabled and config.webhook_url
            else None
        )

    def wants(self, category: str) -> bool:
        return self.enabled and category in self.categories

    def write(self, record: AuditRecord) -> None:
        line = record.to_json()
        self.metrics.audit_records.labels(record.category).inc()
        if self.logger.handlers:
            self.logger.info(line)
        if self.webhook is not None:
            self.webhook.offer(line)

    async def close(self) -> None:
        if self.webhook is not None:
            await self.webhook.close()
        for handler in list(self.logger.handlers):
            handler.close()
            self.logger.removeHandler(handler)
