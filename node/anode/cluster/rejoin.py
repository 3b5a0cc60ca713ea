"""A member whose volume was lost rejoins as a learner, then as a new voter, never as itself.

Raft's safety rests on every voter keeping its log and its vote across restarts. A member that
comes back on an empty volume under the same id (a deleted PVC) has forgotten both: as a voter it
could elect a leader that misses entries it had acknowledged, or vote twice in one term. So a
member that finds no Raft journal although `[cluster] initial_state = "existing"` and `peers`
name it a voter starts as a learner instead (it neither votes nor counts for commits), and
becomes a voter again only after:

1. it has caught up with a leader: the index it reached then is `since`;
2. its old voter entry was removed from the configuration by a change applied after `since`
   (the operator, or `anode members remove`; the removal commits on a majority without it, so a
   vote or acknowledgement of the old incarnation cannot count any more);
3. it has been added back like any learner (`add_member`, which waits until it caught up).

The state is a small JSON file in the Raft directory, written before the member starts and
removed when it is a voter again, so a restart half-way resumes where it stopped.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

FILE = "rejoin"
JOURNAL = "raft.journal"


@dataclass(frozen=True)
class Rejoin:
    since: int | None = None  # applied index when first caught up with a leader
    removed: bool = False  # the old voter entry's removal was applied after `since`

    def caught_up(self, applied: int) -> Rejoin:
        return self if self.since is not None else replace(self, since=applied)

    def removal_applied(self, index: int) -> Rejoin:
        """Only a removal after `since` is ours: older ones are the log's history."""
        if self.since is None or index <= self.since or self.removed:
            return self
        return replace(self, removed=True)


def lost_volume(raft_dir: Path) -> bool:
    """No journal: this volume never held this member's Raft state."""
    return not (raft_dir / JOURNAL).exists()


def load(raft_dir: Path) -> Rejoin | None:
    try:
        raw = json.loads((raft_dir / FILE).read_text())
    except FileNotFoundError:
        return None
    return Rejoin(since=raw.get("since"), removed=bool(raw.get("removed")))


def save(raft_dir: Path, state: Rejoin) -> None:
    """Atomically, and durably before the member acts on it."""
    raft_dir.mkdir(parents=True, exist_ok=True)
    tmp = raft_dir / (FILE + ".tmp")
    with open(tmp, "w") as out:
        json.dump(asdict(state), out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, raft_dir / FILE)
    _fsync_dir(raft_dir)


def clear(raft_dir: Path) -> None:
    (raft_dir / FILE).unlink(missing_ok=True)
    _fsync_dir(raft_dir)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
