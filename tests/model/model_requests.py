"""Talking to the store for the model harness: one request and its answer (or `Unavailable`,
when the client cannot know what happened), and the SSE and Range headers a step sends."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from model_targets import Target
from s3model import Enc, Expect, Version

SSE_C_KEYS = [bytes([i + 1]) * 32 for i in range(3)]
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
    return Enc("C", int(name[1])) if name.startswith("C") else Enc(name)


def write_sse(enc: Enc) -> dict[str, Any]:
    if enc.kind == "S3":
        return {"ServerSideEncryption": "AES256"}
    if enc.kind == "C":
        return {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": SSE_C_KEYS[enc.key]}
    return {}


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
