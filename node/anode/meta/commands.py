"""Metadata commands: the only way metadata changes.

Each command is a plain dataclass, serialisable with `encode`/`decode`, which is how it travels in
the Raft log (`cluster/raft.py`). Everything a command needs (times, generated ids, computed
ETags) is decided by the proposer and carried inside it, so applying it is deterministic on every
replica.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, get_args

from .layout import pack, unpack
from .records import CodedRecord, PartRecord, UploadRecord, VersionRecord


@dataclass(frozen=True)
class CreateBucket:
    bucket: str
    owner: str
    created: float
    region: str = "us-east-1"
    acl: dict[str, Any] | None = None  # x-amz-acl / x-amz-grant-* at creation (None: private)
    ownership: str | None = None  # x-amz-object-ownership at creation
    object_lock: bool = False  # x-amz-bucket-object-lock-enabled: also turns versioning on


@dataclass(frozen=True)
class DeleteBucket:
    bucket: str
    force: bool = False  # admin API: delete contents first
    # S3 (as AWS): uploads in progress do not keep a bucket alive; they go with it. False for
    # commands logged before this field, so replaying them decides as it did then.
    drop_uploads: bool = False


@dataclass(frozen=True)
class SetBucketConfig:
    """Set one access setting of a bucket (`value` None removes it).

    `name` is one of BUCKET_SETTINGS: the policy text, the ACL, the CORS rules, the
    PublicAccessBlock flags or the object ownership; they live in the bucket record.
    """

    bucket: str
    name: str
    value: Any = None


BUCKET_SETTINGS: tuple[str, ...] = (
    "policy", "acl", "cors", "pab", "ownership", "objectlock", "encryption"
)
BUCKET_SETTINGS += ("lifecycle",)  # rules as `s3.lifecycle` parses them


@dataclass(frozen=True)
class SetBucketQuota:
    """Limit the bucket's stored bytes and/or object versions (None: no limit on that; both None
    removes the quota). Writes that would go over are refused at apply time (QuotaExceeded)."""

    bucket: str
    max_bytes: int | None = None
    max_objects: int | None = None


@dataclass(frozen=True)
class SetObjectAcl:
    """Replace the ACL of the current version of bucket/key."""

    bucket: str
    key: str
    acl: dict[str, Any]
    version_id: str | None = None  # None: the current version


@dataclass(frozen=True)
class PutObject:
    """Make `record` the current version of bucket/key; `record["chunks"]` are already durable,
    or, for a small body, `inline` carries its one chunk's bytes (kept in the metadata)."""

    bucket: str
    key: str
    record: VersionRecord
    if_match: str | None = None  # ETag the current version must have
    if_none_match: bool = False  # If-None-Match: * (fail if the key exists)
    version_id: str | None = None  # the id this version gets if the bucket's versioning is Enabled
    inline: bytes | None = None
    # The `created` of the bucket the proposer authorised against: a write admitted on a stale
    # view must not land in a bucket of the same name created since by someone else.
    bucket_created: float | None = None


@dataclass(frozen=True)
class DeleteObjects:
    """Delete keys; with versioning, per key either one version (permanently) or the current one
    (which leaves a delete marker). Results are one dict per key, in order."""

    bucket: str
    keys: tuple[str, ...]
    version_ids: tuple[str | None, ...] = ()  # per key: the version to delete, None for current
    marker_ids: tuple[str, ...] = ()  # per key: the id of a delete marker an Enabled bucket makes
    mtime: float = 0.0  # of the delete markers
    owner: str = ""  # of the delete markers
    bypass: bool = False  # x-amz-bypass-governance-retention, allowed to the caller
    # per key (lifecycle): delete only if the version it names (or the current one) still has
    # this mtime, so that a version written after the proposer looked is never deleted
    if_mtimes: tuple[float | None, ...] = ()
    # per key (If-Match / <ETag>): delete only if the current version has this ETag ("*": any);
    # otherwise that key's result carries error PreconditionFailed, or NoSuchKey when none is
    if_matches: tuple[str | None, ...] = ()


@dataclass(frozen=True)
class CreateUpload:
    bucket: str
    key: str
    upload_id: str
    record: UploadRecord


@dataclass(frozen=True)
class PutPart:
    bucket: str
    key: str
    upload_id: str
    part_number: int
    record: PartRecord


@dataclass(frozen=True)
class CompleteUpload:
    bucket: str
    key: str
    upload_id: str
    parts: tuple[tuple[int, str], ...]  # (part number, ETag) as the client listed them
    mtime: float
    min_part_size: int
    if_match: str | None = None
    if_none_match: bool = False
    checksums: dict[str, str] = field(default_factory=dict)  # per part, in order: algo -> b64
    version_id: str | None = None  # the id this version gets if the bucket's versioning is Enabled
    object_size: int | None = None  # x-amz-mp-object-size: the size the client expects


@dataclass(frozen=True)
class AbortUpload:
    bucket: str
    key: str
    upload_id: str


@dataclass(frozen=True)
class SetBucketVersioning:
    """`Enabled` or `Suspended`; a bucket never returns to unversioned."""

    bucket: str
    status: str


@dataclass(frozen=True)
class SetObjectTagging:
    """Replace the tag set of one version (`version_id` None: the current one); () removes it."""

    bucket: str
    key: str
    version_id: str | None
    tags: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class SetObjectLock:
    """Change one version's object lock (`version_id` None: the current one).

    `retention` None leaves it, {} removes it, else {"mode", "until"}; `legal_hold` None leaves
    it, else "ON"/"OFF". `now` is the proposer's clock, so every replica judges expiry alike."""

    bucket: str
    key: str
    version_id: str | None
    now: float
    retention: dict[str, Any] | None = None
    legal_hold: str | None = None
    bypass: bool = False


@dataclass(frozen=True)
class SetBucketTagging:
    """Replace the bucket's tag set; None removes it (GetBucketTagging then says NoSuchTagSet)."""

    bucket: str
    tags: tuple[tuple[str, str], ...] | None


@dataclass(frozen=True)
class InitMasterKey:
    """Adopt `key` as the SSE-S3 master key unless one exists (the first proposal wins)."""

    key: bytes


@dataclass(frozen=True)
class CreateKmsKey:
    """Add a named SSE-KMS key whose material is already wrapped by the master key; a name that
    exists keeps its key (the first proposal wins, as for InitMasterKey)."""

    name: str
    wrapped: bytes
    created: float


@dataclass(frozen=True)
class SetKmsKeyEnabled:
    name: str
    enabled: bool


@dataclass(frozen=True)
class CreateUser:
    name: str
    access_key: str
    secret_key: str
    owner_id: str
    created: float
    managed: str = "api"  # "config" users are reconciled from the config file at start-up
    email: str = ""  # optional; ACL grants by e-mail address resolve to this user


@dataclass(frozen=True)
class DeleteUser:
    name: str


@dataclass(frozen=True)
class RegisterNode:
    """A node announces where its S3, admin and internode data APIs are (idempotent)."""

    node_id: str
    s3_url: str
    admin_url: str
    data_url: str


@dataclass(frozen=True)
class SetNodeState:
    """`active`, `draining` (its chunks move elsewhere) or `removed` (forgotten)."""

    node_id: str
    state: str


@dataclass(frozen=True)
class RecordCoded:
    """A chunk's k + m fragments are durable on their members (`erasure.Coded.record()`, with
    `at`: the proposer's clock): from now on it is read through them. Proposed before the
    version that refers to the chunk. An unreferenced chunk gets a garbage marker saying so
    (`layout.CODED_MARKER`): the collector removes it, fragments and record, only once `at` is
    `gc.IN_FLIGHT` old, since no member can see that a write using it is still receiving its
    body (the writer's pin is its own)."""

    digest: bytes
    coded: CodedRecord


@dataclass(frozen=True)
class ForgetGarbage:
    """The collector deleted these chunk files (or found them referenced again); inline chunks
    still unreferenced lose their bytes here, a grace period after their count reached zero, so
    that reads which looked up a version just before its deletion can still finish."""

    digests: tuple[bytes, ...]


Command = (
    CreateBucket
    | DeleteBucket
    | SetBucketConfig
    | SetBucketQuota
    | SetObjectAcl
    | PutObject
    | DeleteObjects
    | CreateUpload
    | PutPart
    | CompleteUpload
    | AbortUpload
    | SetBucketVersioning
    | SetObjectTagging
    | SetObjectLock
    | SetBucketTagging
    | InitMasterKey
    | CreateKmsKey
    | SetKmsKeyEnabled
    | CreateUser
    | DeleteUser
    | ForgetGarbage
    | RecordCoded
    | RegisterNode
    | SetNodeState
)

_TYPES: dict[str, type] = {cls.__name__: cls for cls in get_args(Command)}


def encode(command: Command) -> bytes:
    # Shallow: fields hold plain data (dicts, lists, tuples, scalars), which msgpack packs as
    # they are; dataclasses.asdict deep-copied every record (measured: ~3 % of a cluster's PUTs).
    fields = {f.name: getattr(command, f.name) for f in dataclasses.fields(command)}
    return pack([type(command).__name__, fields])


def decode(data: bytes) -> Command:
    name, fields = unpack(data)
    cls = _TYPES[name]
    for f in dataclasses.fields(cls):
        if f.name in fields and isinstance(fields[f.name], list) and f.type.startswith("tuple"):
            fields[f.name] = tuple(tuple(v) if isinstance(v, list) else v for v in fields[f.name])
    return cls(**fields)


@dataclass(frozen=True)
class Rejected:
    """A command that did not apply; `code` names an S3 ErrorCode."""

    code: str
    message: str | None = None
