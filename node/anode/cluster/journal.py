"""The Raft journal pysyncobj writes, made durable and safe to truncate.

pysyncobj keeps its log in an mmap'ed file that it never syncs: it survives `kill -9` but not a
power cut. `DurableJournal` wraps that `FileJournal` and adds two things:

* Durability: every mutation marks the journal dirty, and `sync()` (msync + fsync of the log, an
  fsync'ed copy of the term/vote file) runs before any message leaves this node (see
  `transport.SyncingTransport`) and before each tick computes commits. So a follower's "I have
  entries up to N" and a vote are only sent once they are on disk, and the leader's own entries
  are on disk before it sends them — Raft's persistence rule, batched: one fsync covers every
  entry appended since the previous message.

* Safe truncation: on an AppendEntries whose `prevLogIdx` is before the end of the log, pysyncobj
  deletes everything after `prevLogIdx` and re-appends the message's entries without comparing
  terms (logging `CRITICAL truncating already-applied log entries` when some were applied).
  Under load that is common and mostly harmless — the leader moves its optimistic `nextIndex`
  back when an older acknowledgement arrives, so it re-sends entries the follower already holds,
  which by the Log Matching property are identical. It is not harmless when the message carries
  fewer entries than the follower holds (its 64 KiB batch limit): the follower then forgets
  entries it has already acknowledged, which the leader may have counted toward a commit. Here
  the delete is deferred: an appended entry identical in (index, term) to the one already at
  that position is kept; the first differing one truncates for real (Raft §5.3); and a tail the
  message did not cover is kept only when all of it was written in the current term (so it came
  from this term's only leader and is in its log) and holds no membership change (pysyncobj
  has already rolled those back) — otherwise it is dropped as pysyncobj would.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from pysyncobj.journal import FileJournal
from pysyncobj.syncobj import _COMMAND_TYPE

_MEMBERSHIP = bytes([_COMMAND_TYPE.MEMBERSHIP])


class DurableJournal:
    """A `FileJournal` proxy with an fsync policy and conflict-only truncation."""

    def __init__(self, inner: FileJournal, *, path: str) -> None:
        self._inner = inner
        self._path = path
        self._dirty = False
        self._meta_dirty = False
        self._pending_cut: int | None = None  # list position of a deferred deleteEntriesFrom
        self._lock = threading.Lock()
        self.syncs = 0
        self.kept_on_truncate = 0  # entries the deferred truncation did not have to delete

    # ---- durability -----------------------------------------------------------------------

    def sync(self) -> None:
        """Make every mutation so far durable (no-op when nothing changed)."""
        self._resolve_cut()
        with self._lock:
            if self._dirty:
                # Not msync: on Linux pages written through a shared mapping are dirty in the
                # page cache like any other, and fdatasync writes them (and a resize's new
                # size); msync of the whole mapping walks every page of the log, and was ~10 % of
                # the Raft thread's samples under load.
                fd = os.open(self._path, os.O_RDONLY)
                try:
                    os.fdatasync(fd)
                finally:
                    os.close(fd)
                self._dirty = False
                self.syncs += 1
            if self._meta_dirty:
                self._inner.onOneSecondTimer()  # writes the meta file if it changed
                _fsync_file(self._path + ".meta")
                _fsync_file(os.path.dirname(self._path) or ".")
                self._meta_dirty = False

    # ---- journal interface used by pysyncobj ----------------------------------------------

    def add(self, command: bytes, idx: int, term: int) -> None:
        cut = self._pending_cut
        if cut is not None:
            if cut < len(self._inner):
                existing = self._inner[cut]
                if existing[1] == idx and existing[2] == term:
                    self._pending_cut = cut + 1  # same entry: keep it, nothing to write
                    self.kept_on_truncate += 1
                    return
                self._inner.deleteEntriesFrom(cut)  # a real conflict
            self._pending_cut = None
        self._inner.add(command, idx, term)
        self._dirty = True

    def deleteEntriesFrom(self, entryFrom: int) -> None:
        self._resolve_cut()
        if entryFrom < len(self._inner):
            self._pending_cut = entryFrom

    def deleteEntriesTo(self, entryTo: int) -> None:
        """Log compaction, right after pysyncobj renamed the new dump into place.

        `FileJournal.deleteEntriesTo` rewrites the file in place (clear, then re-add the kept
        entries), so a crash in between loses the kept — acknowledged — entries. Instead the
        kept entries go to a new file that replaces the journal with an atomic rename, after
        the dump's own rename is made durable.
        """
        directory = os.path.dirname(self._path) or "."
        _fsync_file(directory)
        self._resolve_cut()
        keep = [self._inner[i] for i in range(entryTo, len(self._inner))]
        fresh_path = self._path + ".compact"
        if os.path.exists(fresh_path):
            os.remove(fresh_path)
        fresh = FileJournal(fresh_path)
        for entry in keep:
            fresh.add(*entry)
        fresh._destroy()  # flushes and closes the mapping
        _fsync_file(fresh_path)
        self._inner.onOneSecondTimer()  # term, vote and commit index stay in <journal>.meta
        self._inner._destroy()
        os.replace(fresh_path, self._path)
        _fsync_file(directory)
        self._inner = FileJournal(self._path)
        self._dirty = False

    def clear(self) -> None:
        _fsync_file(os.path.dirname(self._path) or ".")  # same, for an installed snapshot
        self._pending_cut = None
        self._inner.clear()
        self._dirty = True

    def __getitem__(self, item: Any) -> Any:
        self._resolve_cut()
        return self._inner[item]

    def __len__(self) -> int:
        self._resolve_cut()
        return len(self._inner)

    def setRaftCommitIndex(self, raftCommitIndex: int) -> None:
        self._resolve_cut()
        self._inner.setRaftCommitIndex(raftCommitIndex)  # advisory: saved once a second

    def getRaftCommitIndex(self) -> int:
        return self._inner.getRaftCommitIndex()

    def setCurrentTerm(self, term: int, votedForNodeId: Any) -> None:
        self._inner.setCurrentTerm(term, votedForNodeId)
        self._meta_dirty = True

    def getCurrentTerm(self) -> int:
        return self._inner.getCurrentTerm()

    def getVotedForNodeId(self) -> Any:
        return self._inner.getVotedForNodeId()

    def onOneSecondTimer(self) -> None:
        self._inner.onOneSecondTimer()

    def flush(self) -> None:
        self.sync()

    def _destroy(self) -> None:
        self.sync()
        self._inner._destroy()

    # ---- deferred truncation --------------------------------------------------------------

    def _resolve_cut(self) -> None:
        """Finish a deferred delete: drop the uncovered tail unless it is all current-term."""
        cut = self._pending_cut
        if cut is None:
            return
        self._pending_cut = None
        if cut >= len(self._inner):
            return
        term = self._inner.getCurrentTerm()
        tail = [self._inner[i] for i in range(cut, len(self._inner))]
        # pysyncobj has already rolled back the membership changes of the entries it meant to
        # delete and re-applies only those it receives: a kept tail must not contain any.
        if all(e[2] == term and e[0][:1] != _MEMBERSHIP for e in tail):
            self.kept_on_truncate += len(tail)
            return
        self._inner.deleteEntriesFrom(cut)
        self._dirty = True


def _fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
