"""Object lock rules (retention and legal hold): pure checks the state machine applies.

A version record may carry `lock` ({"mode": "GOVERNANCE" | "COMPLIANCE", "until": epoch seconds})
and `hold` ("ON"). They are checked where versions disappear or change, inside `apply`, so that
the decision uses the replicated state and the proposer's clock (`now` travels in the command),
never a replica's own clock: every replica refuses or accepts the same commands.
"""

from __future__ import annotations

from typing import Any

from .records import VersionRecord

GOVERNANCE = "GOVERNANCE"
COMPLIANCE = "COMPLIANCE"
MODES = (GOVERNANCE, COMPLIANCE)


def retained(record: VersionRecord, now: float) -> str | None:
    """The mode of the record's unexpired retention, if any."""
    lock = record.get("lock")
    if lock and lock.get("until", 0) > now:
        return lock.get("mode")
    return None


def deletion_refused(record: VersionRecord, *, now: float, bypass: bool) -> bool:
    """Whether a version may not be permanently deleted (or replaced) now.

    A legal hold always protects; COMPLIANCE retention until it expires; GOVERNANCE retention
    unless the caller asked to bypass it (and was allowed to: the handler checked)."""
    if record.get("marker"):
        return False
    if record.get("hold") == "ON":
        return True
    mode = retained(record, now)
    return mode == COMPLIANCE or (mode == GOVERNANCE and not bypass)


def retention_change_refused(
    record: VersionRecord, new: dict[str, Any], *, now: float, bypass: bool
) -> bool:
    """Whether replacing the record's retention by `new` ({} removes it) alters an active lock.

    Extending (a later date, same mode) is always allowed. Anything else, a change of mode
    included, is refused under COMPLIANCE and needs the bypass under GOVERNANCE (AWS refuses
    GOVERNANCE -> COMPLIANCE without it too)."""
    mode = retained(record, now)
    if mode is None:
        return False
    old = record["lock"]
    alters = not new or new.get("until", 0) < old["until"] or new.get("mode") != mode
    if not alters:
        return False
    return mode == COMPLIANCE or not bypass
