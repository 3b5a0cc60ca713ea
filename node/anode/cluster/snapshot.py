"""Raft snapshots as RocksDB checkpoints, through pysyncobj's serializer/deserializer hooks.

pysyncobj compacts its log by asking for a "full dump" file and ships that file to followers
that are too far behind. Instead of a pickle of the whole state, the dump is a tar of a RocksDB
checkpoint (hard links to the immutable SST files, so taking it is cheap and consistent) plus the
small Raft bookkeeping pysyncobj hands us. Restoring writes the checkpoint's keys into the live
database in place — the `Rdict` object stays the same, so readers holding it (`MetaStore`) keep
working — and is skipped when the live database has already applied at least as far.

The dump comes from another member over the network, so it is unpacked by hand rather than with
`TarFile.extractall`: only regular files and directories under `db/`, no absolute names, no `..`,
no links or devices. (`extractall(filter="data")` would do the same, but only from Python 3.11.4
on; Debian 12's 3.11.2 raises TypeError on it, and such a member could never catch up.)

A dump that cannot be installed is remembered (`install_error`) until one is: pysyncobj logs the
exception and retries with the next dump, and the node's status says why it is not catching up.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import tarfile
import tempfile
import time
import uuid
from pathlib import Path, PurePosixPath
from typing import Any

from pysyncobj import pickle
from rocksdict import Checkpoint, Options, Rdict, WriteBatch, WriteOptions

from ..meta.state import RAFT_POSITION_KEY, StateMachine

log = logging.getLogger(__name__)

_SYNCED = WriteOptions()
_SYNCED.sync = True
_KEYSPACE_END = b"\xff" * 32
_RESTORE_BATCH = 5000


class CheckpointSnapshots:
    """The serializer/deserializer pair given to `SyncObjConf` (called in the Raft thread)."""

    def __init__(self, *, state_machine: StateMachine, work_dir: Path) -> None:
        self._sm = state_machine
        self._work_dir = work_dir
        self.taken = 0
        self.restored = 0
        self.install_failures = 0  # since the last dump that installed
        self.install_error: dict[str, Any] | None = None  # the latest failure, while failing

    def serialize(self, file_name: str, raft_data: Any) -> None:
        """Write the dump: runs between two applies, so the checkpoint matches `raft_data`."""
        checkpoint = self._work_dir / f"checkpoint-{uuid.uuid4().hex}"
        try:
            Checkpoint(self._sm.db).create_checkpoint(str(checkpoint))
            position = self._sm.db.get(RAFT_POSITION_KEY) or b"0:0"
            with open(file_name, "wb") as out:
                with tarfile.open(fileobj=out, mode="w") as tar:
                    _add_bytes(tar, "raft", pickle.dumps(raft_data))
                    _add_bytes(tar, "position", position)
                    tar.add(str(checkpoint), arcname="db")
                out.flush()
                os.fsync(out.fileno())
            self.taken += 1
        finally:
            shutil.rmtree(checkpoint, ignore_errors=True)

    def deserialize(self, file_name: str) -> Any:
        """Load the dump: restore the database from it unless ours is already as new."""
        try:
            raft_data = self._install(file_name)
        except Exception as exc:
            self.install_failures += 1
            self.install_error = {
                "error": f"{type(exc).__name__}: {exc}",
                "failures": self.install_failures,
                "at": time.time(),
            }
            log.error("cannot install a Raft snapshot (failure %d): %s", self.install_failures, exc)
            raise
        self.install_failures, self.install_error = 0, None
        return raft_data

    def _install(self, file_name: str) -> Any:
        with tarfile.open(file_name, mode="r") as tar:
            raft_data = pickle.loads(_read(tar, "raft"))
            position = _parse_position(_read(tar, "position"))
            if position <= self._sm.raft_position():
                return raft_data
            with tempfile.TemporaryDirectory(dir=self._work_dir) as tmp:
                extract_db(tar, Path(tmp))
                self._restore(Path(tmp) / "db")
        log.info("restored the metadata database from a snapshot at %s", position)
        self.restored += 1
        return raft_data

    def _restore(self, source: Path) -> None:
        """Replace every key of the live database with the checkpoint's.

        The position key is written last: a crash half way leaves a database without it, which
        the next start restores again from the same (already complete) dump file.
        """
        db = self._sm.db
        self._sm.restore_epoch += 1  # readers now may see a part of the state: not judge by it
        db.delete_range(b"", _KEYSPACE_END)
        self._sm.on_write(None)  # after each write: readers' caches keep nothing older
        snapshot = Rdict(str(source), Options(raw_mode=True))
        try:
            batch, count, position = WriteBatch(raw_mode=True), 0, None
            it = snapshot.iter()
            it.seek_to_first()
            while it.valid():
                key = it.key()
                if key == RAFT_POSITION_KEY:
                    position = it.value()
                else:
                    batch.put(key, it.value())
                    count += 1
                    if count % _RESTORE_BATCH == 0:
                        db.write(batch)
                        self._sm.on_write(None)
                        batch = WriteBatch(raw_mode=True)
                it.next()
            if position is not None:
                batch.put(RAFT_POSITION_KEY, position)
            db.write(batch, _SYNCED)
            self._sm.on_write(None)
        finally:
            snapshot.close()
            self._sm.restore_epoch += 1


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _read(tar: tarfile.TarFile, name: str) -> bytes:
    member = tar.extractfile(name)
    if member is None:
        raise ValueError(f"snapshot has no {name!r}")
    return member.read()


class UnsafeSnapshot(ValueError):
    """A dump member that is not a plain file or directory inside the dump."""


def extract_db(tar: tarfile.TarFile, dest: Path) -> None:
    """Write the dump's `db/` tree under `dest`: directories and regular files only."""
    for member in tar.getmembers():
        parts = PurePosixPath(member.name).parts
        if member.name.startswith("/") or ".." in parts or not parts:
            raise UnsafeSnapshot(f"snapshot member {member.name!r} escapes the snapshot")
        if not (member.isfile() or member.isdir()):
            raise UnsafeSnapshot(f"snapshot member {member.name!r} is not a file or directory")
        if parts[0] != "db":
            continue
        target = dest.joinpath(*parts)
        if member.isdir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        source = tar.extractfile(member)
        assert source is not None  # a regular file
        with source, open(target, "xb") as out:  # "x": a repeated name is refused too
            shutil.copyfileobj(source, out)


def _parse_position(raw: bytes) -> tuple[int, int]:
    index, position = raw.split(b":")
    return int(index), int(position)
