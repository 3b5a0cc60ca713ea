"""The metadata state machine: `apply(command) -> result`, the only writer of metadata.

Deterministic: a command's outcome depends only on the command and the current database, so every
replica that applies the same log reaches the same state (`cluster/raft.py` replicates the
commands). Each command is written as one RocksDB WriteBatch (`tx.Tx`), so it is all-or-nothing
on disk; chunk reference counts move in the same batch as the versions that hold them.

Where a command is applied: `APPLY` below names one function per command type, by record family:
`apply_buckets`, `apply_objects`, `apply_uploads`, `apply_cluster`; the steps they share on
object versions are `version_steps`. This module adds the Raft apply-once bookkeeping.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from rocksdict import Rdict, WriteBatch

from . import apply_buckets, apply_cluster, apply_objects, apply_uploads
from . import commands as c
from . import layout as L
from .apply_uploads import multipart_etag
from .layout import scan
from .tx import SYNCED, UNSYNCED, CommandRefused, Tx

__all__ = ["APPLY", "RAFT_POSITION_KEY", "StateMachine", "multipart_etag", "scan"]

# Raft mode only: "index:position" of the last applied log entry and how many of its commands.
RAFT_POSITION_KEY = b"S/raft"

# The one place a command type meets the function that applies it (`test_state_dispatch.py`
# checks that every type in `commands.Command` has exactly one).
APPLY: dict[type, Callable[[Tx, Any], Any]] = {
    c.CreateBucket: apply_buckets.create_bucket,
    c.DeleteBucket: apply_buckets.delete_bucket,
    c.SetBucketConfig: apply_buckets.set_bucket_config,
    c.SetBucketQuota: apply_buckets.set_bucket_quota,
    c.SetBucketVersioning: apply_buckets.set_bucket_versioning,
    c.SetBucketTagging: apply_buckets.set_bucket_tagging,
    c.PutObject: apply_objects.put_object,
    c.DeleteObjects: apply_objects.delete_objects,
    c.SetObjectAcl: apply_objects.set_object_acl,
    c.SetObjectTagging: apply_objects.set_object_tagging,
    c.SetObjectLock: apply_objects.set_object_lock,
    c.CreateUpload: apply_uploads.create_upload,
    c.PutPart: apply_uploads.put_part,
    c.CompleteUpload: apply_uploads.complete_upload,
    c.AbortUpload: apply_uploads.abort_upload,
    c.CreateUser: apply_cluster.create_user,
    c.DeleteUser: apply_cluster.delete_user,
    c.RegisterNode: apply_cluster.register_node,
    c.SetNodeState: apply_cluster.set_node_state,
    c.ForgetGarbage: apply_cluster.forget_garbage,
    c.RecordCoded: apply_cluster.record_coded,
    c.InitMasterKey: apply_cluster.init_master_key,
    c.CreateKmsKey: apply_cluster.create_kms_key,
    c.SetKmsKeyEnabled: apply_cluster.set_kms_key_enabled,
}


class StateMachine:
    """Applies commands to RocksDB. Single-threaded by contract: one applier at a time."""

    def __init__(self, db: Rdict) -> None:
        self.db = db
        # Told the keys of every committed write (None: possibly all of them) after they are in
        # the database: MetaStore's read cache listens.
        self.on_write: Callable[[Iterable[bytes] | None], None] = lambda keys: None
        # Bumped when a snapshot starts replacing the database and again when it is complete:
        # odd while readers may see a part of it (`consistent_since`).
        self.restore_epoch = 0

    def consistent_since(self, epoch: int) -> bool:
        """Whether reads since `restore_epoch` was `epoch` saw whole states, no restore half
        done (a user, bucket or object missing then proves nothing)."""
        return epoch % 2 == 0 and self.restore_epoch == epoch

    # ---- entry points --------------------------------------------------------------------

    def apply(self, command: c.Command) -> Any:
        return self.apply_many([command])[0]

    def apply_many(self, commands: list[c.Command], *, index: int | None = None) -> list[Any]:
        """Apply in order, then make the whole group durable with one WAL sync.

        With `index` (the Raft log index of the entry that carries `commands`), each entry is
        applied exactly once even though Raft replays its journal after a restart: every
        command's WriteBatch also records `S/raft` = "index:position", so a replay skips what is
        already on disk, even when the process died half way through an entry, and `S/applied`
        becomes `index`. No WAL sync in that mode: the Raft journal is the durable log, and the
        prefix RocksDB recovers after a crash is completed by the replay. A command that raises
        gets the exception as its result (a follower must not stop applying the log).
        """
        if index is not None:
            return self._apply_entry(commands, index)
        results = [self._apply_one(cmd) for cmd in commands]
        applied = int(self.db.get(L.APPLIED_KEY) or b"0") + len(commands)
        self.db.put(L.APPLIED_KEY, str(applied).encode(), SYNCED)
        return results

    def raft_position(self) -> tuple[int, int]:
        """(log index, commands of that entry applied) of the last Raft entry applied."""
        raw = self.db.get(RAFT_POSITION_KEY)
        if raw is None:
            return 0, 0
        index, position = raw.split(b":")
        return int(index), int(position)

    def _apply_entry(self, commands: list[c.Command], index: int) -> list[Any]:
        done_index, done = self.raft_position()
        if index < done_index or (index == done_index and done >= len(commands)):
            return [None] * len(commands)  # a journal replay of an entry already on disk
        start = done if index == done_index else 0
        results: list[Any] = [None] * start
        for position in range(start, len(commands)):
            marker = f"{index}:{position + 1}".encode()
            try:
                results.append(self._apply_one(commands[position], marker=marker))
            except Exception as exc:  # deterministic on every replica: record it and go on
                self.db.put(RAFT_POSITION_KEY, marker, UNSYNCED)
                results.append(exc)
        batch = WriteBatch(raw_mode=True)
        batch.put(RAFT_POSITION_KEY, f"{index}:{len(commands)}".encode())
        batch.put(L.APPLIED_KEY, str(index).encode())
        self.db.write(batch, UNSYNCED)
        return results

    def _apply_one(self, command: c.Command, *, marker: bytes | None = None) -> Any:
        tx = Tx(self.db)
        try:
            result = APPLY[type(command)](tx, command)
        except CommandRefused as refused:  # a shared step refused deep inside the command
            result = refused.rejected
        if not isinstance(result, c.Rejected):
            over = tx.over_quota()
            if over is not None:
                result = c.Rejected("QuotaExceeded", over)
        if marker is not None:
            tx.batch.put(RAFT_POSITION_KEY, marker)  # atomically with the command's writes
        if not isinstance(result, c.Rejected):
            tx.commit()
            self.on_write(tx.overlay.keys())
        elif marker is not None:
            self.db.put(RAFT_POSITION_KEY, marker, UNSYNCED)
        return result
