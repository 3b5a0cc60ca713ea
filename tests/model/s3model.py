"""A small in-memory model of S3: what a correct store answers, for the model-based harness.

Pure logic (no I/O): buckets with their versioning state and default encryption, keys with
their versions newest first (bodies, metadata, encryption, part sizes; `None` body = a delete
marker), and the answers a read must get. Version ids are the store's: the harness passes the
id a write was answered with. Semantics follow the S3 API reference (versioning, delete markers,
SSE-C, SSE-KMS, ranges per RFC 9110, partNumber).
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field

NULL = "null"
KMS_KEY = "model-key"  # the named KMS key the harness creates (admin POST /kms/keys)
# the KMS key (name) and encryption context (base64 JSON) of SSE-KMS mode i: the default key
# (aws/s3), the named key, the named key under a context
KMS_MODES = [("aws/s3", None), (KMS_KEY, None), (KMS_KEY, "eyJoYXJuZXNzIjoibW9kZWwifQ==")]


@dataclass(frozen=True)
class Enc:
    """How a version is encrypted: kind "" (none), "S3", "C" (with SSE-C key number `key`) or
    "KMS" (in KMS mode number `key`, see KMS_MODES)."""

    kind: str = ""
    key: int = -1

    def __str__(self) -> str:
        return {"": "none", "S3": "SSE-S3"}.get(self.kind, f"SSE-{self.kind}#{self.key}")

    def answer(self) -> dict[str, str | None]:
        """The encryption fields AWS's answers about such a version carry (boto3's names;
        SSEKMSKeyId is the key's ARN, of which the model knows the `:key/<name>` end)."""
        sse = {"S3": "AES256", "KMS": "aws:kms"}.get(self.kind)
        customer = "AES256" if self.kind == "C" else None
        name, context = KMS_MODES[self.key] if self.kind == "KMS" else (None, None)
        return {
            "ServerSideEncryption": sse,
            "SSECustomerAlgorithm": customer,
            "SSEKMSKeyId": name and f":key/{name}",
            "SSEKMSEncryptionContext": context,
        }


PLAIN = Enc()


@dataclass
class Version:
    vid: str
    body: bytes | None  # None: a delete marker
    enc: Enc = PLAIN
    meta: dict[str, str] = field(default_factory=dict)
    parts: tuple[int, ...] | None = ()  # multipart part sizes; () single part; None unknown

    @property
    def marker(self) -> bool:
        return self.body is None

    def shape(self) -> tuple[str, bool, int]:
        """What a version listing shows of it."""
        return self.vid, self.marker, len(self.body or b"")


@dataclass(frozen=True)
class Expect:
    """A read's expected answer: an error (status, code) or a body with its status."""

    status: int
    code: str = ""
    body: bytes = b""
    content_range: str | None = None

    @property
    def ok(self) -> bool:
        return self.status < 300


def error(status: int, code: str) -> Expect:
    return Expect(status, code)


@dataclass
class Bucket:
    name: str
    owner: str
    versioning: str | None = None  # None | "Enabled" | "Suspended"
    default_enc: Enc = field(default_factory=lambda: PLAIN)  # PLAIN: no default encryption
    keys: dict[str, list[Version]] = field(default_factory=dict)

    # ---- writes (what a successful request did) ---------------------------------------------

    def put(self, key: str, version: Version) -> None:
        """A new current version (PUT, copy, completed upload); `version.vid` from the answer."""
        versions = self.keys.setdefault(key, [])
        if self.versioning == "Enabled":
            versions.insert(0, version)
            return
        version.vid = NULL  # unversioned and suspended buckets overwrite the null version
        versions[:] = [version] + [v for v in versions if v.vid != NULL]

    def delete(self, key: str, marker_vid: str | None) -> None:
        """DeleteObject without a version id."""
        if self.versioning is None:
            self.keys.pop(key, None)
        else:
            vid = marker_vid if self.versioning == "Enabled" else NULL
            self.put(key, Version(vid or NULL, None))
        if not self.keys.get(key):
            self.keys.pop(key, None)

    def delete_version(self, key: str, vid: str) -> None:
        versions = [v for v in self.keys.get(key, []) if v.vid != vid]
        if versions:
            self.keys[key] = versions
        else:
            self.keys.pop(key, None)

    # ---- reads -----------------------------------------------------------------------------

    def version(self, key: str, vid: str | None) -> Version | None:
        versions = self.keys.get(key, [])
        if vid is None:
            return versions[0] if versions else None
        return next((v for v in versions if v.vid == vid), None)

    def find(self, key: str, vid: str | None) -> Version | Expect:
        """The version a GET (or a copy source) names, or the error it gets."""
        found = self.version(key, vid)
        if found is None:
            return error(404, "NoSuchVersion" if vid is not None else "NoSuchKey")
        if found.marker:
            # GET of a delete marker by id: 405; as the current version: 404 NoSuchKey
            return error(405, "MethodNotAllowed") if vid is not None else error(404, "NoSuchKey")
        return found

    def shapes(self, key: str) -> list[tuple[str, bool, int]]:
        return [v.shape() for v in self.keys.get(key, [])]

    def clone(self) -> Bucket:
        return copy.deepcopy(self)


def sse_check(version: Version, key: int | None) -> Expect | None:
    """The refusal a read with SSE-C key `key` (None: no SSE-C headers) gets, if any."""
    if version.enc.kind != "C":
        return error(400, "InvalidRequest") if key is not None else None
    if key is None:
        return error(400, "InvalidRequest")
    if key != version.enc.key:
        return error(403, "AccessDenied")
    return None


def parse_range(spec: str | None, size: int) -> tuple[int, int] | Expect | None:
    """(start, end exclusive) of a single `bytes=` range, None for the whole body, or the 416.
    RFC 9110 §14.1.2: a syntactically invalid range (last < first) is ignored."""
    if spec is None:
        return None
    first, _, last = spec.removeprefix("bytes=").partition("-")
    if not first:
        n = int(last)
        if n == 0 or size == 0:
            return error(416, "InvalidRange")
        return max(0, size - n), size
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        return error(416, "InvalidRange")
    end = size - 1 if not last else min(int(last), size - 1)
    return start, end + 1


def expect_read(
    version: Version | Expect,
    key: int | None,
    range_spec: str | None = None,
    part_number: int | None = None,
) -> Expect | None:
    """What GetObject answers; None when the model cannot tell (partNumber of a copied
    multipart object, whose part layout S3 does not promise)."""
    if isinstance(version, Expect):
        return version
    refused = sse_check(version, key)
    if refused is not None:
        return refused
    body = version.body or b""
    size = len(body)
    if part_number is not None:
        if version.parts is None:
            return None
        sizes = list(version.parts) or [size]
        if part_number > len(sizes):
            return error(416, "InvalidPartNumber")
        start = sum(sizes[: part_number - 1])
        end = start + sizes[part_number - 1]
        if not version.parts:
            return Expect(200, body=body)
        return Expect(206, body=body[start:end], content_range=f"bytes {start}-{end - 1}/{size}")
    rng = parse_range(range_spec, size)
    if isinstance(rng, Expect):
        return rng
    if rng is None:
        return Expect(200, body=body)
    start, end = rng
    return Expect(206, body=body[start:end], content_range=f"bytes {start}-{end - 1}/{size}")


def md5_etag(body: bytes) -> str:
    return f'"{hashlib.md5(body).hexdigest()}"'


def multipart_etag(parts: list[bytes]) -> str:
    digest = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
    return f'"{digest}-{len(parts)}"'


def etag_of_parts(etags: list[str]) -> str:
    """A completed upload's ETag from its parts' ETags (whatever they are: for SSE-C and SSE-KMS
    parts not MD5s of the plaintext)."""
    digest = hashlib.md5(b"".join(bytes.fromhex(e.strip('"')) for e in etags)).hexdigest()
    return f'"{digest}-{len(etags)}"'


def after_days(start: float, days: int, day_seconds: float) -> float:
    """When a lifecycle Expiration of `days` days is due for an object written at `start`:
    S3 rounds the creation time up to the next midnight UTC (here: the next multiple of a day)."""
    return -(-start // day_seconds) * day_seconds + days * day_seconds
