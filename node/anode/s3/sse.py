"""Server-side encryption as S3 requests express it: SSE-C, SSE-S3, SSE-KMS, bucket defaults.

Turns request headers (and the stored version record) into an `Encryption`: which key domain an
object's chunks are sealed in, the `sse` field its version record keeps, and the headers its
answers carry. The sealing itself is `chunks/crypto.py`, the keys `kms.py`. A version record's
`sse` is {"type": "S3"}, {"type": "C", "md5": <key MD5, b64>, "salt": <16 B>, "check": <HMAC>}
(the customer's key itself is never stored, only a salted HMAC that recognises it), or
{"type": "KMS", "key": <key name>, "arn": <its ARN>, "ctx": <context as sent, b64 JSON>,
"bk": <bucket key enabled>}.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import kms
from ..chunks.crypto import ChunkCipher, DecryptingReader, key_check, md5, same_key
from ..chunks.reader import ChunkReader
from ..kms import master_key
from .errors import ErrorCode, S3Error

if TYPE_CHECKING:
    from ..node import Node

AES256 = "AES256"
CUSTOMER = "x-amz-server-side-encryption-customer-"
COPY_SOURCE_CUSTOMER = "x-amz-copy-source-server-side-encryption-customer-"
# The key itself is what must not cross in clear (a request without it fails its SSE checks).
_CUSTOMER_KEYS = (CUSTOMER + "key", COPY_SOURCE_CUSTOMER + "key")
SSE_HEADER = "x-amz-server-side-encryption"
AWS_KMS = "aws:kms"
KMS_KEY_HEADER = "x-amz-server-side-encryption-aws-kms-key-id"
CONTEXT_HEADER = "x-amz-server-side-encryption-context"
BUCKET_KEY_HEADER = "x-amz-server-side-encryption-bucket-key-enabled"
_CUSTOMER_KEY_MESSAGE = "Requests specifying Server Side Encryption with Customer provided keys "


@dataclass(frozen=True)
class Encryption:
    """The key domain of one object: SSE-C with the customer's key, SSE-S3, or SSE-KMS."""

    kind: str  # "C", "S3" or "KMS"
    key: bytes
    key_md5: str = ""  # SSE-C: base64 MD5 of the key, as the client sent it
    kms: dict[str, Any] = field(default_factory=dict)  # SSE-KMS: the record's key, arn, ctx, bk

    @property
    def cipher(self) -> ChunkCipher:
        return ChunkCipher(self.key)

    def record(self) -> dict[str, Any]:
        """The `sse` field of a version (or upload) record."""
        if self.kind == "S3":
            return {"type": "S3"}
        if self.kind == "KMS":
            return {"type": "KMS", **self.kms}
        salt = secrets.token_bytes(16)
        return {"type": "C", "md5": self.key_md5, "salt": salt, "check": key_check(self.key, salt)}

    def same_domain(self, other: Encryption | None) -> bool:
        return other is not None and (self.kind, self.key) == (other.kind, other.key)

    def etag(self, md5_digest: bytes) -> str:
        """SSE-C and SSE-KMS ETags are not the plaintext's MD5 (AWS); SSE-S3 ones are."""
        return self.cipher.etag(md5_digest) if self.kind != "S3" else f'"{md5_digest.hex()}"'


def customer_key(headers: Mapping[str, str], prefix: str = CUSTOMER) -> Encryption | None:
    """SSE-C headers (`prefix` algorithm / key / key-MD5), validated; None when absent."""
    algorithm = headers.get(prefix + "algorithm")
    key_b64 = headers.get(prefix + "key")
    key_md5 = headers.get(prefix + "key-MD5")
    if algorithm is None and key_b64 is None and key_md5 is None:
        return None
    if algorithm is None:
        raise S3Error(ErrorCode.InvalidArgument, _CUSTOMER_KEY_MESSAGE + "must provide a valid "
                      "encryption algorithm.", ArgumentName=prefix + "algorithm")
    if algorithm != AES256:
        raise S3Error(ErrorCode.InvalidEncryptionAlgorithmError,
                      ArgumentName=prefix + "algorithm", ArgumentValue=algorithm)
    if key_b64 is None:
        raise S3Error(ErrorCode.InvalidArgument, _CUSTOMER_KEY_MESSAGE + "must provide an "
                      "appropriate secret key.", ArgumentName=prefix + "key")
    if key_md5 is None:
        raise S3Error(ErrorCode.InvalidArgument, _CUSTOMER_KEY_MESSAGE + "must provide the client "
                      "calculated MD5 of the secret key.", ArgumentName=prefix + "key-MD5")
    try:
        key = base64.b64decode(key_b64, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise S3Error(ErrorCode.InvalidArgument,
                      "The secret key was invalid for the specified algorithm.",
                      ArgumentName=prefix + "key")
    if base64.b64encode(md5(key)).decode() != key_md5.strip():
        raise S3Error(ErrorCode.InvalidArgument,
                      "The calculated MD5 hash of the key did not match the hash that was "
                      "provided.", ArgumentName=prefix + "key-MD5")
    return Encryption("C", key, key_md5.strip())


def require_secure_transport(headers: Mapping[str, str], *, secure: bool,
                             allow_insecure: bool) -> None:
    """AWS never lets a customer key cross the network in clear: SSE-C headers (the copy-source
    ones too) over plain HTTP are refused unless `[s3] sse_c_allow_insecure` says otherwise."""
    if secure or allow_insecure:
        return
    if _CUSTOMER_KEYS[0] in headers or _CUSTOMER_KEYS[1] in headers:  # on every request
        raise S3Error(ErrorCode.InvalidRequest, _CUSTOMER_KEY_MESSAGE + "must be made over a "
                      "secure connection.")


async def for_write(node: Node, headers: Mapping[str, str],
                    bucket: Mapping[str, Any]) -> Encryption | None:
    """How a new object is encrypted: SSE-C headers, else `x-amz-server-side-encryption`,
    else the bucket's default encryption, else not at all."""
    customer = customer_key(headers)
    requested = headers.get(SSE_HEADER)
    if customer is not None:
        if requested is not None:
            raise S3Error(ErrorCode.InvalidArgument, "Server Side Encryption with Customer "
                          "provided key is incompatible with the encryption method specified",
                          ArgumentName=SSE_HEADER, ArgumentValue=requested)
        return customer
    if requested is not None and requested not in (AES256, AWS_KMS):
        if requested.startswith(AWS_KMS):
            raise S3Error(ErrorCode.NotImplemented, "DSSE-KMS is not supported by Anode")
        raise S3Error(ErrorCode.InvalidArgument, "The encryption method specified is not "
                      "supported", ArgumentName=SSE_HEADER, ArgumentValue=requested)
    default = bucket.get("encryption") or {}
    if requested is None and default.get("algorithm") == AWS_KMS:
        requested = AWS_KMS
    if requested != AWS_KMS:
        for name in (KMS_KEY_HEADER, CONTEXT_HEADER):
            if name in headers:
                raise S3Error(ErrorCode.InvalidArgument, f"{name} is only applicable with "
                              f"{SSE_HEADER}: {AWS_KMS}", ArgumentName=name)
    if requested == AWS_KMS:
        return await _kms_for_write(node, headers, default)
    if requested is None and not default:
        return None
    return Encryption("S3", await master_key(node))


async def _kms_for_write(node: Node, headers: Mapping[str, str],
                         default: Mapping[str, Any]) -> Encryption:
    key_id = headers.get(KMS_KEY_HEADER) or default.get("key") or kms.DEFAULT_KEY
    name = kms.key_name(key_id)
    context = headers.get(CONTEXT_HEADER)
    bucket_key = headers.get(BUCKET_KEY_HEADER, "").strip().lower()
    if bucket_key not in ("", "true", "false"):
        raise S3Error(ErrorCode.InvalidArgument, "Invalid value for " + BUCKET_KEY_HEADER,
                      ArgumentName=BUCKET_KEY_HEADER, ArgumentValue=bucket_key)
    # Writes skip the read barrier; a key disabled a moment ago on another member must already
    # refuse this one (AWS documents a delay here; a strongly consistent store has none).
    await node.read_barrier()
    record: dict[str, Any] = {"key": name, "arn": kms.arn(node, name)}
    if context is not None:
        record["ctx"] = context.strip()
    if bucket_key == "true" or (not bucket_key and default.get("bucket_key")):
        record["bk"] = True
    return await _kms_encryption(node, record)


async def _kms_encryption(node: Node, record: Mapping[str, Any]) -> Encryption:
    material = await kms.material(node, record["key"])
    return Encryption("KMS", kms.data_key(material, _context(record.get("ctx"))),
                      kms=dict(record))


def _context(value: str | None) -> bytes:
    """The encryption context (base64 JSON of string pairs) in one canonical form."""
    if not value:
        return b""
    try:
        pairs = json.loads(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        pairs = None
    if not isinstance(pairs, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in pairs.items()):
        raise S3Error(ErrorCode.InvalidArgument, "The encryption context is not base64 JSON "
                      "of string pairs", ArgumentName=CONTEXT_HEADER)
    return json.dumps(pairs, sort_keys=True, separators=(",", ":")).encode()


def refuse_write_headers(headers: Mapping[str, str]) -> None:
    """GET and HEAD carry no SSE-S3/SSE-KMS request headers: AWS answers 400 to them whatever the
    object's encryption (only SSE-C keys are read headers); a client sending them has mixed up
    its read and write settings."""
    for name in (SSE_HEADER, KMS_KEY_HEADER, CONTEXT_HEADER, BUCKET_KEY_HEADER):
        if name in headers:
            raise S3Error(ErrorCode.InvalidArgument,
                          f"{name} header is not supported for this operation.")


async def for_read(node: Node, headers: Mapping[str, str], sse: Mapping[str, Any] | None, *,
                   prefix: str = CUSTOMER) -> Encryption | None:
    """The key domain to read a stored version with; the request must carry the SSE-C key an
    SSE-C version was written with (`prefix`: the copy-source headers for a copy's source)."""
    customer = customer_key(headers, prefix)
    if not sse or sse.get("type") != "C":
        if customer is not None:
            raise S3Error(ErrorCode.InvalidRequest,
                          "The encryption parameters are not applicable to this object.")
        if sse and sse.get("type") == "KMS":
            return await _kms_encryption(node, {k: v for k, v in sse.items() if k != "type"})
        return Encryption("S3", await master_key(node)) if sse else None
    if customer is None:
        raise S3Error(ErrorCode.InvalidRequest, "The object was stored using a form of Server "
                      "Side Encryption. The correct parameters must be provided to retrieve the "
                      "object.")
    if not same_key(customer.key, sse["salt"], sse["check"]):
        raise S3Error(ErrorCode.AccessDenied)
    return customer


def reader(node: Node, encryption: Encryption | None) -> ChunkReader:
    """Where a version's plaintext comes from: decrypted chunks, or the chunks themselves."""
    if encryption is None:
        return node.chunk_reader
    return DecryptingReader(node.chunk_reader, encryption.cipher)


def response_headers(sse: Mapping[str, Any] | None) -> dict[str, str]:
    """What answers about an encrypted version say (PUT, GET, HEAD, COPY, multipart)."""
    if not sse:
        return {}
    if sse.get("type") == "C":
        return {CUSTOMER + "algorithm": AES256, CUSTOMER + "key-MD5": sse["md5"]}
    if sse.get("type") == "KMS":
        headers = {SSE_HEADER: AWS_KMS, KMS_KEY_HEADER: sse["arn"]}
        if sse.get("ctx"):
            headers[CONTEXT_HEADER] = sse["ctx"]
        if sse.get("bk"):
            headers[BUCKET_KEY_HEADER] = "true"
        return headers
    return {SSE_HEADER: AES256}
