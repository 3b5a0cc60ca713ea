"""ACL operations (Get/PutBucketAcl, Get/PutObjectAcl) and the ACL and owner new objects get.

PutObject, CopyObject, CreateMultipartUpload and CreateBucket take `x-amz-acl`/`x-amz-grant-*`;
`new_object_owner` applies the bucket's ObjectOwnership and BlockPublicAcls to them in one place.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ...meta.commands import SetBucketConfig, SetObjectAcl
from ...users import owner_id
from .. import acl as A
from ..authz import BUCKET_OWNER_ENFORCED
from ..context import Context
from ..errors import ErrorCode, S3Error
from ..versions import check_version_id

BUCKET_OWNER_PREFERRED = "BucketOwnerPreferred"


def lookup_user(ctx: Context) -> A.UserLookup:
    """Canonical id -> user name, over every user (root included)."""

    def lookup(canonical_id: str) -> str | None:
        if canonical_id == ctx.node.root.id:
            return ctx.node.root.name
        for record in ctx.node.meta.users():
            if owner_id(record["name"]) == canonical_id:
                return record["name"]
        return None

    return lookup


def lookup_email(ctx: Context) -> A.UserLookup:
    """E-mail address (`[[users]] email`, case-insensitive) -> canonical id."""

    def lookup(address: str) -> str | None:
        wanted = address.strip().lower()
        for record in ctx.node.meta.users():
            if wanted and record.get("email", "").lower() == wanted:
                return owner_id(record["name"])
        return None

    return lookup


def grantee(name: str) -> A.Grantee:
    return A.user(owner_id(name), name)


def check_acl_allowed(ctx: Context, record: dict[str, Any], acl: A.Acl) -> None:
    """BucketOwnerEnforced refuses ACLs; BlockPublicAcls refuses public ones."""
    bucket_owner = owner_id(record["owner"])
    if record.get("ownership") == BUCKET_OWNER_ENFORCED and not (
        A.only_bucket_owner_full_control(acl, bucket_owner)
    ):
        raise S3Error(ErrorCode.AccessControlListNotSupported)
    if (record.get("pab") or {}).get("BlockPublicAcls") and A.is_public(acl):
        raise S3Error(ErrorCode.AccessDenied)


def new_object_owner(ctx: Context, record: dict[str, Any]) -> tuple[str, A.Acl | None]:
    """(owner name, ACL or None for private) of an object this request writes into the bucket.

    BucketOwnerEnforced: the bucket owner owns it and no ACL is kept. BucketOwnerPreferred: the
    bucket owner owns it when the writer says `bucket-owner-full-control`.
    """
    writer = grantee(ctx.owner_name)
    acl = A.from_headers(ctx.headers, owner=writer, lookup=lookup_user(ctx),
                         by_email=lookup_email(ctx), bucket_owner=grantee(record["owner"]))
    if acl is not None:
        check_acl_allowed(ctx, record, acl)
    ownership = record.get("ownership")
    if ownership == BUCKET_OWNER_ENFORCED:
        return record["owner"], None
    if (ownership == BUCKET_OWNER_PREFERRED
            and ctx.headers.get("x-amz-acl") == "bucket-owner-full-control"):
        return record["owner"], None
    return ctx.owner_name, acl


def set_owner(record: dict[str, Any], owner: str, acl: A.Acl | None) -> None:
    """Give a new object record its owner and ACL (none kept for a private one)."""
    record["owner"] = owner
    record.pop("acl", None)
    if acl is not None and acl != A.private(grantee(owner)):
        record["acl"] = acl


def new_bucket_acl(ctx: Context, ownership: str | None) -> A.Acl | None:
    """The ACL CreateBucket asks for (None: private)."""
    assert ctx.user is not None
    acl = A.from_headers(ctx.headers, owner=grantee(ctx.user.name), lookup=lookup_user(ctx),
                         by_email=lookup_email(ctx))
    if acl is None:
        return None
    if ownership == BUCKET_OWNER_ENFORCED and not A.only_bucket_owner_full_control(
            acl, ctx.user.id):
        raise S3Error(ErrorCode.InvalidBucketAclWithObjectOwnership)
    return None if acl == A.private(grantee(ctx.user.name)) else acl


async def reset_bucket_acl(ctx: Context, acl: A.Acl | None) -> None:
    """CreateBucket of a bucket the caller owns, in us-east-1: AWS answers 200 and resets the
    bucket's ACL to the one asked for (legacy behaviour of that region)."""
    record = ctx.bucket(action=None)
    owner = grantee(record["owner"])
    check_acl_allowed(ctx, record, acl or A.private(owner))
    await ctx.node.propose(SetBucketConfig(bucket=ctx.bucket_name, name="acl", value=acl))


async def _requested_acl(ctx: Context, owner: A.Grantee, bucket_owner: A.Grantee) -> A.Acl:
    """The ACL of a PutBucketAcl/PutObjectAcl: from headers or from the XML body, not both."""
    body = await ctx.read_small_body(64 * 1024)
    acl = A.from_headers(ctx.headers, owner=owner, lookup=lookup_user(ctx),
                         by_email=lookup_email(ctx), bucket_owner=bucket_owner)
    if acl is not None:
        if body.strip():
            raise S3Error(ErrorCode.UnexpectedContent)
        return acl
    if not body.strip():
        raise S3Error(ErrorCode.MissingSecurityHeader,
                      "Your request was missing a required header",
                      MissingHeaderName="x-amz-acl")
    return A.from_xml(body, owner=owner, lookup=lookup_user(ctx), by_email=lookup_email(ctx))


async def get_bucket_acl(ctx: Context) -> web.Response:
    record = ctx.bucket()
    acl = record.get("acl") or A.private(grantee(record["owner"]))
    return web.Response(body=A.to_xml(acl), content_type="application/xml")


async def put_bucket_acl(ctx: Context) -> web.Response:
    record = ctx.bucket()
    owner = grantee(record["owner"])
    acl = await _requested_acl(ctx, owner, owner)
    check_acl_allowed(ctx, record, acl)
    value = None if acl == A.private(owner) else acl
    await ctx.node.propose(SetBucketConfig(bucket=ctx.bucket_name, name="acl", value=value))
    return web.Response()


def _object(ctx: Context) -> dict[str, Any]:
    version_id = ctx.endpoint.q("versionId")
    if version_id is not None:
        check_version_id(version_id)
    meta = ctx.node.meta
    record = (meta.version(ctx.bucket_name, ctx.key, version_id) if version_id
              else meta.object(ctx.bucket_name, ctx.key))
    if record is None and version_id:
        raise S3Error(ErrorCode.NoSuchVersion, Key=ctx.key, VersionId=version_id)
    if record is not None and record.get("marker") and version_id:
        raise S3Error(ErrorCode.MethodNotAllowed, "The specified method is not allowed "
                      "against this resource.", headers={"x-amz-delete-marker": "true"})
    if record is None or record.get("marker"):
        raise S3Error(ErrorCode.NoSuchKey, Key=ctx.key)
    return record


def _version_headers(record: dict[str, Any]) -> dict[str, str]:
    return {"x-amz-version-id": record["vid"]} if record.get("vid") else {}


async def get_object_acl(ctx: Context) -> web.Response:
    bucket = ctx.bucket()
    record = _object(ctx)
    owner = grantee(record.get("owner", ""))
    if bucket.get("ownership") == BUCKET_OWNER_ENFORCED:
        owner = grantee(bucket["owner"])
        acl = A.private(owner)
    else:
        acl = record.get("acl") or A.private(owner)
    return web.Response(body=A.to_xml(acl), content_type="application/xml",
                        headers=_version_headers(record))


async def put_object_acl(ctx: Context) -> web.Response:
    bucket = ctx.bucket()
    record = _object(ctx)
    owner = grantee(record.get("owner", ""))
    acl = await _requested_acl(ctx, owner, grantee(bucket["owner"]))
    check_acl_allowed(ctx, bucket, acl)
    await ctx.node.propose(SetObjectAcl(bucket=ctx.bucket_name, key=ctx.key, acl=acl,
                                        version_id=ctx.endpoint.q("versionId")))
    return web.Response(headers=_version_headers(record))
