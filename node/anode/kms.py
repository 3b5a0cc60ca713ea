"""The key service behind SSE-KMS and SSE-S3: the master key and named KMS keys.

A KMS key is 32 random bytes created on the member that handles the request and wrapped there
(AES-256-GCM under the master key, bound to the key's name) before it is proposed, so neither the
Raft log nor RocksDB ever holds it in the clear. An object encrypted with a key is sealed with a
data key derived from the key's material and the request's encryption context, so the context
is bound to the object as it is in AWS KMS: another context opens nothing. Objects under the same
key and context share a key domain, so they still deduplicate.

Keys are addressed as S3 clients do: a name, `alias/<name>`, or an ARN ending in `key/<name>` or
`alias/<name>`. `aws/s3` is the default key (as AWS's managed key), created on first use.
"""

from __future__ import annotations

import base64
import re
import secrets
import time
import weakref
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import ErrorCode, Refused
from .meta.commands import CreateKmsKey, InitMasterKey, SetKmsKeyEnabled

if TYPE_CHECKING:
    from .node import Node

DEFAULT_KEY = "aws/s3"
ACCOUNT = "000000000000"  # Anode has no accounts; ARNs carry AWS's placeholder
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9/_.-]{0,255}")
_MASTER: weakref.WeakKeyDictionary[Any, bytes] = weakref.WeakKeyDictionary()
_UNWRAPPED: dict[tuple[str, bytes], bytes] = {}


async def master_key(node: Node) -> bytes:
    """The master key: `[storage] master_key`, else the one the metadata holds, which the first
    node to need it generates and proposes (every replica then uses the winner)."""
    if node in _MASTER:
        return _MASTER[node]
    if node.config.storage.master_key:
        key = base64.b64decode(node.config.storage.master_key)
    else:
        key = node.meta.master_key() or await node.propose(
            InitMasterKey(key=secrets.token_bytes(32)))
    _MASTER[node] = key
    return key


def not_found(key_id: str) -> Refused:
    return Refused(ErrorCode.KMS_NotFoundException, f"Invalid keyId {key_id}")


def key_name(key_id: str) -> str:
    """The key a client names: `name`, `alias/name`, `arn:aws:kms:<region>:<acct>:key/name`."""
    resource = key_id.strip()
    if resource.startswith("arn:"):
        parts = resource.split(":", 5)
        if len(parts) != 6 or parts[2] != "kms":
            raise not_found(key_id)
        resource = parts[5]
    for prefix in ("key/", "alias/"):
        if resource.startswith(prefix):
            resource = resource[len(prefix):]
            break
    if not _NAME.fullmatch(resource):
        raise not_found(key_id)
    return resource


def arn(node: Node, name: str) -> str:
    return f"arn:aws:kms:{node.config.node.region}:{ACCOUNT}:key/{name}"


def _aad(name: str) -> bytes:
    return b"anode/kms/key/" + name.encode()


def _wrap(master: bytes, name: str, material: bytes) -> bytes:
    nonce = secrets.token_bytes(12)
    return nonce + AESGCM(master).encrypt(nonce, material, _aad(name))


def _unwrap(master: bytes, name: str, wrapped: bytes) -> bytes:
    try:
        return AESGCM(master).decrypt(wrapped[:12], wrapped[12:], _aad(name))
    except InvalidTag:  # the master key changed under the cluster: say so, never guess
        raise Refused(ErrorCode.InternalError,
                      f"KMS key {name} cannot be unwrapped with this master key") from None


def public(node: Node, record: dict[str, Any]) -> dict[str, Any]:
    """What the admin API shows of a key: never its material, wrapped or not."""
    return {"name": record["name"], "arn": arn(node, record["name"]),
            "enabled": record["enabled"], "created": record["created"]}


async def create(node: Node, name: str) -> tuple[dict[str, Any], bool]:
    """(the key's record, whether this call created it)."""
    if not _NAME.fullmatch(name) or name.startswith(("key/", "alias/")):
        raise Refused(ErrorCode.InvalidArgument,
                      "A key name is 1-256 letters, digits, '/', '_', '.', '-' (not key/ or "
                      "alias/ first)")
    wrapped = _wrap(await master_key(node), name, secrets.token_bytes(32))
    record = await node.propose(CreateKmsKey(name=name, wrapped=wrapped, created=time.time()))
    return record, record["wrapped"] == wrapped


async def set_enabled(node: Node, name: str, enabled: bool) -> dict[str, Any]:
    return await node.propose(SetKmsKeyEnabled(name=name, enabled=enabled))


async def material(node: Node, name: str) -> bytes:
    """The key's 32 bytes, for sealing or opening; unknown or disabled keys are refused."""
    record = node.meta.kms_key(name)
    if record is None and name == DEFAULT_KEY:
        record, _ = await create(node, name)
    if record is None:
        raise not_found(name)
    if not record["enabled"]:
        raise Refused(ErrorCode.KMS_DisabledException, f"{arn(node, name)} is disabled.")
    cached = _UNWRAPPED.get((name, record["wrapped"]))
    if cached is None:
        cached = _unwrap(await master_key(node), name, record["wrapped"])
        _UNWRAPPED[(name, record["wrapped"])] = cached
    return cached


def data_key(key_material: bytes, context: bytes) -> bytes:
    """The key an object is sealed with: its KMS key's material bound to its context."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"anode/kms/data-key\0" + context).derive(key_material)
