"""Where a chunk lives: rendezvous (highest-random-weight) hashing of its id over the members.

Every node computes the same ranking from the same member list, with no coordination, and a
membership change moves only the chunks whose top-ranked holders changed (about 1/N of them).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def rank(digest: bytes, members: Iterable[str]) -> list[str]:
    """All members, best holder first, for this chunk."""
    return sorted(members, key=lambda m: hashlib.sha256(m.encode() + b"\x00" + digest).digest(),
                  reverse=True)


def holders(digest: bytes, members: Iterable[str], replication_factor: int) -> list[str]:
    """The `replication_factor` members that should hold this chunk (fewer if not enough)."""
    return rank(digest, members)[:replication_factor]
