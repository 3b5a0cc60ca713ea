"""Who acts: the root user's name, users as the S3 and admin APIs authenticate them, and the
canonical user ids S3 shows as owners and grantees.

Leaf: pure, no Anode imports. User records themselves live in the metadata (`N/`, `K/`), written
by CreateUser / DeleteUser; `Node.user_by_access_key` reads them into a `User`.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

ROOT_USER = "root"


@functools.lru_cache(maxsize=4096)
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
