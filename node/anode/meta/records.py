"""The shapes of the metadata records, as `TypedDict`s: typing only, so nothing changes on disk.

Records are msgpack maps (`layout.pack`); these types say which keys a map may hold and what
they mean, for mypy and for readers. Keys are short because every record is stored and
replicated many times. How records evolved (an older record lacks the later keys, and readers
must accept that):
- versions: `vid` since versioning (an `O/` record without `vid` is a pre-versioning `null`
  version holding its own references; one with `vid` is a copy of the newest `V/` entry);
  `cks`/`cktype` since additional checksums; `part_cks` since GetObjectAttributes; `sse` since
  encryption; `lock`/`hold` since object lock;
- buckets: `Q/` usage since quotas (a bucket without it is counted on demand);
  `objectlock`, `encryption`, `lifecycle`, `tags` since those features.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, Required, TypedDict

# A chunk reference as stored: [sha256 (32 bytes), size]; a 2-list, as msgpack gives it back.
ChunkRef = list[Any]

VersionRecord = TypedDict(  # functional syntax: "class" (the storage class) is a keyword
    "VersionRecord",
    {
        "mtime": Required[float],
        "owner": Required[str],  # the user name of the writer (the ACL's owner is in `acl`)
        "size": int,
        "etag": str,  # quoted, as S3 answers it
        "chunks": list[ChunkRef],
        "vid": str,  # the version id ("null" for the null version)
        "marker": bool,  # a delete marker: no size, etag or chunks
        "cks": dict[str, str],  # checksum algorithm -> base64 digest
        "cktype": Literal["FULL_OBJECT", "COMPOSITE"],
        "parts": list[int],  # part sizes of a multipart object
        "part_cks": list[dict[str, str]],
        "upload_id": str,  # the multipart upload that made it
        "ctype": str,  # Content-Type
        "meta": dict[str, str],  # x-amz-meta-*
        "hdrs": dict[str, str],  # other stored headers (Content-Encoding, Cache-Control, ...)
        "class": str,  # storage class
        "acl": Any,  # s3/acl.py's stored ACL
        "tags": list[list[str]],
        "lock": dict[str, Any],  # retention: {"mode", "until"}
        "hold": str,  # legal hold: "ON" or "OFF"
        "sse": dict[str, Any],  # s3/sse.py Encryption.record()
    },
    total=False,
)


class BucketRecord(TypedDict, total=False):
    owner: Required[str]
    created: Required[float]
    region: str
    versioning: Literal["Enabled", "Suspended"]
    quota: dict[str, int]  # meta/quota.py quota_record
    tags: list[list[str]]
    # SetBucketConfig settings (commands.BUCKET_SETTINGS), each as its S3 module stores it
    acl: Any
    ownership: str
    objectlock: dict[str, Any]
    policy: Any
    cors: Any
    pab: Any
    encryption: Any
    lifecycle: list[dict[str, Any]]


class UploadRecord(TypedDict):
    initiated: float
    owner: str
    record: VersionRecord  # the version's fields decided at CreateMultipartUpload
    algorithm: str | None
    cktype: NotRequired[str | None]


class PartRecord(TypedDict):
    size: int
    etag: str
    mtime: float
    chunks: list[ChunkRef]
    cks: NotRequired[dict[str, str]]


class UserRecord(TypedDict):
    name: str
    access_key: str
    secret_key: str
    owner_id: str
    created: float
    managed: str  # "config" (reconciled from the config file) or "api" (the admin API)
    email: NotRequired[str]


class NodeRecord(TypedDict):
    s3_url: str
    admin_url: str
    data_url: str
    state: Literal["active", "draining"]


class KmsKeyRecord(TypedDict):
    name: str
    wrapped: bytes
    created: float
    enabled: bool


class CodedRecord(TypedDict):
    """`X/<chunk id>`: an erasure-coded chunk (`chunks.erasure.Coded.record()`, RecordCoded)."""

    scheme: str  # "k+m"
    size: int  # chunk bytes
    span: int  # chunk bytes per data fragment
    offset: int  # where the chunk bytes start in a fragment (after both headers)
    digests: list[bytes]  # SHA-256 of each fragment, data fragments first
    raw: int  # bytes the k + m fragments take together
    at: NotRequired[float]  # the proposer's clock when it was (last) placed
