"""The pysyncobj object: the replicated methods and the transport that syncs before sending.

`Replica` is driven by `RaftConsensus`'s own thread (autoTick off), which lets us swap in the
`DurableJournal` before the first tick and run calls that pysyncobj does not make thread-safe
(transfer, status) between ticks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pysyncobj import SyncObj, SyncObjConf, replicated

from . import wire
from .journal import DurableJournal
from .tcp import GuardedTransport

# apply(encoded_commands, log_index) -> results; called in the Raft thread in log order.
Apply = Callable[[list[bytes], int], list[Any]]
# register(node_id, address, voter, log_index); an empty address removes the record.
Register = Callable[[str, str, bool, int], None]


class SyncingTransport(GuardedTransport):
    """TCP transport that makes the journal durable before any message leaves the node.

    Every message that states something about our log or term (an acknowledgement, a vote, the
    leader's entries) is then backed by disk, with one fsync for all changes since the last one.
    """

    def send(self, node: Any, message: Any) -> bool:
        journal = getattr(self._syncObj, "_SyncObj__raftLog", None)
        if isinstance(journal, DurableJournal):
            journal.sync()
        return super().send(node, message)


class Replica(SyncObj):
    """One Raft member; `apply_entry` is the only replicated write to the state machine."""

    _SyncObj__raftLog: Any  # pysyncobj's private journal, wrapped below when it is a file

    def __init__(
        self,
        self_address: str | None,
        others: list[str],
        conf: SyncObjConf,
        *,
        apply: Apply,
        register: Register,
    ) -> None:
        self._apply = apply
        self._register = register
        wire.tune()
        # before the transport asks for it; room for a full AppendEntries batch plus one more
        # entry (half a batch at most), or one chunk of a snapshot
        max_frame = 2 * conf.appendEntriesBatchSizeBytes + conf.logCompactionBatchSize + (1 << 20)
        self._frames = wire.SealedFrames(conf.password, max_frame=max_frame)
        super().__init__(self_address, others, conf, transportClass=SyncingTransport)
        inner = self._SyncObj__raftLog
        if conf.journalFile is not None:
            self._SyncObj__raftLog = DurableJournal(inner, path=conf.journalFile)

    @property
    def encryptor(self) -> wire.SealedFrames:
        """What the transport seals frames with (pysyncobj's own is Fernet)."""
        return self._frames

    def _getEncryptor(self) -> wire.SealedFrames:  # pysyncobj's name
        return self._frames

    @property
    def journal(self) -> DurableJournal | None:
        journal = self._SyncObj__raftLog
        return journal if isinstance(journal, DurableJournal) else None

    def wake(self) -> None:
        """Interrupt the tick's poll (used after queueing work from another thread)."""
        notifier = getattr(self, "_SyncObj__pipeNotifier", None)
        if notifier is not None:
            notifier.notify()

    @replicated
    def apply_entry(self, encoded: list[bytes]) -> list[Any]:
        # pysyncobj increments raftLastApplied after this returns: this entry is the next one.
        return self._apply(encoded, self.raftLastApplied + 1)

    @replicated
    def register_member(self, node_id: str, address: str, voter: bool) -> None:
        self._register(node_id, address, voter, self.raftLastApplied + 1)
