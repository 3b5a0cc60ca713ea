"""Free space on the data volume: writes stop before it runs out, so deletes never have to.

Chunks, the metadata RocksDB and the Raft journal share one volume. Two lines of defence, each
`storage.reserve` bytes:

* admission: a write (PUT, POST, copy, multipart) is refused with 507 InsufficientStorage when,
  after it and the writes still in flight, less than `reserve` bytes would stay free. Deletes,
  lifecycle expiry, the collector and RocksDB's flushes and compactions live off that headroom.
* the reserve file `<data_dir>/reserve`: `reserve` bytes allocated on the volume. When free
  space falls below half the reserve anyway (another process filled the volume, compactions),
  it is deleted, so deletes, collection and a restart (RocksDB replays its WAL into a new table
  file) still find room; it is allocated again once the volume has room for it and more.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import ErrorCode, Refused

log = logging.getLogger(__name__)

RESERVE_FILE = "reserve"


@dataclass(frozen=True)
class Volume:
    total: int
    free: int  # available to this (unprivileged or not) process: statvfs f_bavail


def volume(path: Path) -> Volume:
    st = os.statvfs(path)
    return Volume(total=st.f_blocks * st.f_frsize, free=st.f_bavail * st.f_frsize)


def reserve_action(*, free: int, reserve: int, held: bool) -> str | None:
    """The reserve file's fate at `free` bytes free: "release", "allocate" or None (pure)."""
    if reserve <= 0:
        return "release" if held else None
    if held and free < reserve // 2:
        return "release"
    if not held and free >= 2 * reserve + reserve // 2:  # after allocating: well above release
        return "allocate"
    return None


class SpaceGuard:
    """Admission of writes by free space, and the reserve file. Admission runs on the event
    loop; `rebalance` does file I/O (start-up, or a worker thread)."""

    def __init__(self, data_dir: Path, *, reserve: int) -> None:
        self.data_dir = data_dir
        self.reserve = reserve
        self.file = data_dir / RESERVE_FILE
        self.pending = 0  # bytes admitted writes may still add
        self.refused = 0  # writes refused so far

    def volume(self) -> Volume:
        return volume(self.data_dir)

    def held(self) -> int:
        try:
            return self.file.stat().st_size
        except FileNotFoundError:
            return 0

    def writable(self, size: int = 0) -> bool:
        return self.volume().free - self.pending - size >= self.reserve

    @contextlib.contextmanager
    def admitted(self, size: int) -> Iterator[None]:
        """Count `size` bytes as in flight for the block; 507 if they would eat the reserve.
        Size 0 (deletes, reads) is always admitted."""
        if size > 0 and not self.writable(size):
            self.refused += 1
            raise Refused(
                ErrorCode.InsufficientStorage,
                "The node's data volume is nearly full (storage.reserve); delete "
                "objects to free space",
            )
        self.pending += size
        try:
            yield
        finally:
            self.pending -= size

    def rebalance(self) -> str | None:
        """Release or allocate the reserve file as the free space asks; what was done."""
        held = self.file.exists()
        action = reserve_action(free=self.volume().free, reserve=self.reserve, held=held)
        if action == "release":
            self.file.unlink(missing_ok=True)
            log.warning(
                "data volume nearly full: released the %d-byte reserve file %s so "
                "that deletes and restarts keep working",
                self.reserve,
                self.file,
            )
        elif action == "allocate":
            self._allocate()
        return action

    def _allocate(self) -> None:
        temp = self.file.with_suffix(".tmp")
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.posix_fallocate(fd, 0, self.reserve)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(temp, self.file)
        except OSError as e:  # e.g. the space went meanwhile: try again later
            temp.unlink(missing_ok=True)
            log.warning("could not allocate the reserve file %s: %s", self.file, e)

    def status(self) -> dict[str, int | bool]:
        vol = self.volume()
        return {
            "total_bytes": vol.total,
            "free_bytes": vol.free,
            "reserve_bytes": self.reserve,
            "reserve_file_bytes": self.held(),
            "pending_write_bytes": self.pending,
            "writable": vol.free - self.pending >= self.reserve,
            "writes_refused": self.refused,
        }
