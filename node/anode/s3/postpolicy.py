"""Browser POST uploads: who signed the policy document, and whether the form obeys it.

Pure. A POST form carries a base64 JSON policy (an expiration and a list of conditions) signed
with SigV4 (`x-amz-algorithm`, `x-amz-credential`, `x-amz-date`, `x-amz-signature`: the
signature is HMAC-SHA256 of the base64 policy text under the usual derived key) or SigV2
(`AWSAccessKeyId`, `signature`: base64 HMAC-SHA1 of the same text). The handler
(`handlers/post_object`) parses the form; this module answers the S3 errors AWS answers.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .errors import ErrorCode, S3Error
from .sigv4 import ALGORITHM, SERVICE, TERMINATOR, signatures_equal, signing_key

# Form fields the policy need not mention (AWS "Creating a POST policy": conditions).
EXEMPT_FIELDS = frozenset({"x-amz-signature", "file", "policy", "signature", "awsaccesskeyid"})
_EXPIRATION = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z")


@dataclass(frozen=True)
class Policy:
    expiration: datetime
    conditions: list[Any]
    length_range: tuple[int, int] | None  # content-length-range, if the policy has one


def _denied(message: str) -> S3Error:
    return S3Error(ErrorCode.AccessDenied, message)


def decode(policy_b64: str) -> Policy:
    """The policy document; InvalidPolicyDocument when it is not base64 JSON of the right shape."""
    try:
        doc = json.loads(base64.b64decode(policy_b64, validate=True))
    except (binascii.Error, ValueError):
        raise S3Error(ErrorCode.InvalidPolicyDocument) from None
    if not isinstance(doc, dict):
        raise S3Error(ErrorCode.InvalidPolicyDocument)
    if not isinstance(doc.get("conditions"), list):  # names are case-sensitive
        raise S3Error(ErrorCode.InvalidPolicyDocument,
                      "Invalid Policy: Policy missing conditions.")
    expiration = doc.get("expiration")
    if not isinstance(expiration, str):
        raise S3Error(ErrorCode.InvalidPolicyDocument,
                      "Invalid Policy: Policy missing expiration.")
    if not _EXPIRATION.fullmatch(expiration):
        raise S3Error(ErrorCode.InvalidPolicyDocument,
                      "Invalid Policy: Invalid 'expiration' value: " + expiration)
    try:
        when = datetime.fromisoformat(expiration.replace("Z", "+00:00"))
    except ValueError:
        raise S3Error(ErrorCode.InvalidPolicyDocument,
                      "Invalid Policy: Invalid 'expiration' value: " + expiration) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    conditions = doc.get("conditions", [])
    length_range = None
    for condition in conditions:
        if (isinstance(condition, list) and condition
                and str(condition[0]).lower() == "content-length-range"):
            if len(condition) != 3:
                raise S3Error(ErrorCode.InvalidPolicyDocument,
                              "Invalid Policy: Invalid content-length-range condition.")
            try:
                length_range = (int(condition[1]), int(condition[2]))
            except (TypeError, ValueError):
                length_range = (-1, -1)
            if min(length_range) < 0:
                raise S3Error(ErrorCode.InvalidPolicyDocument,
                              "Invalid Policy: Invalid content-length-range condition.")
    return Policy(when, conditions, length_range)


def signer(
    fields: Mapping[str, str], lookup: Callable[[str], str | None], region: str | None = None
) -> str:
    """The access key that signed `fields["policy"]`, or the S3 error for a bad signature.
    `region`, when given, is the only one a SigV4 credential may name."""
    policy = fields["policy"]
    if "x-amz-signature" in fields or "x-amz-algorithm" in fields:
        for name in ("x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-signature"):
            if name not in fields:
                raise S3Error(ErrorCode.InvalidArgument,
                              f"Bucket POST must contain a field named '{name}'.  If it is "
                              "specified, please check the order of the fields.",
                              ArgumentName=name)
        if fields["x-amz-algorithm"] != ALGORITHM:
            raise S3Error(ErrorCode.InvalidArgument, "Unsupported algorithm",
                          ArgumentName="x-amz-algorithm",
                          ArgumentValue=fields["x-amz-algorithm"])
        parts = fields["x-amz-credential"].split("/")
        if len(parts) != 5 or parts[3] != SERVICE or parts[4] != TERMINATOR:
            raise S3Error(ErrorCode.InvalidArgument, "Invalid credential",
                          ArgumentName="x-amz-credential",
                          ArgumentValue=fields["x-amz-credential"])
        access_key, date, scope_region, service, _ = parts
        if region is not None and scope_region != region:
            raise S3Error(
                ErrorCode.InvalidArgument,
                f"the region '{scope_region}' is wrong; expecting '{region}'",
                ArgumentName="x-amz-credential",
                ArgumentValue=fields["x-amz-credential"],
                Region=region,
            )
        secret = lookup(access_key)
        if secret is None:
            raise S3Error(ErrorCode.InvalidAccessKeyId, AWSAccessKeyId=access_key)
        key = signing_key(secret, date, scope_region, service)
        expected = hmac.new(key, policy.encode(), hashlib.sha256).hexdigest()
        provided = fields["x-amz-signature"]
    else:
        if "awsaccesskeyid" not in fields or "signature" not in fields:
            missing = "AWSAccessKeyId" if "awsaccesskeyid" not in fields else "Signature"
            raise S3Error(ErrorCode.InvalidArgument,
                          f"Bucket POST must contain a field named '{missing}'.  If it is "
                          "specified, please check the order of the fields.",
                          ArgumentName=missing)
        access_key = fields["awsaccesskeyid"]
        secret = lookup(access_key)
        if secret is None:
            raise S3Error(ErrorCode.InvalidAccessKeyId, AWSAccessKeyId=access_key)
        expected = base64.b64encode(
            hmac.new(secret.encode(), policy.encode(), hashlib.sha1).digest()).decode()
        provided = fields["signature"]
        if not hmac.compare_digest(expected.encode(), provided.encode("utf-8", "replace")):
            raise S3Error(ErrorCode.SignatureDoesNotMatch, AWSAccessKeyId=access_key,
                          StringToSign=policy, SignatureProvided=provided)
        return access_key
    if not signatures_equal(expected, provided):
        raise S3Error(ErrorCode.SignatureDoesNotMatch, AWSAccessKeyId=access_key,
                      StringToSign=policy, SignatureProvided=provided)
    return access_key


def check(policy: Policy, fields: Mapping[str, str], *, bucket: str, now: datetime) -> None:
    """The form obeys the policy: not expired, every condition holds, no field left unchecked.

    `fields` has lower-cased names (form field names are case-insensitive) and includes
    `bucket`."""
    if now >= policy.expiration:
        raise _denied("Invalid according to Policy: Policy expired.")
    values = {**fields, "bucket": bucket}
    checked: set[str] = set()
    for condition in policy.conditions:
        if isinstance(condition, dict):
            if len(condition) != 1:
                raise S3Error(ErrorCode.InvalidPolicyDocument,
                              "Invalid Policy: Invalid Simple-Condition: "
                              "Simple-Conditions must have exactly one property specified.")
            ((name, expected),) = condition.items()
            name = str(name).lower()
            checked.add(name)
            if values.get(name) != str(expected):
                raise _denied(f'Invalid according to Policy: Policy Condition failed: '
                              f'["eq", "${name}", "{expected}"]')
        elif isinstance(condition, list) and condition:
            operator = str(condition[0]).lower()
            if operator == "content-length-range":
                continue
            if operator not in ("eq", "starts-with") or len(condition) != 3:
                raise S3Error(ErrorCode.InvalidPolicyDocument,
                              f"Invalid Policy: Invalid condition: {json.dumps(condition)}")
            target, expected = str(condition[1]), str(condition[2])
            if not target.startswith("$"):
                raise S3Error(ErrorCode.InvalidPolicyDocument,
                              f"Invalid Policy: Invalid condition: {json.dumps(condition)}")
            name = target[1:].lower()
            checked.add(name)
            value = values.get(name)
            if operator == "eq":
                ok = value == expected
            else:  # a missing field starts with the empty prefix
                ok = _starts_with(name, value or "", expected)
            if not ok:
                raise _denied(f"Invalid according to Policy: Policy Condition failed: "
                              f"{json.dumps(condition)}")
        else:
            raise S3Error(ErrorCode.InvalidPolicyDocument,
                          f"Invalid Policy: Invalid condition: {json.dumps(condition)}")
    if "bucket" not in checked:
        raise _denied('Invalid according to Policy: Policy Condition failed: '
                      f'["eq", "$bucket", "{bucket}"]')
    # x-amz-checksum-* is verified against the file itself, so a policy need not name it (AWS)
    extra = [name for name in fields if name not in checked and name not in EXEMPT_FIELDS
             and not name.startswith(("x-ignore-", "x-amz-checksum-"))]
    if extra:
        raise _denied(f"Invalid according to Policy: Extra input fields: {extra[0]}")


def _starts_with(name: str, value: str, prefix: str) -> bool:
    """starts-with; for Content-Type every comma-separated value must match (AWS)."""
    if name == "content-type":
        return all(v.strip().startswith(prefix) for v in value.split(","))
    return value.startswith(prefix)
