"""The RocksDB key layout: the one place that knows how metadata is keyed and encoded.

Keys are prefix-typed so every listing is a range scan:

    B/<bucket>                            bucket record
    O/<bucket>\\0<key>                     current object version; ListObjects scans O/<bucket>\\0
    V/<bucket>\\0<key>\\0<inverted seq, 8 B> every version and delete marker of a key in a bucket
                                          whose versioning was ever configured, newest first;
                                          ListObjectVersions scans V/<bucket>\\0
    U/<bucket>\\0<key>\\0<upload id>        multipart upload; ListMultipartUploads scans U/<bucket>
    P/<upload id>/<part number, 5 digits> uploaded part; ListParts scans P/<upload id>/
    C/<sha256, 32 bytes>                  chunk reference count and size
    G/<sha256, 32 bytes>                  chunk whose count reached zero (garbage candidate)
    I/<sha256, 32 bytes>                  an inline chunk's bytes (raw): a small object's body kept
                                          in the metadata, replicated by the log, not as files
    X/<sha256, 32 bytes>                  an erasure-coded chunk: its scheme and fragment digests
                                          (`erasure.Coded`); its fragments are the files
    F/<sha256, 32 bytes>                  a fragment of a coded chunk -> that chunk's id
    N/<user name>                         user record;  K/<access key> -> user name
    M/<node id>                           cluster node: its URLs and state
    Q/<bucket>                            bucket usage [versions, bytes] for its quota (below)
    S/stats                               totals kept by the state machine

Versions. A bucket that never had versioning configured keeps only O/ records, each the key's one
(implicitly `null`) version and the owner of its chunk references, exactly as before versioning
existed. Once versioning is configured, every write of a key goes to V/ and O/ becomes a copy of the
newest V/ entry (absent when that entry is a delete marker), so GET, HEAD and ListObjects still read
one record or one range. An O/ record with a `vid` field is such a copy and holds no references;
one without `vid` is a pre-versioning `null` version, moved to V/ by the first versioned write of
its key.
The sequence number orders a key's versions; it is one more than the key's newest, so applying it is
deterministic without any global counter.

Usage. Q/<bucket> counts the bucket's stored object versions (not delete markers, not multipart
parts) and their logical bytes, moved in the same batch as the versions. Buckets created since
quotas exist have it from creation; an older bucket gets it, counted by a scan, when a quota is
first set (SetBucketQuota). A bucket without Q/ is not tracked, and its usage is scanned on demand.

Bucket names cannot contain NUL and object keys are refused if they do, so `\\0` separates
unambiguously and orders a bucket's keys in UTF-8 byte order, as S3 lists them.
Values are msgpack maps.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgpack
from rocksdict import Rdict

SEP = b"\x00"


def pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


def scan(db: Rdict, prefix: bytes, start: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
    """Yield (key, value) for keys with `prefix`, from `start` (inclusive) if given."""
    it = db.iter()
    it.seek(start if start is not None and start > prefix else prefix)
    while it.valid():
        key = it.key()
        if not key.startswith(prefix):
            return
        yield key, it.value()
        it.next()


def bucket_key(bucket: str) -> bytes:
    return b"B/" + bucket.encode()


BUCKET_PREFIX = b"B/"


def object_prefix(bucket: str) -> bytes:
    return b"O/" + bucket.encode() + SEP


def object_key(bucket: str, key: str) -> bytes:
    return object_prefix(bucket) + key.encode()


def version_prefix(bucket: str) -> bytes:
    return b"V/" + bucket.encode() + SEP


def key_versions_prefix(bucket: str, key: str) -> bytes:
    """Every version of one key: V/<bucket>\\0<key>\\0."""
    return version_prefix(bucket) + key.encode() + SEP


SEQ_MAX = 2**64 - 1


def version_key(bucket: str, key: str, seq: int) -> bytes:
    """The inverted sequence sorts a key's newest version first."""
    return key_versions_prefix(bucket, key) + (SEQ_MAX - seq).to_bytes(8, "big")


def split_version_key(raw: bytes, prefix: bytes) -> tuple[str, int]:
    """(object key, sequence) of a V/ key, given its bucket's `version_prefix`."""
    return raw[len(prefix) : -9].decode(), SEQ_MAX - int.from_bytes(raw[-8:], "big")


def upload_prefix(bucket: str) -> bytes:
    return b"U/" + bucket.encode() + SEP


def upload_key(bucket: str, key: str, upload_id: str) -> bytes:
    return upload_prefix(bucket) + key.encode() + SEP + upload_id.encode()


def split_upload_key(raw: bytes, prefix: bytes) -> tuple[str, str]:
    key, _, upload_id = raw[len(prefix) :].rpartition(SEP)
    return key.decode(), upload_id.decode()


def part_prefix(upload_id: str) -> bytes:
    return b"P/" + upload_id.encode() + b"/"


def part_key(upload_id: str, part_number: int) -> bytes:
    return part_prefix(upload_id) + b"%05d" % part_number


def chunk_key(digest: bytes) -> bytes:
    return b"C/" + digest


def inline_key(digest: bytes) -> bytes:
    return b"I/" + digest


def garbage_key(digest: bytes) -> bytes:
    return b"G/" + digest


def coded_key(digest: bytes) -> bytes:
    return CODED_PREFIX + digest


def fragment_key(digest: bytes) -> bytes:
    return b"F/" + digest


CODED_PREFIX = b"X/"
CODED_MARKER = b"coded"  # G/ value of a chunk coded (RecordCoded) and not yet referenced
GARBAGE_PREFIX = b"G/"
INLINE_PREFIX = b"I/"
CHUNK_PREFIX = b"C/"


def user_key(name: str) -> bytes:
    return b"N/" + name.encode()


USER_PREFIX = b"N/"


def access_key_key(access_key: str) -> bytes:
    return b"K/" + access_key.encode()


NODE_PREFIX = b"M/"


def node_key(node_id: str) -> bytes:
    return NODE_PREFIX + node_id.encode()


KMS_KEY_PREFIX = b"E/"  # SSE-KMS keys, wrapped by the master key (CreateKmsKey)


def kms_key_key(name: str) -> bytes:
    return KMS_KEY_PREFIX + name.encode()


USAGE_PREFIX = b"Q/"


def usage_key(bucket: str) -> bytes:
    return USAGE_PREFIX + bucket.encode()


STATS_KEY = b"S/stats"
APPLIED_KEY = b"S/applied"
MASTER_KEY = b"S/sse-master"  # SSE-S3 master key when the config names none (InitMasterKey)


def prefix_end(prefix: bytes) -> bytes:
    """The smallest key greater than every key starting with `prefix`."""
    stripped = prefix.rstrip(b"\xff")
    return stripped[:-1] + bytes([stripped[-1] + 1]) if stripped else b"\xff" * (len(prefix) + 1)
