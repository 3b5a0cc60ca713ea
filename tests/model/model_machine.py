"""The model-based harness: random sequences of S3 operations against real nodes, every answer
compared with `s3model`.

`StoreMachine` holds the rules that work on any target (`model_faults` and `model_cluster` add
faults). Each
example works in buckets of its own on a node (or cluster) shared by the whole session, so
examples are cheap; the session's target is set with `StoreMachine.use(target)`.

An answer the store could not give (a 5xx other than 503, a timeout on one node) fails the run.
A write whose outcome is unknown (503, cut connection, timeout: only under faults) must have
taken effect fully or not at all: the harness looks at the key's versions and adopts whichever
of the two the store shows, or fails.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule
from model_bodies import MIN_PART, body, body_specs, part_specs
from model_requests import (
    STATS,
    Answer,
    Unavailable,
    call,
    check_sse,
    parse_enc,
    pick_key,
    range_header,
    read_sse,
    write_sse,
)
from model_targets import DAY_SECONDS, LIFECYCLE_INTERVAL, Target
from s3model import (
    KMS_KEY,
    NULL,
    PLAIN,
    Bucket,
    Enc,
    Expect,
    Version,
    after_days,
    etag_of_parts,
    expect_read,
    md5_etag,
    multipart_etag,
)

KEYS = ["k0", "k1", "d/k2"]
EXPIRING = ["exp/0", "exp/1"]
BUCKETS = 3  # b0 and b1 belong to root, b2 to alice
# none, SSE-S3, SSE-C with one of 3 keys, SSE-KMS in one of 3 modes (s3model.KMS_MODES)
ENCS = st.sampled_from(["", "S3", "C0", "C1", "C2", "K0", "K1", "K2"])
DEFAULT_ENCS = st.sampled_from(["", "S3", "K0", "K1"])  # a bucket's default ("": none)
KEY_PICKS = st.sampled_from(["right", "right", "none", "wrong"])
RANGES = st.one_of(
    st.none(),
    st.tuples(
        st.sampled_from(["a-b", "a-", "-n"]),
        st.sampled_from([0, 1, 100, 65535, 65536, 65537, 131071, 131072, -1, -2, 0]),
        st.sampled_from([0, 1, 15, 65535, 65536, 131072, 1 << 20]),
    ),
)
_names = itertools.count()


@dataclass
class Upload:
    bucket: int
    key: str
    upload_id: str
    enc: Enc
    meta: dict[str, str]
    parts: dict[int, tuple[bytes, str]] = field(default_factory=dict)  # number -> (body, etag)


class StoreMachine(RuleBasedStateMachine):
    """Rules on any target; the target is the session's (see `use`)."""

    target: Target
    unknown_grace = 0.0  # how long an unavailable store is waited for (0: a failure at once)
    expiry_slack = 3.0  # how late lifecycle may expire an object (passes are periodic)

    @classmethod
    def use(cls, target: Target) -> None:
        cls.target = target
        if "alice" not in target.users:
            target.add_user("alice")
        # the named SSE-KMS key (creating an existing key is answered 200 with it)
        status, doc = target.admin("/kms/keys", method="POST", body={"name": KMS_KEY})
        assert status in (200, 201), f"creating KMS key {KMS_KEY}: {status} {doc}"

    def __init__(self) -> None:
        super().__init__()
        STATS["examples"] += 1
        prefix = f"m{os.getpid()}-{next(_names)}"
        owners = ["root", "root", "alice"]
        self.buckets = [Bucket(f"{prefix}-b{i}", owners[i]) for i in range(BUCKETS)]
        self.uploads: list[Upload] = []
        self.expiring: dict[tuple[int, str], tuple[bytes, Enc, float, float]] = {}
        self.faults = 0

    # ---- talking to the store ---------------------------------------------------------------

    def call(self, user: str, method: str, **kwargs) -> Answer:
        return call(self.target, user, method, **kwargs)

    def read(self, user: str, method: str, **kwargs) -> Answer:
        """A request without side effects: repeated while the store is unavailable."""
        deadline = time.monotonic() + self.unknown_grace
        while True:
            try:
                return self.call(user, method, **kwargs)
            except Unavailable:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)

    def write(
        self, user: str, method: str, on_unknown: Callable[[], Answer | None], **kwargs
    ) -> Answer | None:
        """A request with side effects. When its outcome is unknown, `on_unknown` settles the
        model from what the store shows (and returns None: the caller has nothing to check)."""
        try:
            return self.call(user, method, **kwargs)
        except Unavailable:
            if not self.unknown_grace:
                raise
            return on_unknown()

    def idempotent(self, user: str, method: str, **kwargs) -> Answer:
        """A write that may simply be repeated until it is answered (bucket settings)."""
        deadline = time.monotonic() + max(self.unknown_grace, 1)
        while True:
            try:
                return self.call(user, method, **kwargs)
            except Unavailable:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)

    def fault(self, kind: str) -> None:
        self.faults += 1
        STATS[kind] += 1

    def user(self, b: int) -> str:
        return self.buckets[b].owner

    def bucket(self, b: int) -> Bucket:
        return self.buckets[b]

    # ---- comparing -------------------------------------------------------------------------

    def check_read(
        self, what: str, got: Answer, want: Expect | None, version: Version | None = None
    ) -> None:
        if want is None:
            return
        assert (got.status, got.code) == (want.status, want.code), (
            f"{what}: got {got.status} {got.code}, expected {want.status} {want.code}"
        )
        if not want.ok:
            return
        assert got.body == want.body, (
            f"{what}: {len(got.body)} bytes differ from the {len(want.body)} expected"
        )
        if want.content_range is not None:
            assert got.response.get("ContentRange") == want.content_range, what
        if version is not None:
            assert got.response.get("Metadata", {}) == version.meta, what
            check_sse(what, got.response, version.enc)

    def server_shapes(self, b: int, key: str) -> list[tuple[str, bool, int]]:
        """The versions of `key` the store lists (as a sorted list of shapes)."""
        bucket = self.bucket(b)
        found: list[tuple[str, bool, int]] = []
        kwargs = {"Bucket": bucket.name, "Prefix": key}
        while True:
            page = self.read(self.user(b), "list_object_versions", **kwargs).response
            found += [
                (e["VersionId"], False, e["Size"])
                for e in page.get("Versions", [])
                if e["Key"] == key
            ]
            found += [
                (e["VersionId"], True, 0) for e in page.get("DeleteMarkers", []) if e["Key"] == key
            ]
            if not page.get("IsTruncated"):
                return sorted(found)
            kwargs.update(
                KeyMarker=page["NextKeyMarker"], VersionIdMarker=page.get("NextVersionIdMarker", "")
            )

    def settle(self, b: int, key: str, present: Callable[[Bucket, str], None], what: str) -> bool:
        """An unacknowledged write to (b, key): adopt the model in which it took effect fully,
        or the one in which it did not (anything else is a partial write); True if it did."""
        bucket = self.bucket(b)
        server = self.server_shapes(b, key)
        known = {v.vid for v in bucket.keys.get(key, [])}
        new_vid = next((s[0] for s in server if s[0] not in known), NULL)
        absent, done = bucket.clone(), bucket.clone()
        present(done, new_vid)
        fits = [m for m in (done, absent) if sorted(m.shapes(key)) == server]
        for candidate in fits:
            current = candidate.version(key, None)
            if current is None or current.marker or len(fits) == 1:
                break
            got = self.read(
                self.user(b),
                "get_object",
                Bucket=bucket.name,
                Key=key,
                **read_sse(pick_key(current, "right")),
            )
            if got.ok and got.body == current.body:
                break
        else:
            raise AssertionError(
                f"{what}: unacknowledged, and the store shows {server}, "
                f"neither {absent.shapes(key)} nor {done.shapes(key)}"
            )
        self.buckets[b] = candidate
        return candidate is done

    # ---- set-up ----------------------------------------------------------------------------

    @initialize()
    def create_buckets(self) -> None:
        lifecycle = {
            "Rules": [
                {
                    "ID": "expire",
                    "Status": "Enabled",
                    "Filter": {"Prefix": "exp/"},
                    "Expiration": {"Days": 1},
                }
            ]
        }
        for b, bucket in enumerate(self.buckets):
            answer = self.idempotent(self.user(b), "create_bucket", Bucket=bucket.name)
            assert answer.ok or answer.code == "BucketAlreadyOwnedByYou", answer
            self.idempotent(
                self.user(b),
                "put_bucket_lifecycle_configuration",
                Bucket=bucket.name,
                LifecycleConfiguration=lifecycle,
            )

    # ---- bucket settings -------------------------------------------------------------------

    @rule(b=st.integers(0, BUCKETS - 1), status=st.sampled_from(["Enabled", "Suspended"]))
    def set_versioning(self, b: int, status: str) -> None:
        bucket = self.bucket(b)
        answer = self.idempotent(
            self.user(b),
            "put_bucket_versioning",
            Bucket=bucket.name,
            VersioningConfiguration={"Status": status},
        )
        assert answer.ok, answer
        bucket.versioning = status

    @rule(b=st.integers(0, BUCKETS - 1), enc=DEFAULT_ENCS)
    def set_default_encryption(self, b: int, enc: str) -> None:
        bucket = self.bucket(b)
        default = parse_enc(enc)
        if default != PLAIN:
            by_default = {"SSEAlgorithm": "aws:kms" if default.kind == "KMS" else "AES256"}
            if default.kind == "KMS" and default.key:
                by_default["KMSMasterKeyID"] = f"alias/{KMS_KEY}"
            rules = [{"ApplyServerSideEncryptionByDefault": by_default}]
            answer = self.idempotent(
                self.user(b),
                "put_bucket_encryption",
                Bucket=bucket.name,
                ServerSideEncryptionConfiguration={"Rules": rules},
            )
        else:
            answer = self.idempotent(self.user(b), "delete_bucket_encryption", Bucket=bucket.name)
        assert answer.ok, answer
        bucket.default_enc = default

    # ---- objects ---------------------------------------------------------------------------

    def source_of(self, src: int, skey: str, live: bool) -> tuple[int, str]:
        """A copy's source: as drawn, or (`live`) one of the keys the example has written, so
        that copies between encryption modes are common (drawn ones are mostly missing)."""
        existing = [(b, k) for b, bucket in enumerate(self.buckets) for k in sorted(bucket.keys)]
        if not live or not existing:
            return src, skey
        return existing[(src * len(KEYS) + KEYS.index(skey)) % len(existing)]

    def effective(self, b: int, enc: Enc) -> Enc:
        """How a write requesting `enc` is encrypted in bucket b: a request without encryption
        gets the bucket's default; one asking for aws:kms without a key id gets the default's
        key when the default is aws:kms (Anode's choice: AWS documents the aws/s3 key there)."""
        default = self.bucket(b).default_enc
        if enc == PLAIN or (enc == Enc("KMS", 0) and default.kind == "KMS"):
            return default
        return enc

    def put_version(
        self, b: int, key: str, data: bytes, enc: Enc, meta: dict[str, str], **extra
    ) -> None:
        bucket = self.bucket(b)
        version = Version(NULL, data, self.effective(b, enc), meta)

        def unknown() -> None:
            self.settle(
                b,
                key,
                lambda m, vid: m.put(key, Version(vid, data, version.enc, meta)),
                f"PUT {key}",
            )

        answer = self.write(
            self.user(b),
            "put_object",
            unknown,
            Bucket=bucket.name,
            Key=key,
            Body=data,
            Metadata=meta,
            **write_sse(enc),
            **extra,
        )
        if answer is None:
            return
        assert answer.ok, f"PUT {key}: {answer.status} {answer.code}"
        vid = answer.response.get("VersionId")
        assert (vid not in (None, NULL)) == (bucket.versioning == "Enabled"), vid
        check_sse(f"PUT {key}", answer.response, version.enc, context=True)
        STATS[f"put {version.enc.kind or 'plain'}"] += 1
        etag = answer.response["ETag"]
        if version.enc.kind in ("", "S3"):
            assert etag == md5_etag(data), f"PUT {key} ({version.enc}): ETag {etag}"
        else:  # SSE-C and SSE-KMS ETags are not the plaintext's MD5 (AWS)
            assert etag != md5_etag(data) and len(etag) == 34, f"PUT {key}: ETag {etag}"
        version.vid = vid or NULL
        bucket.put(key, version)

    @rule(
        b=st.integers(0, BUCKETS - 1),
        key=st.sampled_from(KEYS),
        spec=body_specs,
        enc=ENCS,
        meta=st.sampled_from(["", "a", "b"]),
    )
    def put(self, b: int, key: str, spec, enc: str, meta: str) -> None:
        self.put_version(b, key, body(spec), parse_enc(enc), {"m": meta} if meta else {})

    @rule(
        b=st.integers(0, BUCKETS - 1),
        key=st.sampled_from(KEYS),
        vpick=st.none() | st.integers(0, 4),
        kpick=KEY_PICKS,
        rng=RANGES,
        part=st.none() | st.integers(1, 3),
        head=st.booleans(),
    )
    def get(self, b: int, key: str, vpick, kpick: str, rng, part, head: bool) -> None:
        bucket = self.bucket(b)
        versions = bucket.keys.get(key, [])
        vid = versions[vpick % len(versions)].vid if vpick is not None and versions else None
        found = bucket.find(key, vid)
        sse_key = pick_key(found, kpick)
        size = len(found.body or b"") if isinstance(found, Version) else 0
        header = range_header(rng, size) if part is None else None
        want = expect_read(found, sse_key, header, part)
        kwargs: dict[str, Any] = {"Bucket": bucket.name, "Key": key, **read_sse(sse_key)}
        if vid is not None:
            kwargs["VersionId"] = vid
        if header is not None:
            kwargs["Range"] = header
        if part is not None:
            kwargs["PartNumber"] = part
        what = (
            f"{'HEAD' if head else 'GET'} {bucket.name}/{key} v={vid} sse={sse_key} "
            f"range={header} part={part}"
        )
        version = found if isinstance(found, Version) else None
        if not head:
            got = self.read(self.user(b), "get_object", **kwargs)
            self.check_read(what, got, want, version)
            return
        got = self.read(self.user(b), "head_object", **kwargs)
        if want is not None:  # a HEAD answers the same, without a body or an error code
            if got.ok:
                assert got.response["ContentLength"] == len(want.body), what
                got.body = want.body
            self.check_read(
                what,
                got,
                Expect(
                    want.status, "" if want.ok else str(want.status), want.body, want.content_range
                ),
                version,
            )

    @rule(b=st.integers(0, BUCKETS - 1), key=st.sampled_from(KEYS))
    def delete(self, b: int, key: str) -> None:
        bucket = self.bucket(b)

        def unknown() -> None:
            self.settle(b, key, lambda m, vid: m.delete(key, vid), f"DELETE {key}")

        answer = self.write(self.user(b), "delete_object", unknown, Bucket=bucket.name, Key=key)
        if answer is None:
            return
        assert answer.status == 204, answer
        marker = answer.response.get("DeleteMarker", False)
        assert marker == (bucket.versioning is not None), answer.response
        bucket.delete(key, answer.response.get("VersionId"))

    @precondition(lambda self: any(b.keys for b in self.buckets))
    @rule(b=st.integers(0, BUCKETS - 1), key=st.sampled_from(KEYS), pick=st.integers(0, 4))
    def delete_version(self, b: int, key: str, pick: int) -> None:
        bucket = self.bucket(b)
        versions = bucket.keys.get(key)
        if not versions:
            return
        vid = versions[pick % len(versions)].vid

        def unknown() -> None:
            self.settle(b, key, lambda m, _: m.delete_version(key, vid), f"DELETE {key}?{vid}")

        answer = self.write(
            self.user(b), "delete_object", unknown, Bucket=bucket.name, Key=key, VersionId=vid
        )
        if answer is None:
            return
        assert answer.status == 204, answer
        bucket.delete_version(key, vid)

    @rule(
        b=st.integers(0, BUCKETS - 1),
        keys=st.lists(st.sampled_from(KEYS), min_size=1, max_size=3, unique=True),
        quiet=st.booleans(),
    )
    def delete_objects(self, b: int, keys: list[str], quiet: bool) -> None:
        bucket = self.bucket(b)
        request = {"Objects": [{"Key": k} for k in keys], "Quiet": quiet}
        try:
            answer = self.call(self.user(b), "delete_objects", Bucket=bucket.name, Delete=request)
        except Unavailable:
            if not self.unknown_grace:
                raise
            for key in keys:
                self.settle(b, key, lambda m, vid, k=key: m.delete(k, vid), f"DELETE {key}")
            return
        assert answer.ok and not answer.response.get("Errors"), answer.response
        deleted = {d["Key"]: d for d in answer.response.get("Deleted", [])}
        assert quiet or set(deleted) == set(keys), deleted
        for key in keys:
            if key not in deleted:  # quiet: only errors are listed; look at the versions
                self.settle(b, key, lambda m, vid, k=key: m.delete(k, vid), f"DELETE {key}")
            else:
                bucket.delete(key, deleted[key].get("DeleteMarkerVersionId"))

    @rule(
        src=st.integers(0, BUCKETS - 1),
        skey=st.sampled_from(KEYS),
        live=st.booleans(),
        vpick=st.none() | st.integers(0, 4),
        kpick=KEY_PICKS,
        dst=st.integers(0, BUCKETS - 1),
        dkey=st.sampled_from(KEYS),
        enc=ENCS,
        replace=st.booleans(),
        meta=st.sampled_from(["", "c"]),
    )
    def copy(
        self,
        src: int,
        skey: str,
        live: bool,
        vpick,
        kpick: str,
        dst: int,
        dkey: str,
        enc: str,
        replace: bool,
        meta: str,
    ) -> None:
        src, skey = self.source_of(src, skey, live)
        source, target = self.bucket(src), self.bucket(dst)
        versions = source.keys.get(skey, [])
        vid = versions[vpick % len(versions)].vid if vpick is not None and versions else None
        found = source.find(skey, vid)
        sse_key = pick_key(found, kpick)
        new_enc = parse_enc(enc)
        new_meta = {"m": meta} if meta else {}
        copy_source = {"Bucket": source.name, "Key": skey}
        if vid is not None:
            copy_source["VersionId"] = vid
        kwargs = {
            "Bucket": target.name,
            "Key": dkey,
            "CopySource": copy_source,
            "MetadataDirective": "REPLACE" if replace else "COPY",
            **write_sse(new_enc),
            **read_sse(sse_key, "CopySource"),
        }
        if replace:
            kwargs["Metadata"] = new_meta
        user = self.user(dst)
        want: Expect | None = None
        if user != "root" and source.owner != user:
            want = Expect(403, "AccessDenied")
        elif isinstance(found, Expect):
            # a delete marker cannot be a copy source (CopyObject: 400 InvalidRequest)
            want = found if found.status != 405 else Expect(400, "InvalidRequest")
        else:
            want = expect_read(found, sse_key)
            restores = vid is not None and target.versioning == "Enabled"
            if (
                want.ok
                and (src, skey) == (dst, dkey)
                and not replace
                and not restores
                and self.effective(dst, new_enc) == PLAIN
                and found.enc == PLAIN
            ):
                want = Expect(400, "InvalidRequest")  # a copy onto itself must change something
        if want.ok:
            copied = Version(
                NULL,
                found.body,
                self.effective(dst, new_enc),
                new_meta if replace else dict(found.meta),
                found.parts if not found.parts else None,
            )

        def unknown() -> None:
            if want.ok:
                self.settle(
                    dst,
                    dkey,
                    lambda m, vid: m.put(
                        dkey, Version(vid, copied.body, copied.enc, copied.meta, copied.parts)
                    ),
                    f"COPY {dkey}",
                )

        what = f"COPY {source.name}/{skey}?{vid} (sse {sse_key}) -> {target.name}/{dkey} {enc}"
        answer = self.write(user, "copy_object", unknown, **kwargs)
        if answer is None:
            return
        assert (answer.status, answer.code) == (want.status, want.code), (
            f"{what}: got {answer.status} {answer.code}, expected {want.status} {want.code}"
        )
        if want.ok:
            check_sse(what, answer.response, copied.enc, context=True)
            STATS[f"copy {found.enc.kind or 'plain'}->{copied.enc.kind or 'plain'}"] += 1
            copied.vid = answer.response.get("VersionId") or NULL
            target.put(dkey, copied)

    @precondition(lambda self: any(bucket.keys for bucket in self.buckets))
    @rule(pick=st.integers(0, 1 << 16), other=st.integers(1, 2), dkey=st.sampled_from(KEYS))
    def copy_into_a_sibling_domain(self, pick: int, other: int, dkey: str) -> None:
        """Copy a written object under another key of its own kind (another SSE-C key, another
        KMS key or context; any mode for the others). Whether a copy may share its source's
        chunks is decided by the key domain: the class of the encrypted-chunk dedup bug, which
        the general copy rule, drawing source, key, owner and mode independently, rarely reaches
        (2 KMS->KMS copies in 214 examples)."""
        existing = [(b, k) for b, bucket in enumerate(self.buckets) for k in sorted(bucket.keys)]
        b, skey = existing[pick % len(existing)]
        found = self.bucket(b).find(skey, None)
        kind = found.enc.kind if isinstance(found, Version) else ""
        if kind in ("C", "KMS"):
            enc = f"{kind[0]}{(found.enc.key + other) % 3}"
        else:
            enc = ["", "S3", "C0", "K0", "K1", "K2"][pick % 6]
        self.copy(b, skey, False, None, "right", b, dkey, enc, False, "")

    # ---- multipart -------------------------------------------------------------------------

    @precondition(lambda self: len(self.uploads) < 3)
    @rule(
        b=st.integers(0, BUCKETS - 1),
        key=st.sampled_from(KEYS),
        enc=ENCS,
        meta=st.sampled_from(["", "u"]),
    )
    def create_upload(self, b: int, key: str, enc: str, meta: str) -> None:
        bucket = self.bucket(b)
        encryption = parse_enc(enc)
        try:
            answer = self.call(
                self.user(b),
                "create_multipart_upload",
                Bucket=bucket.name,
                Key=key,
                Metadata={"m": meta} if meta else {},
                **write_sse(encryption),
            )
        except Unavailable:
            if not self.unknown_grace:
                raise
            return  # an upload nobody knows of: harmless
        assert answer.ok, answer
        effective = self.effective(b, encryption)
        check_sse(f"CreateUpload {key}", answer.response, effective, context=True)
        self.uploads.append(
            Upload(b, key, answer.response["UploadId"], effective, {"m": meta} if meta else {})
        )

    def upload_for(self, pick: int) -> Upload:
        return self.uploads[pick % len(self.uploads)]

    @precondition(lambda self: self.uploads)
    @rule(pick=st.integers(0, 2), number=st.integers(1, 3), spec=part_specs)
    def upload_part(self, pick: int, number: int, spec) -> None:
        upload = self.upload_for(pick)
        data = body(spec)
        key = upload.enc.key if upload.enc.kind == "C" else None
        try:
            answer = self.call(
                self.user(upload.bucket),
                "upload_part",
                Bucket=self.bucket(upload.bucket).name,
                Key=upload.key,
                UploadId=upload.upload_id,
                PartNumber=number,
                Body=data,
                **read_sse(key),
            )
        except Unavailable:
            if not self.unknown_grace:
                raise
            upload.parts.pop(number, None)  # it may be there: the model no longer names it
            return
        assert answer.ok, f"UploadPart: {answer.status} {answer.code}"
        check_sse(f"UploadPart {upload.key}", answer.response, upload.enc)
        upload.parts[number] = (data, answer.response["ETag"])

    @precondition(lambda self: self.uploads)
    @rule(
        pick=st.integers(0, 2),
        number=st.integers(1, 3),
        src=st.integers(0, BUCKETS - 1),
        skey=st.sampled_from(KEYS),
        live=st.booleans(),
        span=st.none() | st.tuples(st.integers(0, 1 << 20), st.integers(0, 1 << 20)),
    )
    def upload_part_copy(
        self, pick: int, number: int, src: int, skey: str, live: bool, span
    ) -> None:
        upload = self.upload_for(pick)
        src, skey = self.source_of(src, skey, live)
        source = self.bucket(src)
        found = source.find(skey, None)
        user = self.user(upload.bucket)
        if not isinstance(found, Version) or (user != "root" and source.owner != user):
            return
        data = found.body
        kwargs: dict[str, Any] = {}
        if span is not None and data:
            start = span[0] % len(data)
            end = min(len(data) - 1, start + span[1])
            kwargs["CopySourceRange"] = f"bytes={start}-{end}"
            data = data[start : end + 1]
        key = upload.enc.key if upload.enc.kind == "C" else None
        source_key = found.enc.key if found.enc.kind == "C" else None
        try:
            answer = self.call(
                user,
                "upload_part_copy",
                Bucket=self.bucket(upload.bucket).name,
                Key=upload.key,
                UploadId=upload.upload_id,
                PartNumber=number,
                CopySource={"Bucket": source.name, "Key": skey},
                **kwargs,
                **read_sse(key),
                **read_sse(source_key, "CopySource"),
            )
        except Unavailable:
            if not self.unknown_grace:
                raise
            upload.parts.pop(number, None)
            return
        assert answer.ok, f"UploadPartCopy: {answer.status} {answer.code}"
        upload.parts[number] = (data, answer.response["CopyPartResult"]["ETag"])

    @precondition(lambda self: any(u.parts for u in self.uploads))
    @rule(pick=st.integers(0, 2))
    def complete_upload(self, pick: int) -> None:
        upload = self.upload_for(pick)
        if not upload.parts:
            return
        numbers = sorted(upload.parts)
        parts = [upload.parts[n][0] for n in numbers]
        bucket = self.bucket(upload.bucket)
        too_small = any(len(p) < MIN_PART for p in parts[:-1])
        data = b"".join(parts)
        version = Version(NULL, data, upload.enc, upload.meta, tuple(len(p) for p in parts))

        def unknown() -> None:
            self.settle(
                upload.bucket,
                upload.key,
                lambda m, vid: m.put(
                    upload.key, Version(vid, data, version.enc, version.meta, version.parts)
                ),
                "Complete",
            )
            self.uploads.remove(upload)

        answer = self.write(
            self.user(upload.bucket),
            "complete_multipart_upload",
            unknown,
            Bucket=bucket.name,
            Key=upload.key,
            UploadId=upload.upload_id,
            MultipartUpload={
                "Parts": [{"PartNumber": n, "ETag": upload.parts[n][1]} for n in numbers]
            },
        )
        if answer is None:
            return
        if too_small:
            assert (answer.status, answer.code) == (400, "EntityTooSmall"), answer
            return
        assert answer.ok, f"Complete: {answer.status} {answer.code}"
        etag = answer.response["ETag"]
        assert etag == etag_of_parts([upload.parts[n][1] for n in numbers]), f"Complete: {etag}"
        if upload.enc.kind in ("", "S3"):
            assert etag == multipart_etag(parts), f"Complete ({upload.enc}): ETag {etag}"
        else:
            assert etag != multipart_etag(parts), f"Complete ({upload.enc}): an MD5 ETag"
        STATS[f"complete {upload.enc.kind or 'plain'}"] += 1
        if upload.enc.kind != "C":  # boto3's CompleteMultipartUpload has no SSE-C fields
            check_sse(f"Complete {upload.key}", answer.response, upload.enc)
        version.vid = answer.response.get("VersionId") or NULL
        bucket.put(upload.key, version)
        self.uploads.remove(upload)

    @precondition(lambda self: self.uploads)
    @rule(pick=st.integers(0, 2))
    def abort_upload(self, pick: int) -> None:
        upload = self.upload_for(pick)
        answer = self.idempotent(
            self.user(upload.bucket),
            "abort_multipart_upload",
            Bucket=self.bucket(upload.bucket).name,
            Key=upload.key,
            UploadId=upload.upload_id,
        )
        assert answer.status in (204, 404), answer
        self.uploads.remove(upload)

    # ---- lifecycle -------------------------------------------------------------------------

    @rule(b=st.integers(0, BUCKETS - 1), key=st.sampled_from(EXPIRING), spec=body_specs, enc=ENCS)
    def put_expiring(self, b: int, key: str, spec, enc: str) -> None:
        """Under exp/, which every bucket's lifecycle rule expires after one (short) day."""
        data, encryption = body(spec), parse_enc(enc)
        started = time.time()
        answer = self.write(
            self.user(b),
            "put_object",
            lambda: None,
            Bucket=self.bucket(b).name,
            Key=key,
            Body=data,
            **write_sse(encryption),
        )
        ended = time.time()
        if answer is None:
            self.expiring.pop((b, key), None)  # unknown: no longer checked
            return
        assert answer.ok, answer
        self.expiring[(b, key)] = (
            data,
            self.effective(b, encryption),
            after_days(started, 1, DAY_SECONDS),
            after_days(ended, 1, DAY_SECONDS) + LIFECYCLE_INTERVAL + self.expiry_slack,
        )

    @precondition(lambda self: self.expiring)
    @rule(pick=st.integers(0, 5))
    def get_expiring(self, pick: int) -> None:
        (b, key), (data, enc, earliest, latest) = sorted(self.expiring.items())[
            pick % len(self.expiring)
        ]
        before = time.time()
        got = self.read(
            self.user(b),
            "get_object",
            Bucket=self.bucket(b).name,
            Key=key,
            **read_sse(enc.key if enc.kind == "C" else None),
        )
        after = time.time()
        what = f"GET {self.bucket(b).name}/{key} (expiring {earliest - before:+.1f}s)"
        if after < earliest:
            assert got.ok and got.body == data, f"{what}: expired early: {got.status}"
        elif before > latest:
            assert (got.status, got.code) == (404, "NoSuchKey"), f"{what}: not expired"
        else:
            assert got.code == "NoSuchKey" or (got.ok and got.body == data), what

    # ---- whole-bucket checks ---------------------------------------------------------------

    @rule(b=st.integers(0, BUCKETS - 1))
    def list_versions(self, b: int) -> None:
        self.check_listing(b)

    def check_listing(self, b: int) -> None:
        bucket = self.bucket(b)
        user = self.user(b)
        server: dict[str, list[tuple[str, bool, int]]] = {}
        kwargs = {"Bucket": bucket.name}
        while True:
            page = self.read(user, "list_object_versions", **kwargs).response
            for e in page.get("Versions", []):
                server.setdefault(e["Key"], []).append((e["VersionId"], False, e["Size"]))
            for e in page.get("DeleteMarkers", []):
                server.setdefault(e["Key"], []).append((e["VersionId"], True, 0))
            if not page.get("IsTruncated"):
                break
            kwargs.update(
                KeyMarker=page["NextKeyMarker"], VersionIdMarker=page.get("NextVersionIdMarker", "")
            )
        server = {k: sorted(v) for k, v in server.items() if k in KEYS}
        model = {k: sorted(bucket.shapes(k)) for k in bucket.keys}
        assert server == model, f"versions of {bucket.name}: store {server}, model {model}"
        listed = self.read(user, "list_objects_v2", Bucket=bucket.name).response
        current = {o["Key"]: o["Size"] for o in listed.get("Contents", []) if o["Key"] in KEYS}
        want = {k: len(v[0].body) for k, v in bucket.keys.items() if not v[0].marker}
        assert current == want, f"objects of {bucket.name}: store {current}, model {want}"

    def check_everything(self) -> None:
        """Every version of every key reads back exactly (acknowledged is never lost)."""
        for b, bucket in enumerate(self.buckets):
            self.check_listing(b)
            for key, versions in bucket.keys.items():
                for version in versions:
                    if version.marker:
                        continue
                    sse_key = version.enc.key if version.enc.kind == "C" else None
                    got = self.read(
                        self.user(b),
                        "get_object",
                        Bucket=bucket.name,
                        Key=key,
                        VersionId=version.vid,
                        **read_sse(sse_key),
                    )
                    self.check_read(
                        f"GET {bucket.name}/{key}?{version.vid}",
                        got,
                        expect_read(version, sse_key),
                        version,
                    )

    def teardown(self) -> None:
        try:
            self.check_everything()
        finally:
            if self.target.clustered:
                self.target.restart_dead()
            self.cleanup()

    def cleanup(self) -> None:
        """Empty and delete this example's buckets (chunks go to the collector)."""
        for b, bucket in enumerate(self.buckets):
            user = self.user(b)
            try:
                while True:
                    page = self.read(user, "list_object_versions", Bucket=bucket.name).response
                    doomed = [
                        {"Key": e["Key"], "VersionId": e["VersionId"]}
                        for e in page.get("Versions", []) + page.get("DeleteMarkers", [])
                    ]
                    if not doomed:
                        break
                    self.idempotent(
                        user,
                        "delete_objects",
                        Bucket=bucket.name,
                        Delete={"Objects": doomed, "Quiet": True},
                    )
                uploads = self.read(user, "list_multipart_uploads", Bucket=bucket.name).response
                for u in uploads.get("Uploads", []):
                    self.idempotent(
                        user,
                        "abort_multipart_upload",
                        Bucket=bucket.name,
                        Key=u["Key"],
                        UploadId=u["UploadId"],
                    )
                self.idempotent(user, "delete_bucket", Bucket=bucket.name)
            except (Unavailable, AssertionError):
                pass  # leftovers only cost disk in the session's temp dir
