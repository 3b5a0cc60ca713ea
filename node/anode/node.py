"""One node's services, wired together: metadata, consensus, chunks, collector, users, metrics.

The S3 and admin apps receive a `Node` and use only its public attributes; they never open files
or the database themselves.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from . import __version__
from .chunks.gc import Collector
from .chunks.reader import ChunkReader, LocalChunks
from .chunks.store import ChunkStore
from .config import Config
from .meta.commands import Command, CreateUser, Rejected
from .meta.consensus import Consensus, LocalConsensus
from .meta.store import MetaStore, open_db
from .metrics import Metrics
from .s3.errors import ErrorCode, S3Error
from .select import FooterCache

log = logging.getLogger(__name__)

ROOT_USER = "root"


def owner_id(name: str) -> str:
    """A stable canonical user id (64 hex digits, like S3's) derived from the user name."""
    return hashlib.sha256(f"anode-user:{name}".encode()).hexdigest()


@dataclass(frozen=True)
class User:
    name: str
    access_key: str
    secret_key: str

    @property
    def id(self) -> str:
        return owner_id(self.name)

    @property
    def is_root(self) -> bool:
        return self.name == ROOT_USER


class Node:
    def __init__(self, config: Config) -> None:
        self.config = config
        data = config.data_dir
        data.mkdir(parents=True, exist_ok=True)
        self.meta = MetaStore(open_db(data / "meta"))
        self.chunks = ChunkStore(data / "chunks")
        self.chunks.is_referenced = lambda digest: self.meta.chunk_refs(digest) > 0
        self.chunk_reader: ChunkReader = LocalChunks(self.chunks)
        self.consensus: Consensus = LocalConsensus(self.meta.state_machine, node_id=config.node.id)
        self.collector = Collector(
            chunks=self.chunks,
            meta=self.meta,
            consensus=self.consensus,
            grace=config.storage.gc_grace,
        )
        parquet = config.parquet
        self.footer_cache = FooterCache(int(parquet.cache_size) if parquet.enable_cache else 0)
        self.metrics = Metrics(self)
        self.root = User(ROOT_USER, config.root.access_key, config.root.secret_key)
        self.started = time.time()
        self.ready = False
        self._tasks: list[asyncio.Task[Any]] = []

    async def start(self) -> None:
        if isinstance(self.consensus, LocalConsensus):
            self.consensus.start()
        for user in self.config.users:
            await self.propose(
                CreateUser(
                    name=user.name,
                    access_key=user.access_key,
                    secret_key=user.secret_key,
                    owner_id=owner_id(user.name),
                    created=time.time(),
                    managed="config",
                )
            )
        await self.collector.sweep_orphans(startup=True)
        self._tasks.append(
            asyncio.create_task(
                self.collector.run(interval=self.config.storage.gc_interval), name="collector"
            )
        )
        self.ready = True

    async def stop(self) -> None:
        self.ready = False
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.consensus.close()
        self.meta.close()

    async def propose(self, command: Command) -> Any:
        """Propose one command; a rejection becomes the S3 error it names."""
        (result,) = await self.consensus.propose([command])
        if isinstance(result, Rejected):
            code = ErrorCode.__members__.get(result.code)
            if code is None:
                raise LookupError(result.code, result.message)
            raise S3Error(code, result.message)
        return result

    def user_by_access_key(self, access_key: str) -> User | None:
        if self.root.access_key and access_key == self.root.access_key:
            return self.root
        record = self.meta.user_by_access_key(access_key)
        if record is None:
            return None
        return User(record["name"], record["access_key"], record["secret_key"])

    def secret_for(self, access_key: str) -> str | None:
        user = self.user_by_access_key(access_key)
        return user.secret_key if user else None

    def status(self) -> dict[str, Any]:
        cfg = self.config.node
        advertise = cfg.advertise_host or "127.0.0.1"
        s3_port = cfg.s3_addr.rsplit(":", 1)[1]
        admin_port = cfg.admin_addr.rsplit(":", 1)[1]
        stats = self.meta.stats()
        consensus = self.consensus.status()
        return {
            "node_id": cfg.id,
            "version": __version__,
            "ready": self.ready,
            **consensus,
            "members": [
                {
                    "id": cfg.id,
                    "s3_url": f"http://{advertise}:{s3_port}",
                    "admin_url": f"http://{advertise}:{admin_port}",
                    "voter": True,
                    "healthy": self.ready,
                }
            ],
            "storage": {
                **stats,
                "dedup_saved_bytes": stats["logical_bytes"] - stats["stored_bytes"],
                "gc_deleted_chunks": self.collector.deleted,
            },
            "uptime_seconds": round(time.time() - self.started, 3),
        }
