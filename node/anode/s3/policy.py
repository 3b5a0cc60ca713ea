"""Bucket policies: parse and validate the JSON once, then match statements against requests.

Pure: no I/O and no Node. `parse_policy` turns the stored text into a `Policy` (raising
MalformedPolicy the way PutBucketPolicy answers it); `Policy.evaluate` says whether an explicit
Deny, an Allow, or nothing applies to one request; `Policy.is_public` is what
GetBucketPolicyStatus and PublicAccessBlock need. The grammar and the semantics follow the IAM
policy reference (Principal, Action/NotAction, Resource/NotResource, Condition operators with
`IfExists` and `ForAnyValue:`/`ForAllValues:`, policy variables such as `${aws:username}`).
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..wildcard import wildcard_match
from .errors import ErrorCode, S3Error

MAX_POLICY_BYTES = 20 * 1024
VERSIONS = ("2012-10-17", "2008-10-17")
ALLOW, DENY = "Allow", "Deny"

# Keys whose fixed value in an Allow statement makes it non-public (AWS "The meaning of public").
_RESTRICTING_KEYS = {
    "aws:sourcearn", "aws:sourcevpc", "aws:sourcevpce", "aws:sourceaccount", "aws:sourceowner",
    "aws:principalaccount", "aws:principalarn", "aws:principalorgid", "aws:userid",
    "aws:username", "aws:sourceip", "s3:dataaccesspointarn", "s3:dataaccesspointaccount",
}


def malformed(message: str) -> S3Error:
    return S3Error(ErrorCode.MalformedPolicy, message)


@dataclass(frozen=True)
class Identity:
    """Who asks, as policies see it. `name` is None for an anonymous request."""

    name: str | None
    canonical_id: str

    @property
    def anonymous(self) -> bool:
        return self.name is None


@dataclass(frozen=True)
class Principals:
    """A statement's Principal or NotPrincipal: `*`, or a set of user names / canonical ids."""

    everyone: bool
    names: frozenset[str]
    ids: frozenset[str]

    def matches(self, who: Identity) -> bool:
        if self.everyone:
            return True
        if who.anonymous:
            return False
        return who.name in self.names or who.canonical_id in self.ids


@dataclass(frozen=True)
class Condition:
    operator: str  # e.g. "StringLike", without IfExists / set prefix
    if_exists: bool
    set_op: str | None  # "ForAnyValue", "ForAllValues" or None
    key: str  # lower-cased context key
    values: tuple[str, ...]


@dataclass(frozen=True)
class Statement:
    sid: str | None
    effect: str
    principal: Principals | None
    not_principal: Principals | None
    actions: tuple[str, ...] | None
    not_actions: tuple[str, ...] | None
    resources: tuple[str, ...] | None
    not_resources: tuple[str, ...] | None
    conditions: tuple[Condition, ...]

    def applies(self, who: Identity, action: str, resource: str,
                context: Mapping[str, Sequence[str]]) -> bool:
        if self.principal is not None and not self.principal.matches(who):
            return False
        if self.not_principal is not None and self.not_principal.matches(who):
            return False
        if self.actions is not None and not any(_action_match(p, action) for p in self.actions):
            return False
        if self.not_actions is not None and any(_action_match(p, action)
                                                for p in self.not_actions):
            return False
        variables = _variables(who, context)
        if self.resources is not None and not any(
                _wildcard(substitute(p, variables), resource) for p in self.resources):
            return False
        if self.not_resources is not None and any(
                _wildcard(substitute(p, variables), resource) for p in self.not_resources):
            return False
        return all(_condition_holds(c, context, variables) for c in self.conditions)

    @property
    def public(self) -> bool:
        """An Allow to everyone that no fixed-value condition narrows down."""
        if self.effect != ALLOW:
            return False
        wide = (self.principal is not None and self.principal.everyone) or (
            self.not_principal is not None)
        if not wide:
            return False
        for condition in self.conditions:
            if condition.key in _RESTRICTING_KEYS and condition.operator in (
                    "StringEquals", "StringEqualsIgnoreCase", "ArnEquals", "ArnLike",
                    "StringLike") and not any("*" in v or "?" in v for v in condition.values):
                return False
            if condition.key == "aws:sourceip" and condition.operator == "IpAddress" and all(
                    _network(v).prefixlen > 0 for v in condition.values):
                return False
        return True


@dataclass(frozen=True)
class Policy:
    text: str
    statements: tuple[Statement, ...]

    def evaluate(self, who: Identity, action: str, resource: str,
                 context: Mapping[str, Sequence[str]], *, allows: bool = True) -> str | None:
        """DENY if a Deny statement applies, else ALLOW if an Allow does (and `allows`), else None.

        `allows=False` evaluates only the Deny statements (RestrictPublicBuckets).
        """
        allowed = False
        for statement in self.statements:
            if statement.effect == ALLOW and (allowed or not allows):
                continue
            if statement.applies(who, action, resource, context):
                if statement.effect == DENY:
                    return DENY
                allowed = True
        return ALLOW if allowed else None

    @property
    def is_public(self) -> bool:
        return any(s.public for s in self.statements)


# ---- parsing ------------------------------------------------------------------------------

PrincipalResolver = Callable[[str], tuple[str, str] | None]
"""Maps one Principal entry (name, canonical id or IAM ARN) to (user name, canonical id)."""


def parse_policy(text: str, *, bucket: str, resolve: PrincipalResolver,
                 strict: bool = True) -> Policy:
    """Validate a PutBucketPolicy body for `bucket`; MalformedPolicy on any error.

    `strict=False` (for stored policies) skips the checks that only refuse a new policy (which
    resources and actions fit together), so a rule added later never locks a bucket."""
    if len(text.encode()) > MAX_POLICY_BYTES:
        raise malformed("Policies must be less than 20KB")
    if not text.lstrip().startswith("{"):
        raise malformed("Policies must be valid JSON and the first byte must be '{'")
    try:
        doc = json.loads(text)
    except ValueError:
        raise malformed("Policies must be valid JSON and the first byte must be '{'") from None
    if not isinstance(doc, dict):
        raise malformed("Policies must be valid JSON and the first byte must be '{'")
    unknown = set(doc) - {"Version", "Id", "Statement"}
    if unknown:
        raise malformed(f"Unknown field {sorted(unknown)[0]}")
    version = doc.get("Version", "2008-10-17")
    if version not in VERSIONS:
        raise malformed("Invalid policy version")
    if "Statement" not in doc:
        raise malformed("Missing required field Statement")
    raw = doc["Statement"]
    raw_statements = [raw] if isinstance(raw, dict) else raw
    if not isinstance(raw_statements, list) or not raw_statements:
        raise malformed("Missing required field Statement")
    statements = tuple(_statement(s, bucket, resolve, strict) for s in raw_statements)
    sids = [s.sid for s in statements if s.sid]
    if len(sids) != len(set(sids)):
        raise malformed("Statement IDs (SID) in a single policy must be unique")
    return Policy(text=text, statements=statements)


@functools.lru_cache(maxsize=256)
def _cached(text: str, bucket: str) -> Policy:
    return parse_policy(text, bucket=bucket, resolve=_accept_any, strict=False)


def load_policy(text: str, bucket: str) -> Policy:
    """A stored (already validated) policy, parsed once and cached by its text."""
    return _cached(text, bucket)


def _accept_any(entry: str) -> tuple[str, str] | None:
    return principal_entry(entry)


def principal_entry(entry: str) -> tuple[str, str]:
    """(user name, canonical id) a Principal entry names, without checking that it exists.

    Accepts a user name, a 64-hex canonical id, `arn:aws:iam::<acct>:user/<name>` and
    `arn:aws:iam::<acct>:root` (the account of user or canonical id `<acct>`).
    """
    if entry.startswith("arn:aws:iam::"):
        account, _, rest = entry[len("arn:aws:iam::"):].partition(":")
        if rest.startswith("user/"):
            return rest[len("user/"):].rsplit("/", 1)[-1], ""
        if rest == "root":
            return _name_or_id(account)
        return "", ""
    return _name_or_id(entry)


def _name_or_id(value: str) -> tuple[str, str]:
    if re.fullmatch(r"[0-9a-f]{64}", value):
        return "", value
    return value, ""


def _statement(raw: Any, bucket: str, resolve: PrincipalResolver, strict: bool) -> Statement:
    if not isinstance(raw, dict):
        raise malformed("Statement must be an object")
    unknown = set(raw) - {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction",
                          "Resource", "NotResource", "Condition"}
    if unknown:
        raise malformed(f"Unknown field {sorted(unknown)[0]}")
    effect = raw.get("Effect")
    if effect is None:
        raise malformed("Missing required field Effect")
    if effect not in (ALLOW, DENY):
        raise malformed(f"Invalid effect: {effect}")
    if ("Principal" in raw) == ("NotPrincipal" in raw):
        raise malformed("Missing required field Principal" if "Principal" not in raw
                        else "Statement cannot have both Principal and NotPrincipal")
    if ("Action" in raw) == ("NotAction" in raw):
        raise malformed("Missing required field Action" if "Action" not in raw
                        else "Statement cannot have both Action and NotAction")
    if ("Resource" in raw) == ("NotResource" in raw):
        raise malformed("Missing required field Resource" if "Resource" not in raw
                        else "Statement cannot have both Resource and NotResource")
    sid = raw.get("Sid")
    if sid is not None and not isinstance(sid, str):
        raise malformed("Sid must be a string")
    actions = _strings(raw, "Action")
    not_actions = _strings(raw, "NotAction")
    for action in actions or not_actions or ():
        if action != "*" and not re.fullmatch(r"s3:[A-Za-z*?]+", action):
            raise malformed("Policy has invalid action")
    resources = _strings(raw, "Resource")
    not_resources = _strings(raw, "NotResource")
    for resource in resources or not_resources or ():
        if strict and not _resource_in_bucket(resource, bucket):
            raise malformed("Policy has invalid resource")
    if strict and actions is not None and resources is not None:
        _check_actions_apply(actions, resources)
    return Statement(
        sid=sid,
        effect=effect,
        principal=_principals(raw["Principal"], resolve) if "Principal" in raw else None,
        not_principal=(_principals(raw["NotPrincipal"], resolve)
                       if "NotPrincipal" in raw else None),
        actions=actions,
        not_actions=not_actions,
        resources=resources,
        not_resources=not_resources,
        conditions=_conditions(raw.get("Condition", {})),
    )


def _object_action(action: str) -> bool:
    name = action.lower()
    return ("object" in name and "bucket" not in name) or name in (
        "s3:abortmultipartupload", "s3:listmultipartuploadparts",
        "s3:bypassgovernanceretention")


def _check_actions_apply(actions: tuple[str, ...], resources: tuple[str, ...]) -> None:
    """Each action must apply to some resource: object actions to `bucket/key` ARNs, bucket
    actions to the bucket's ARN (AWS refuses e.g. s3:ListBucket on `arn:aws:s3:::b/*`)."""
    paths = [r[len("arn:aws:s3:::"):] for r in resources]
    objects = any("/" in p or "*" in p for p in paths)
    buckets = any("/" not in p for p in paths)
    for action in actions:
        if "*" in action or "?" in action:
            continue
        if not (objects if _object_action(action) else buckets):
            raise malformed("Action does not apply to any resource(s) in statement")


def _strings(raw: dict[str, Any], field: str) -> tuple[str, ...] | None:
    if field not in raw:
        return None
    value = raw[field]
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise malformed(f"{field} must be a string or a non-empty list of strings")
    return tuple(values)


def _resource_in_bucket(resource: str, bucket: str) -> bool:
    """A resource must name this bucket or objects in it (wildcards allowed)."""
    if not resource.startswith("arn:aws:s3:::"):
        return False
    name = resource[len("arn:aws:s3:::"):].split("/", 1)[0]
    return _wildcard(name, bucket) or "$" in name


def _principals(raw: Any, resolve: PrincipalResolver) -> Principals:
    if raw == "*":
        return Principals(True, frozenset(), frozenset())
    if not isinstance(raw, dict) or not raw:
        raise malformed("Invalid principal in policy")
    names: set[str] = set()
    ids: set[str] = set()
    everyone = False
    for kind, value in raw.items():
        if kind not in ("AWS", "CanonicalUser", "Service", "Federated"):
            raise malformed("Invalid principal in policy")
        entries = [value] if isinstance(value, str) else value
        if not isinstance(entries, list) or not entries:
            raise malformed("Invalid principal in policy")
        for entry in entries:
            if not isinstance(entry, str):
                raise malformed("Invalid principal in policy")
            if kind in ("Service", "Federated"):
                continue  # accepted, but no Anode caller is an AWS service or a federated user
            if entry == "*" and kind == "AWS":
                everyone = True
                continue
            resolved = resolve(entry)
            if resolved is None:
                raise malformed("Invalid principal in policy")
            name, canonical = resolved
            if name:
                names.add(name)
            if canonical:
                ids.add(canonical)
    return Principals(everyone, frozenset(names), frozenset(ids))


_OPERATORS = {
    "StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase",
    "StringLike", "StringNotLike", "NumericEquals", "NumericNotEquals", "NumericLessThan",
    "NumericLessThanEquals", "NumericGreaterThan", "NumericGreaterThanEquals", "DateEquals",
    "DateNotEquals", "DateLessThan", "DateLessThanEquals", "DateGreaterThan",
    "DateGreaterThanEquals", "Bool", "IpAddress", "NotIpAddress", "ArnEquals", "ArnLike",
    "ArnNotEquals", "ArnNotLike", "Null", "BinaryEquals",
}
_NEGATED = {"StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike", "NumericNotEquals",
            "DateNotEquals", "NotIpAddress", "ArnNotEquals", "ArnNotLike"}


def _conditions(raw: Any) -> tuple[Condition, ...]:
    if not isinstance(raw, dict):
        raise malformed("Condition must be an object")
    out: list[Condition] = []
    for full_operator, block in raw.items():
        set_op, _, operator = full_operator.rpartition(":")
        if set_op not in ("", "ForAnyValue", "ForAllValues"):
            raise malformed(f"Invalid Condition type : {full_operator}")
        if_exists = operator.endswith("IfExists") and operator != "IfExists"
        base = operator[: -len("IfExists")] if if_exists else operator
        if base not in _OPERATORS or (base == "Null" and if_exists):
            raise malformed(f"Invalid Condition type : {full_operator}")
        if not isinstance(block, dict) or not block:
            raise malformed(f"Invalid Condition block for {full_operator}")
        for key, value in block.items():
            values = value if isinstance(value, list) else [value]
            if not values or not all(isinstance(v, str | bool | int | float) for v in values):
                raise malformed(f"Invalid Condition value for {key}")
            texts = tuple(_text(v) for v in values)
            if base in ("IpAddress", "NotIpAddress"):
                for v in texts:
                    _network(v)
            out.append(Condition(base, if_exists, set_op or None, key.lower(), texts))
    return tuple(out)


def _text(value: str | bool | float) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _network(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise malformed(f"Invalid IP address or CIDR: {value}") from None


# ---- matching -----------------------------------------------------------------------------


def _wildcard(pattern: str, value: str) -> bool:
    """`*` and `?` of resources, ArnLike and StringLike: no backtracking (anode.wildcard)."""
    return wildcard_match(pattern, value)


def _action_match(pattern: str, action: str) -> bool:
    return wildcard_match(pattern, action, ignore_case=True)


def _variables(who: Identity, context: Mapping[str, Sequence[str]]) -> dict[str, str]:
    values = {key: vals[0] for key, vals in context.items() if len(vals) == 1}
    values.update({"*": "*", "?": "?", "$": "$"})
    return values


_VARIABLE = re.compile(r"\$\{([^}]+)\}")


def substitute(text: str, variables: Mapping[str, str]) -> str:
    """Policy variables: `${aws:username}` and friends; unknown ones match nothing."""
    if "${" not in text:
        return text

    def one(match: re.Match[str]) -> str:
        name, _, default = match.group(1).partition(",")
        value = variables.get(name.strip().lower())
        if value is None and default:
            value = default.strip().strip("'")
        return value if value is not None else "\x00no-such-variable\x00"

    return _VARIABLE.sub(one, text)


def _condition_holds(condition: Condition, context: Mapping[str, Sequence[str]],
                     variables: Mapping[str, str]) -> bool:
    present = context.get(condition.key)
    if condition.operator == "Null":
        wanted_absent = condition.values[0].lower() == "true"
        return (present is None) == wanted_absent
    if present is None:
        if condition.if_exists:
            return True
        if condition.set_op == "ForAllValues":
            return True
        return condition.operator in _NEGATED
    wanted = [substitute(v, variables) for v in condition.values]
    test = _TESTS[condition.operator]
    negated = condition.operator in _NEGATED
    if condition.set_op == "ForAllValues":
        return all(test(v, wanted) != negated for v in present)
    if negated and condition.set_op is None:
        return not any(test(v, wanted) for v in present)
    return any(test(v, wanted) != negated for v in present)


def _ordered(parse: Callable[[str], float]
             ) -> Callable[[Callable[[float, float], bool]], Callable[[str, list[str]], bool]]:
    """Numeric* and Date* operators: both sides parsed, unparseable values never match."""
    def make(compare: Callable[[float, float], bool]) -> Callable[[str, list[str]], bool]:
        def test(value: str, wanted: list[str]) -> bool:
            try:
                parsed = parse(value)
                return any(compare(parsed, parse(w)) for w in wanted)
            except ValueError:
                return False
        return test
    return make


def _timestamp(value: str) -> float:
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


_numeric = _ordered(float)
_date = _ordered(_timestamp)


def _ip(value: str, wanted: list[str]) -> bool:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return False
    return any(address in _network(w) for w in wanted)


def _like(value: str, wanted: list[str]) -> bool:
    return any(_wildcard(w, value) for w in wanted)


_EQ = {
    "equals": lambda a, b: a == b, "lt": lambda a, b: a < b, "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b, "ge": lambda a, b: a >= b,
}

_TESTS: dict[str, Callable[[str, list[str]], bool]] = {
    "StringEquals": lambda v, w: v in w,
    "StringNotEquals": lambda v, w: v in w,
    "StringEqualsIgnoreCase": lambda v, w: v.lower() in {x.lower() for x in w},
    "StringNotEqualsIgnoreCase": lambda v, w: v.lower() in {x.lower() for x in w},
    "StringLike": _like,
    "StringNotLike": _like,
    "ArnEquals": _like,
    "ArnLike": _like,
    "ArnNotEquals": _like,
    "ArnNotLike": _like,
    "NumericEquals": _numeric(_EQ["equals"]),
    "NumericNotEquals": _numeric(_EQ["equals"]),
    "NumericLessThan": _numeric(_EQ["lt"]),
    "NumericLessThanEquals": _numeric(_EQ["le"]),
    "NumericGreaterThan": _numeric(_EQ["gt"]),
    "NumericGreaterThanEquals": _numeric(_EQ["ge"]),
    "DateEquals": _date(_EQ["equals"]),
    "DateNotEquals": _date(_EQ["equals"]),
    "DateLessThan": _date(_EQ["lt"]),
    "DateLessThanEquals": _date(_EQ["le"]),
    "DateGreaterThan": _date(_EQ["gt"]),
    "DateGreaterThanEquals": _date(_EQ["ge"]),
    "Bool": lambda v, w: v.lower() in {x.lower() for x in w},
    "IpAddress": _ip,
    "NotIpAddress": _ip,
    "BinaryEquals": lambda v, w: v in w,
}
