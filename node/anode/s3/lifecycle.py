"""Bucket lifecycle rules: the PutBucketLifecycleConfiguration XML in and out, and which rule
expires what.

Pure. `parse_config` validates a request body as AWS does (MalformedXML for what the schema
forbids, InvalidArgument / InvalidRequest for bad values) and returns the rules as plain maps,
stored in the bucket record under `lifecycle` (SetBucketConfig). `to_xml` answers them back in
the form they were given (legacy rule-level Prefix, or a Filter). What a rule does (which key it
applies to, when it expires what) is `anode/lifecycle/rules.py`, re-exported here.

A rule map: {"id", "status", "prefix_legacy"?: str, "filter"?: {"and"?: bool, "prefix"?: str,
"tags"?: [[k, v]], "gt"?: int, "lt"?: int}, "expiration"?: {"days"|"date"|"marker"},
"noncurrent"?: {"days"?, "newer"?}, "abort_days"?: int, "transitions"?: [...],
"nc_transitions"?: [...]}.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ..lifecycle.rules import (
    Rule,
    after_days,
    applies_to,
    current_expired,
    noncurrent_expired,
    upload_expired,
)
from . import xml
from .errors import ErrorCode, S3Error

__all__ = [
    "after_days",
    "applies_to",
    "current_expired",
    "noncurrent_expired",
    "parse_config",
    "to_xml",
    "upload_expired",
]

MAX_RULES = 1000
MAX_ID = 255
MAX_NEWER_NONCURRENT = 100
RULE_ELEMENTS = frozenset({"ID", "Prefix", "Filter", "Status", "Transition", "Expiration",
                           "NoncurrentVersionTransition", "NoncurrentVersionExpiration",
                           "AbortIncompleteMultipartUpload"})


# ---- parsing ------------------------------------------------------------------------------


def parse_config(body: bytes) -> list[Rule]:
    root = xml.parse(body, "LifecycleConfiguration")
    elements = xml.children(root, "Rule")
    if not elements or len(elements) > MAX_RULES:
        raise S3Error(ErrorCode.MalformedXML)
    rules = [_rule(element) for element in elements]
    seen: set[str] = set()
    for rule in rules:
        if rule["id"] in seen:
            raise S3Error(ErrorCode.InvalidArgument,
                          "Rule ID must be unique. Found same ID for more than one rule",
                          ArgumentName="ID", ArgumentValue=rule["id"])
        seen.add(rule["id"])
    return rules


def _one(element: Any, name: str) -> Any | None:
    found = xml.children(element, name)
    if len(found) > 1:
        raise S3Error(ErrorCode.MalformedXML)
    return found[0] if found else None


def _text(element: Any, name: str) -> str | None:
    child = _one(element, name)
    return None if child is None else (child.text or "").strip()


def _integer(element: Any, name: str) -> int | None:
    value = _text(element, name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise S3Error(ErrorCode.MalformedXML) from None


def _positive(value: int | None, message: str, name: str) -> int | None:
    if value is not None and value <= 0:
        raise S3Error(ErrorCode.InvalidArgument, message, ArgumentName=name,
                      ArgumentValue=str(value))
    return value


def _rule(element: Any) -> Rule:
    if any(xml.local(child.tag) not in RULE_ELEMENTS for child in element):
        raise S3Error(ErrorCode.MalformedXML)
    rule_id = _text(element, "ID")
    if rule_id is None or rule_id == "":
        rule_id = secrets.token_urlsafe(36)[:48]  # AWS names an unnamed rule itself
    if len(rule_id) > MAX_ID:
        raise S3Error(ErrorCode.InvalidArgument, "ID length should not exceed allowed limit of 255",
                      ArgumentName="ID", ArgumentValue=rule_id)
    status = _text(element, "Status")
    if status not in ("Enabled", "Disabled"):
        raise S3Error(ErrorCode.MalformedXML)
    rule: Rule = {"id": rule_id, "status": status}
    legacy = _text(element, "Prefix")
    filter_element = _one(element, "Filter")
    if (legacy is None) == (filter_element is None):
        raise S3Error(ErrorCode.MalformedXML)  # exactly one of Prefix and Filter
    if legacy is not None:
        rule["prefix_legacy"] = legacy
    else:
        rule["filter"] = _filter(filter_element)
    expiration = _one(element, "Expiration")
    if expiration is not None:
        rule["expiration"] = _expiration(expiration)
    noncurrent = _one(element, "NoncurrentVersionExpiration")
    if noncurrent is not None:
        rule["noncurrent"] = _noncurrent(noncurrent)
    abort = _one(element, "AbortIncompleteMultipartUpload")
    if abort is not None:
        days = _integer(abort, "DaysAfterInitiation")
        if days is None:
            raise S3Error(ErrorCode.MalformedXML)
        rule["abort_days"] = _positive(
            days, "'DaysAfterInitiation' for AbortIncompleteMultipartUpload action must be a "
            "positive integer", "DaysAfterInitiation")
    transitions = [_transition(t, "Days") for t in xml.children(element, "Transition")]
    if transitions:
        rule["transitions"] = transitions
    nc_transitions = [_transition(t, "NoncurrentDays")
                      for t in xml.children(element, "NoncurrentVersionTransition")]
    if nc_transitions:
        rule["nc_transitions"] = nc_transitions
    if not any(k in rule for k in ("expiration", "noncurrent", "abort_days", "transitions",
                                   "nc_transitions")):
        raise S3Error(ErrorCode.InvalidRequest,
                      "At least one action needs to be specified in a rule")
    tags = rule.get("filter", {}).get("tags")
    if tags and "abort_days" in rule:
        raise S3Error(ErrorCode.InvalidRequest,
                      "AbortIncompleteMultipartUpload cannot be specified with Tags.")
    if tags and rule.get("expiration", {}).get("marker"):
        raise S3Error(ErrorCode.InvalidRequest,
                      "ExpiredObjectDeleteMarker cannot be specified with Tags.")
    return rule


def _filter(element: Any) -> dict[str, Any]:
    children = list(element)
    if len(children) > 1:
        raise S3Error(ErrorCode.MalformedXML)  # more than one condition needs <And>
    if not children:
        return {}
    child = children[0]
    name = xml.local(child.tag)
    if name == "And":
        result = _conditions(child)
        result["and"] = True
        return result
    if name not in ("Prefix", "Tag", "ObjectSizeGreaterThan", "ObjectSizeLessThan"):
        raise S3Error(ErrorCode.MalformedXML)
    return _conditions(element)


def _conditions(element: Any) -> dict[str, Any]:
    known = {"Prefix", "Tag", "ObjectSizeGreaterThan", "ObjectSizeLessThan"}
    if any(xml.local(child.tag) not in known for child in element):
        raise S3Error(ErrorCode.MalformedXML)
    result: dict[str, Any] = {}
    prefix = _text(element, "Prefix")
    if prefix is not None:
        result["prefix"] = prefix
    tags = []
    for tag in xml.children(element, "Tag"):
        key, value = _text(tag, "Key"), _text(tag, "Value")
        if key is None or value is None:
            raise S3Error(ErrorCode.MalformedXML)
        tags.append([key, value])
    if len({k for k, _ in tags}) != len(tags):
        raise S3Error(ErrorCode.InvalidRequest, "Duplicate Tag Keys are not allowed.")
    if tags:
        result["tags"] = tags
    for name, field in (("ObjectSizeGreaterThan", "gt"), ("ObjectSizeLessThan", "lt")):
        value = _integer(element, name)
        if value is not None:
            if value < 0:
                raise S3Error(ErrorCode.InvalidArgument, f"'{name}' must be non-negative",
                              ArgumentName=name, ArgumentValue=str(value))
            result[field] = value
    if "gt" in result and "lt" in result and result["gt"] >= result["lt"]:
        raise S3Error(ErrorCode.InvalidRequest,
                      "ObjectSizeGreaterThan must be less than ObjectSizeLessThan")
    return result


def _date(value: str) -> float:
    """A Date that is no ISO 8601 date fails the schema (MalformedXML, as AWS answers); one not
    at midnight GMT is an InvalidArgument."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}(T[0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?", value):
        raise S3Error(ErrorCode.MalformedXML)
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise S3Error(ErrorCode.MalformedXML) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    when = when.astimezone(UTC)
    if (when.hour, when.minute, when.second, when.microsecond) != (0, 0, 0, 0):
        raise S3Error(ErrorCode.InvalidArgument, "'Date' must be at midnight GMT",
                      ArgumentName="Date", ArgumentValue=value)
    return when.timestamp()


def _expiration(element: Any) -> dict[str, Any]:
    days = _integer(element, "Days")
    date = _text(element, "Date")
    marker = _text(element, "ExpiredObjectDeleteMarker")
    given = [v is not None for v in (days, date, marker)]
    if sum(given) != 1:
        raise S3Error(ErrorCode.MalformedXML)  # exactly one of Days, Date, the marker flag
    if days is not None:
        return {"days": _positive(days, "'Days' for Expiration action must be a positive integer",
                                  "Days")}
    if date is not None:
        return {"date": _date(date)}
    if marker not in ("true", "false"):
        raise S3Error(ErrorCode.MalformedXML)
    return {"marker": marker == "true"}


def _noncurrent(element: Any) -> dict[str, Any]:
    days = _integer(element, "NoncurrentDays")
    newer = _integer(element, "NewerNoncurrentVersions")
    if days is None:
        raise S3Error(ErrorCode.MalformedXML)
    result = {"days": _positive(
        days, "'NoncurrentDays' for NoncurrentVersionExpiration action must be a positive "
        "integer", "NoncurrentDays")}
    if newer is not None:
        if not 1 <= newer <= MAX_NEWER_NONCURRENT:
            raise S3Error(ErrorCode.InvalidArgument,
                          "'NewerNoncurrentVersions' must be between 1 and 100",
                          ArgumentName="NewerNoncurrentVersions", ArgumentValue=str(newer))
        result["newer"] = newer
    return result


def _transition(element: Any, days_name: str) -> dict[str, Any]:
    """Kept and answered back; Anode has one storage class, so a transition never moves data."""
    storage_class = _text(element, "StorageClass")
    if storage_class is None:
        raise S3Error(ErrorCode.MalformedXML)
    result: dict[str, Any] = {"class": storage_class}
    days = _integer(element, days_name)
    date = _text(element, "Date") if days_name == "Days" else None
    if days is not None:
        if days < 0:
            raise S3Error(ErrorCode.InvalidArgument, f"'{days_name}' must be non-negative",
                          ArgumentName=days_name, ArgumentValue=str(days))
        result["days"] = days
    if date is not None:
        result["date"] = _date(date)
    newer = _integer(element, "NewerNoncurrentVersions")
    if newer is not None:
        result["newer"] = newer
    return result


# ---- answering ----------------------------------------------------------------------------


def _iso_date(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _filter_xml(flt: dict[str, Any]) -> list[tuple[str, Any]]:
    conditions: list[tuple[str, Any]] = []
    if "prefix" in flt:
        conditions.append(("Prefix", flt["prefix"]))
    conditions += [("Tag", [("Key", k), ("Value", v)]) for k, v in flt.get("tags", [])]
    if "gt" in flt:
        conditions.append(("ObjectSizeGreaterThan", flt["gt"]))
    if "lt" in flt:
        conditions.append(("ObjectSizeLessThan", flt["lt"]))
    return [("And", conditions)] if flt.get("and") else conditions


def _rule_xml(rule: Rule) -> list[tuple[str, Any]]:
    children: list[tuple[str, Any]] = []
    if "expiration" in rule:
        exp = rule["expiration"]
        if "days" in exp:
            children.append(("Expiration", [("Days", exp["days"])]))
        elif "date" in exp:
            children.append(("Expiration", [("Date", _iso_date(exp["date"]))]))
        else:
            children.append(("Expiration", [("ExpiredObjectDeleteMarker", exp["marker"])]))
    children.append(("ID", rule["id"]))
    if "prefix_legacy" in rule:
        children.append(("Prefix", rule["prefix_legacy"]))
    else:
        children.append(("Filter", _filter_xml(rule.get("filter", {}))))
    children.append(("Status", rule["status"]))
    for t in rule.get("transitions", []):
        children.append(("Transition", [
            *([("Date", _iso_date(t["date"]))] if "date" in t else []),
            *([("Days", t["days"])] if "days" in t else []),
            ("StorageClass", t["class"])]))
    for t in rule.get("nc_transitions", []):
        children.append(("NoncurrentVersionTransition", [
            *([("NoncurrentDays", t["days"])] if "days" in t else []),
            ("StorageClass", t["class"]),
            *([("NewerNoncurrentVersions", t["newer"])] if "newer" in t else [])]))
    if "noncurrent" in rule:
        nc = rule["noncurrent"]
        children.append(("NoncurrentVersionExpiration", [
            ("NoncurrentDays", nc["days"]),
            *([("NewerNoncurrentVersions", nc["newer"])] if "newer" in nc else [])]))
    if "abort_days" in rule:
        children.append(("AbortIncompleteMultipartUpload",
                         [("DaysAfterInitiation", rule["abort_days"])]))
    return children


def to_xml(rules: Sequence[Rule]) -> bytes:
    return xml.document("LifecycleConfiguration", [("Rule", _rule_xml(r)) for r in rules])
