"""Access control lists: canned ACLs, `x-amz-grant-*` headers, AccessControlPolicy XML in and out.

Pure. An ACL is stored as a plain map inside the bucket or object record:
`{"owner": {"id", "name"}, "grants": [{"id", "name", "perm"} | {"uri", "perm"}, ...]}`;
`authz` turns the grants into permissions. A record without an ACL has the `private` one.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from typing import Any
from xml.sax.saxutils import escape

from . import xml
from .errors import ErrorCode, S3Error

Acl = dict[str, Any]
Grantee = dict[str, str]

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
LOG_DELIVERY = "http://acs.amazonaws.com/groups/s3/LogDelivery"
GROUPS = (ALL_USERS, AUTHENTICATED_USERS, LOG_DELIVERY)
PUBLIC_GROUPS = (ALL_USERS, AUTHENTICATED_USERS)

FULL_CONTROL, READ, WRITE, READ_ACP, WRITE_ACP = (
    "FULL_CONTROL", "READ", "WRITE", "READ_ACP", "WRITE_ACP")
PERMISSIONS = (FULL_CONTROL, WRITE, WRITE_ACP, READ, READ_ACP)

CANNED = ("private", "public-read", "public-read-write", "authenticated-read",
          "aws-exec-read", "bucket-owner-read", "bucket-owner-full-control",
          "log-delivery-write")

GRANT_HEADERS = {
    "x-amz-grant-read": READ,
    "x-amz-grant-write": WRITE,
    "x-amz-grant-read-acp": READ_ACP,
    "x-amz-grant-write-acp": WRITE_ACP,
    "x-amz-grant-full-control": FULL_CONTROL,
}

XSI = "http://www.w3.org/2001/XMLSchema-instance"

UserLookup = Callable[[str], str | None]
"""Canonical user id -> user name (or e-mail address -> canonical id), None when unknown."""


def user(canonical_id: str, name: str) -> Grantee:
    return {"id": canonical_id, "name": name}


def private(owner: Grantee) -> Acl:
    return {"owner": owner, "grants": [{**owner, "perm": FULL_CONTROL}]}


def canned(name: str, *, owner: Grantee, bucket_owner: Grantee | None = None) -> Acl:
    """The grants of a canned ACL (AWS "Canned ACL" table); InvalidArgument if unknown."""
    if name not in CANNED:
        raise S3Error(ErrorCode.InvalidArgument, f"Invalid canned ACL: {name}",
                      ArgumentName="x-amz-acl", ArgumentValue=name)
    acl = private(owner)
    grants = acl["grants"]
    if name in ("public-read", "public-read-write"):
        grants.append({"uri": ALL_USERS, "perm": READ})
    if name == "public-read-write":
        grants.append({"uri": ALL_USERS, "perm": WRITE})
    if name == "authenticated-read":
        grants.append({"uri": AUTHENTICATED_USERS, "perm": READ})
    if name == "log-delivery-write":
        grants += [{"uri": LOG_DELIVERY, "perm": WRITE}, {"uri": LOG_DELIVERY, "perm": READ_ACP}]
    if bucket_owner is not None and bucket_owner["id"] != owner["id"]:
        if name == "bucket-owner-read":
            grants.append({**bucket_owner, "perm": READ})
        elif name == "bucket-owner-full-control":
            grants.append({**bucket_owner, "perm": FULL_CONTROL})
    return acl


def has_acl_headers(headers: Mapping[str, str]) -> bool:
    return "x-amz-acl" in headers or any(h in headers for h in GRANT_HEADERS)


def from_headers(headers: Mapping[str, str], *, owner: Grantee, lookup: UserLookup,
                 bucket_owner: Grantee | None = None,
                 by_email: UserLookup | None = None) -> Acl | None:
    """The ACL that `x-amz-acl` or `x-amz-grant-*` ask for; None when neither is present."""
    grant_headers = [h for h in GRANT_HEADERS if h in headers]
    if "x-amz-acl" in headers:
        if grant_headers:
            raise S3Error(ErrorCode.InvalidRequest,
                          "Specifying both Canned ACLs and Header Grants is not allowed")
        return canned(headers["x-amz-acl"].strip(), owner=owner, bucket_owner=bucket_owner)
    if not grant_headers:
        return None
    grants: list[dict[str, str]] = []
    for header in grant_headers:
        for kind, value in _grant_items(headers[header]):
            grants.append({**_grantee(kind, value, lookup, by_email),
                           "perm": GRANT_HEADERS[header]})
    return {"owner": owner, "grants": grants}


_ITEM = re.compile(r'\s*([A-Za-z]+)\s*=\s*"?([^",]*)"?\s*(?:,|$)')


def _grant_items(value: str) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = []
    position = 0
    value = value.strip()
    while position < len(value):
        match = _ITEM.match(value, position)
        if match is None or match.end() == position:
            raise S3Error(ErrorCode.InvalidArgument, "Invalid grant header value")
        items.append((match.group(1).lower(), match.group(2).strip()))
        position = match.end()
    return items


def _grantee(kind: str, value: str, lookup: UserLookup,
             by_email: UserLookup | None = None) -> Grantee:
    if kind == "id":
        name = lookup(value)
        if name is None:
            raise S3Error(ErrorCode.InvalidArgument, "Invalid id",
                          ArgumentName="CanonicalUser/ID", ArgumentValue=value)
        return user(value, name)
    if kind == "uri":
        if value not in GROUPS:
            raise S3Error(ErrorCode.InvalidArgument, "Invalid group uri",
                          ArgumentName="Group/URI", ArgumentValue=value)
        return {"uri": value}
    if kind == "emailaddress":  # AWS stores the account it resolves to, not the address
        canonical_id = by_email(value) if by_email else None
        name = lookup(canonical_id) if canonical_id else None
        if canonical_id is None or name is None:
            raise S3Error(ErrorCode.UnresolvableGrantByEmailAddress, Email=value)
        return user(canonical_id, name)
    raise S3Error(ErrorCode.InvalidArgument, f"Invalid grantee type: {kind}")


def from_xml(body: bytes, *, owner: Grantee, lookup: UserLookup,
             by_email: UserLookup | None = None) -> Acl:
    """An AccessControlPolicy request body; MalformedACLError when it does not validate."""
    try:
        root = xml.parse(body, "AccessControlPolicy")
    except S3Error:
        raise S3Error(ErrorCode.MalformedACLError) from None
    lists = xml.children(root, "AccessControlList")
    owners = xml.children(root, "Owner")
    if len(lists) != 1 or len(owners) != 1 or not (xml.text(owners[0], "ID") or "").strip():
        raise S3Error(ErrorCode.MalformedACLError)
    grants: list[dict[str, str]] = []
    for grant in xml.children(lists[0], "Grant"):
        grantees = xml.children(grant, "Grantee")
        permission = (xml.text(grant, "Permission") or "").strip()
        if len(grantees) != 1 or permission not in PERMISSIONS:
            raise S3Error(ErrorCode.MalformedACLError)
        grants.append({**_xml_grantee(grantees[0], lookup, by_email), "perm": permission})
    return {"owner": owner, "grants": grants}


def _xml_grantee(element: ET.Element, lookup: UserLookup,
                 by_email: UserLookup | None) -> Grantee:
    kind = element.get(f"{{{XSI}}}type") or element.get("type") or ""
    fields = {xml.local(child.tag): (child.text or "").strip() for child in element}
    if kind == "CanonicalUser" or (not kind and "ID" in fields):
        if not fields.get("ID"):
            raise S3Error(ErrorCode.MalformedACLError)
        return _grantee("id", fields["ID"], lookup)
    if kind == "Group" or (not kind and "URI" in fields):
        return _grantee("uri", fields.get("URI", ""), lookup)
    if kind == "AmazonCustomerByEmail" or (not kind and "EmailAddress" in fields):
        return _grantee("emailaddress", fields.get("EmailAddress", ""), lookup, by_email)
    raise S3Error(ErrorCode.MalformedACLError)


def to_xml(acl: Acl) -> bytes:
    """The AccessControlPolicy document GetBucketAcl and GetObjectAcl answer with."""
    owner = acl["owner"]
    out = [xml.HEADER, f'<AccessControlPolicy xmlns="{xml.NS}">',
           f"<Owner><ID>{escape(owner['id'])}</ID>"
           f"<DisplayName>{escape(owner['name'])}</DisplayName></Owner>",
           "<AccessControlList>"]
    for grant in acl["grants"]:
        out.append(f'<Grant><Grantee xmlns:xsi="{XSI}" ')
        if "uri" in grant:
            out.append(f'xsi:type="Group"><URI>{escape(grant["uri"])}</URI>')
        else:
            out.append(f'xsi:type="CanonicalUser"><ID>{escape(grant["id"])}</ID>'
                       f"<DisplayName>{escape(grant['name'])}</DisplayName>")
        out.append(f"</Grantee><Permission>{grant['perm']}</Permission></Grant>")
    out.append("</AccessControlList></AccessControlPolicy>")
    return "".join(out).encode()


def is_public(acl: Acl | None) -> bool:
    """Grants anything to AllUsers or AuthenticatedUsers (what BlockPublicAcls refuses)."""
    return acl is not None and any(g.get("uri") in PUBLIC_GROUPS for g in acl["grants"])


def only_bucket_owner_full_control(acl: Acl, bucket_owner_id: str) -> bool:
    """What BucketOwnerEnforced still accepts: full control for the bucket owner, nothing else."""
    return all(g.get("id") in (bucket_owner_id, acl["owner"]["id"]) for g in acl["grants"]) and \
        any(g.get("id") == bucket_owner_id and g["perm"] == FULL_CONTROL for g in acl["grants"])


def permissions(acl: Acl, *, canonical_id: str | None, ignore_public: bool) -> set[str]:
    """What `acl` grants the caller (None: anonymous), FULL_CONTROL expanded."""
    granted: set[str] = set()
    for grant in acl["grants"]:
        uri = grant.get("uri")
        if uri is not None:
            if ignore_public and uri in PUBLIC_GROUPS:
                continue
            if not (uri == ALL_USERS or (uri == AUTHENTICATED_USERS and canonical_id)):
                continue
        elif grant.get("id") != canonical_id or canonical_id is None:
            continue
        if grant["perm"] == FULL_CONTROL:
            granted.update((READ, WRITE, READ_ACP, WRITE_ACP))
        else:
            granted.add(grant["perm"])
    return granted
