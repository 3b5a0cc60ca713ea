"""Bucket policy, PublicAccessBlock and ObjectOwnership: the bucket settings authz reads.

Put/Get/DeleteBucketPolicy, GetBucketPolicyStatus, Put/Get/DeletePublicAccessBlock and
Put/Get/DeleteBucketOwnershipControls. Each setting is one field of the bucket record, changed by
one `SetBucketConfig` command.
"""

from __future__ import annotations

import re

from aiohttp import web

from ...meta.commands import SetBucketConfig
from ...users import owner_id
from .. import acl as A
from .. import xml
from ..authz import BUCKET_OWNER_ENFORCED, is_public
from ..context import Context
from ..errors import ErrorCode, S3Error
from ..policy import parse_policy, principal_entry

MAX_POLICY_BODY = 64 * 1024
PAB_FIELDS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
OWNERSHIPS = ("BucketOwnerPreferred", "ObjectWriter", BUCKET_OWNER_ENFORCED)


async def _set(ctx: Context, name: str, value: object) -> None:
    await ctx.node.propose(SetBucketConfig(bucket=ctx.bucket_name, name=name, value=value))


def _principal_resolver(ctx: Context):
    """Which Principal entries a policy may name.

    IAM ARNs (`arn:aws:iam::<account>:user/<name>` or `:root`), 12-digit account ids and
    64-hex canonical ids are accepted as written (they match only the user they name, if any);
    a bare name must be an existing user.
    """
    users = {record["name"] for record in ctx.node.meta.users()} | {ctx.node.root.name}

    def resolve(entry: str) -> tuple[str, str] | None:
        name, canonical = principal_entry(entry)
        if entry.startswith("arn:aws:iam::") and (name or canonical):
            return name, canonical
        if canonical or re.fullmatch(r"\d{12}", entry):
            return name, canonical
        if name in users:
            return name, owner_id(name)
        return None

    return resolve


# ---- policy -------------------------------------------------------------------------------


async def put_bucket_policy(ctx: Context) -> web.Response:
    record = ctx.bucket()
    body = await ctx.read_small_body(MAX_POLICY_BODY)
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise S3Error(ErrorCode.MalformedPolicy, "Policies must be valid UTF-8") from None
    policy = parse_policy(text, bucket=ctx.bucket_name, resolve=_principal_resolver(ctx))
    if (record.get("pab") or {}).get("BlockPublicPolicy") and policy.is_public:
        raise S3Error(ErrorCode.AccessDenied)
    await _set(ctx, "policy", text)
    return web.Response(status=204)


async def get_bucket_policy(ctx: Context) -> web.Response:
    record = ctx.bucket()
    if not record.get("policy"):
        raise S3Error(ErrorCode.NoSuchBucketPolicy, BucketName=ctx.bucket_name)
    return web.Response(body=record["policy"].encode(), content_type="application/json")


async def delete_bucket_policy(ctx: Context) -> web.Response:
    ctx.bucket()
    await _set(ctx, "policy", None)
    return web.Response(status=204)


async def get_bucket_policy_status(ctx: Context) -> web.Response:
    record = ctx.bucket()
    public = is_public(ctx.access(ctx.bucket_name, record))
    body = xml.document("PolicyStatus", [("IsPublic", public)])
    return web.Response(body=body, content_type="application/xml")


# ---- PublicAccessBlock --------------------------------------------------------------------


async def put_public_access_block(ctx: Context) -> web.Response:
    ctx.bucket()
    root = xml.parse(await ctx.read_small_body(xml.MAX_BODY), "PublicAccessBlockConfiguration")
    flags: dict[str, bool] = {}
    for name in PAB_FIELDS:
        value = xml.text(root, name)
        if value is None:
            flags[name] = False
            continue
        value = value.strip().lower()
        if value not in ("true", "false"):
            raise S3Error(ErrorCode.MalformedXML)
        flags[name] = value == "true"
    await _set(ctx, "pab", flags)
    return web.Response()


async def get_public_access_block(ctx: Context) -> web.Response:
    record = ctx.bucket()
    flags = record.get("pab")
    if flags is None:
        raise S3Error(ErrorCode.NoSuchPublicAccessBlockConfiguration,
                      BucketName=ctx.bucket_name)
    body = xml.document("PublicAccessBlockConfiguration",
                        [(name, bool(flags.get(name))) for name in PAB_FIELDS])
    return web.Response(body=body, content_type="application/xml")


async def delete_public_access_block(ctx: Context) -> web.Response:
    ctx.bucket()
    await _set(ctx, "pab", None)
    return web.Response(status=204)


# ---- ObjectOwnership ----------------------------------------------------------------------


def parse_ownership(value: str) -> str:
    if value not in OWNERSHIPS:
        raise S3Error(ErrorCode.InvalidArgument, "Invalid x-amz-object-ownership header",
                      ArgumentName="x-amz-object-ownership", ArgumentValue=value)
    return value


async def put_bucket_ownership_controls(ctx: Context) -> web.Response:
    record = ctx.bucket()
    root = xml.parse(await ctx.read_small_body(xml.MAX_BODY), "OwnershipControls")
    rules = xml.children(root, "Rule")
    if len(rules) != 1:
        raise S3Error(ErrorCode.MalformedXML)
    value = xml.text(rules[0], "ObjectOwnership")
    if value is None or value.strip() not in OWNERSHIPS:
        raise S3Error(ErrorCode.MalformedXML)
    value = value.strip()
    acl = record.get("acl")
    if value == BUCKET_OWNER_ENFORCED and acl is not None and not (
            A.only_bucket_owner_full_control(acl, owner_id(record["owner"]))):
        raise S3Error(ErrorCode.InvalidBucketAclWithObjectOwnership)
    await _set(ctx, "ownership", value)
    return web.Response()


async def get_bucket_ownership_controls(ctx: Context) -> web.Response:
    record = ctx.bucket()
    value = record.get("ownership")
    if value is None:
        raise S3Error(ErrorCode.OwnershipControlsNotFoundError, BucketName=ctx.bucket_name)
    body = xml.document("OwnershipControls", [("Rule", [("ObjectOwnership", value)])])
    return web.Response(body=body, content_type="application/xml")


async def delete_bucket_ownership_controls(ctx: Context) -> web.Response:
    ctx.bucket()
    await _set(ctx, "ownership", None)
    return web.Response(status=204)
