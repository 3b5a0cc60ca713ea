"""Talking to the store for the model harness: one request and its answer (or `Unavailable`,
when the client cannot know what happened), and the SSE and Range headers a step sends."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from model_targets import Target
from s3model import KMS_KEY, KMS_MODES, Enc, Expect, Version

SSE_C_KEYS = [bytes([i + 1]) * 32 for i in range(3)]
# how a request names the key of KMS mode i (none: the default key; an alias; a bare name)
KMS_KEY_IDS = [None, f"alias/{KMS_KEY}", KMS_KEY]
# what the runs exercised, by kind: requests, examples, faults (see model_run.run_machine)
STATS: Counter[str] = Counter()


class Unavailable(Exception):
    """The store could not answer (503, cut connection, timeout): the outcome is unknown."""


@dataclass
class Answer:
    status: int
    code: str = ""
    body: bytes = b""
    response: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status < 300


def parse_enc(name: str) -> Enc:
    """An encryption drawn by name: none (""), "S3", "C<i>" (SSE-C key i), "K<i>" (KMS mode i)."""
    kinds = {"C": "C", "K": "KMS"}
    return Enc(kinds[name[0]], int(name[1])) if name[:1] in kinds else Enc(name)


def write_sse(enc: Enc) -> dict[str, Any]:
    if enc.kind == "S3":
        return {"ServerSideEncryption": "AES256"}
    if enc.kind == "KMS":
        headers = {"ServerSideEncryption": "aws:kms"}
        if KMS_KEY_IDS[enc.key] is not None:
            headers["SSEKMSKeyId"] = KMS_KEY_IDS[enc.key]
        if KMS_MODES[enc.key][1] is not None:
            headers["SSEKMSEncryptionContext"] = KMS_MODES[enc.key][1]
        return headers
    if enc.kind == "C":
        return {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": SSE_C_KEYS[enc.key]}
    return {}


def check_sse(what: str, response: dict[str, Any], enc: Enc, *, context: bool = False) -> None:
    """The answer's encryption fields are the ones AWS gives for `enc` (`Enc.answer`); the
    encryption context only where the operation answers it (`context`: PUT, copy, create)."""
    for name, want in enc.answer().items():
        got = response.get(name)
        if name == "SSEKMSKeyId" and want is not None:
            assert got is not None and got.startswith("arn:aws:kms:") and got.endswith(want), (
                f"{what}: {name} {got}, expected an ARN ending {want}"
            )
        elif name != "SSEKMSEncryptionContext" or context:
            assert got == want, f"{what}: {name} {got}, expected {want} ({enc})"


def read_sse(key: int | None, prefix: str = "") -> dict[str, Any]:
    if key is None:
        return {}
    return {f"{prefix}SSECustomerAlgorithm": "AES256", f"{prefix}SSECustomerKey": SSE_C_KEYS[key]}


def pick_key(version: Version | Expect, pick: str) -> int | None:
    """The SSE-C key a read sends: the version's own, none, or a wrong one."""
    own = version.enc.key if isinstance(version, Version) and version.enc.kind == "C" else None
    if pick == "right":
        return own
    if pick == "none":
        return None
    return 0 if own is None else (own + 1) % len(SSE_C_KEYS)


def range_header(spec, size: int) -> str | None:
    if spec is None:
        return None
    kind, a, n = spec
    start = a if a >= 0 else max(0, size + a + 1)
    if kind == "-n":
        return f"bytes=-{n}"
    if kind == "a-":
        return f"bytes={start}-"
    return f"bytes={start}-{start + n}"


def call(target: Target, user: str, method: str, **kwargs) -> Answer:
    """One request as `user`; its answer, or Unavailable. A 5xx other than 503 fails the run."""
    client = target.client(user)
    STATS["requests"] += 1
    try:
        response = getattr(client, method)(**kwargs)
        data = response["Body"].read() if "Body" in response else b""
    except ClientError as e:
        status = e.response["ResponseMetadata"]["HTTPStatusCode"]
        code = e.response["Error"].get("Code", str(status))
        if status == 503:
            raise Unavailable(f"{method}: 503 {code}") from e
        assert status < 500, (
            f"{method} {kwargs.get('Key', '')}: {status} {code} "
            f"{e.response['Error'].get('Message', '')}"
        )
        return Answer(status, code)
    except BotoCoreError as e:
        raise Unavailable(f"{method}: {e!r}") from e
    return Answer(response["ResponseMetadata"]["HTTPStatusCode"], body=data, response=response)
