"""CORS: the bucket's rules (PutBucketCors XML in and out) and which rule answers a request.

Pure. A rule is stored as a map {"id", "origins", "methods", "headers", "expose", "max_age"}.
The first rule whose AllowedOrigin, AllowedMethod and (for a preflight) every requested header
match answers, as AWS documents it; `*` in an origin or header pattern matches any characters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..wildcard import wildcard_match
from . import xml
from .errors import ErrorCode, S3Error

MAX_RULES = 100
METHODS = ("GET", "PUT", "HEAD", "POST", "DELETE")
Rule = dict[str, Any]


def parse_config(body: bytes) -> list[Rule]:
    """A PutBucketCors body; MalformedXML or InvalidRequest as AWS answers them."""
    root = xml.parse(body, "CORSConfiguration")
    elements = xml.children(root, "CORSRule")
    if not elements or len(elements) > MAX_RULES:
        raise S3Error(ErrorCode.MalformedXML)
    return [_rule(element) for element in elements]


def _values(element: Any, name: str) -> list[str]:
    return [(child.text or "").strip() for child in xml.children(element, name)]


def _rule(element: Any) -> Rule:
    methods = _values(element, "AllowedMethod")
    origins = _values(element, "AllowedOrigin")
    if not methods or not origins:
        raise S3Error(ErrorCode.MalformedXML)
    for method in methods:
        if method not in METHODS:
            raise S3Error(ErrorCode.InvalidRequest,
                          "Found unsupported HTTP method in CORS config. "
                          f"Unsupported method is {method}")
    headers = _values(element, "AllowedHeader")
    for kind, values in (("AllowedOrigin", origins), ("AllowedHeader", headers)):
        for value in values:
            if value.count("*") > 1:
                raise S3Error(ErrorCode.InvalidRequest,
                              f'{kind} "{value}" can not have more than one wildcard.')
    rule: Rule = {"origins": origins, "methods": methods, "headers": headers,
                  "expose": _values(element, "ExposeHeader")}
    rule_id = xml.text(element, "ID")
    if rule_id is not None:
        if len(rule_id) > 255:
            raise S3Error(ErrorCode.InvalidArgument, "The ID must be at most 255 characters")
        rule["id"] = rule_id
    max_age = xml.text(element, "MaxAgeSeconds")
    if max_age is not None:
        if not max_age.strip().lstrip("-").isdigit():
            raise S3Error(ErrorCode.MalformedXML)
        rule["max_age"] = int(max_age)
    return rule


def to_xml(rules: Sequence[Rule]) -> bytes:
    """The GetBucketCors document, elements in AWS's order."""
    entries = []
    for rule in rules:
        children: list[tuple[str, Any]] = []
        if "id" in rule:
            children.append(("ID", rule["id"]))
        children += [("AllowedHeader", h) for h in rule["headers"]]
        children += [("AllowedMethod", m) for m in rule["methods"]]
        children += [("AllowedOrigin", o) for o in rule["origins"]]
        children += [("ExposeHeader", h) for h in rule["expose"]]
        if "max_age" in rule:
            children.append(("MaxAgeSeconds", rule["max_age"]))
        entries.append(("CORSRule", children))
    return xml.document("CORSConfiguration", entries)


def _match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """AllowedOrigin and AllowedHeader: `*` only (`?` is literal), no backtracking."""
    return wildcard_match(pattern, value, one=None, ignore_case=ignore_case)


def requested_headers(value: str | None) -> list[str]:
    return [h.strip().lower() for h in (value or "").split(",") if h.strip()]


def find_rule(rules: Sequence[Rule], *, origin: str, method: str,
              headers: Sequence[str] = ()) -> Rule | None:
    """The first rule allowing `origin` to send `method` with `headers` (lower-cased)."""
    for rule in rules:
        if method not in rule["methods"]:
            continue
        if not any(_match(pattern, origin) for pattern in rule["origins"]):
            continue
        if all(any(_match(p, h, ignore_case=True) for p in rule["headers"]) for h in headers):
            return rule
    return None


def response_headers(rule: Rule, *, origin: str, preflight: bool,
                     request_headers: Mapping[str, str]) -> dict[str, str]:
    """The Access-Control-* headers a matching rule adds to a response."""
    wildcard = "*" in rule["origins"]
    out = {
        "Access-Control-Allow-Origin": "*" if wildcard else origin,
        "Access-Control-Allow-Methods": ", ".join(rule["methods"]),
        "Vary": "Origin, Access-Control-Request-Headers, Access-Control-Request-Method",
    }
    if not wildcard:
        out["Access-Control-Allow-Credentials"] = "true"
    if preflight and request_headers.get("Access-Control-Request-Headers"):
        out["Access-Control-Allow-Headers"] = ", ".join(
            requested_headers(request_headers["Access-Control-Request-Headers"]))
    if rule["expose"]:
        out["Access-Control-Expose-Headers"] = ", ".join(rule["expose"])
    if "max_age" in rule:
        out["Access-Control-Max-Age"] = str(rule["max_age"])
    return out
