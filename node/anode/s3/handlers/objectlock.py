"""Object lock: Put/GetObjectLockConfiguration, Put/GetObjectRetention, Put/GetObjectLegalHold,
and the `x-amz-object-lock-*` headers that PutObject, CopyObject and CreateMultipartUpload share.

A bucket created with `x-amz-bucket-object-lock-enabled: true` has `objectlock` in its record
({"enabled": True, "rule": {"mode", "days" | "years"}}) and versioning Enabled for good. A version
carries `lock` ({"mode", "until"}) and `hold` ("ON"); `meta/locks.py` decides, inside the state
machine, what they forbid. This module only parses, checks the caller and answers.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ...meta.commands import SetBucketConfig, SetObjectLock
from ...meta.locks import MODES
from .. import xml
from ..context import Context
from ..errors import ErrorCode, S3Error
from ..versions import find_version, requested_version, version_header

DAY = 86400
MISSING_CONFIG = "Bucket is missing Object Lock Configuration"


def lock_enabled(bucket: dict[str, Any]) -> bool:
    return bool((bucket.get("objectlock") or {}).get("enabled"))


def parse_date(value: str, *, argument: str) -> float:
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise S3Error(ErrorCode.InvalidArgument, "The retain until date is not a valid date",
                      ArgumentName=argument, ArgumentValue=value) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def format_date(seconds: float) -> str:
    return xml.timestamp(seconds)


def may_bypass(ctx: Context, bucket: dict[str, Any]) -> bool:
    """`x-amz-bypass-governance-retention: true`, honoured only for callers allowed
    s3:BypassGovernanceRetention (AWS: otherwise the request is treated as not bypassing)."""
    if ctx.headers.get("x-amz-bypass-governance-retention", "").lower() != "true":
        return False
    return ctx.allowed(ctx.bucket_name, bucket, "s3:BypassGovernanceRetention", ctx.endpoint.key)


def lock_fields(headers: Mapping[str, str], bucket: dict[str, Any], now: float) -> dict[str, Any]:
    """The `lock`/`hold` fields of a new version: from the request's headers, else from the
    bucket's default retention. Headers on a bucket without object lock are an InvalidRequest."""
    mode = headers.get("x-amz-object-lock-mode")
    until = headers.get("x-amz-object-lock-retain-until-date")
    hold = headers.get("x-amz-object-lock-legal-hold")
    if (mode or until or hold) and not lock_enabled(bucket):
        raise S3Error(ErrorCode.InvalidRequest, MISSING_CONFIG)
    fields: dict[str, Any] = {}
    if (mode is None) != (until is None):
        raise S3Error(ErrorCode.InvalidArgument, "x-amz-object-lock-retain-until-date and "
                      "x-amz-object-lock-mode must both be supplied")
    if mode is not None and until is not None:
        if mode not in MODES:
            raise S3Error(ErrorCode.InvalidArgument, "Unknown wormMode directive.",
                          ArgumentName="x-amz-object-lock-mode", ArgumentValue=mode)
        seconds = parse_date(until, argument="x-amz-object-lock-retain-until-date")
        if seconds <= now:
            raise S3Error(ErrorCode.InvalidArgument, "The retain until date must be in the future!")
        fields["lock"] = {"mode": mode, "until": seconds}
    elif lock_enabled(bucket):
        rule = bucket["objectlock"].get("rule")
        if rule:
            days = rule.get("days") or 365 * rule.get("years", 0)
            fields["lock"] = {"mode": rule["mode"], "until": now + days * DAY}
    if hold is not None:
        if hold not in ("ON", "OFF"):
            raise S3Error(ErrorCode.InvalidArgument, "Legal Hold must be either of 'ON' or 'OFF'",
                          ArgumentName="x-amz-object-lock-legal-hold", ArgumentValue=hold)
        fields["hold"] = hold
    return fields


def require_integrity_header(headers: Mapping[str, str], fields: Mapping[str, Any]) -> None:
    """AWS: a body stored under object lock (retention or legal hold) must come with
    Content-MD5 or an SDK checksum, so that what is kept unchangeable is what was sent."""
    if not (fields.get("lock") or fields.get("hold")):
        return
    for name in headers:
        lower = name.lower()
        if lower in ("content-md5", "x-amz-sdk-checksum-algorithm", "x-amz-trailer") or (
                lower.startswith("x-amz-checksum-") and lower not in _NOT_CHECKSUMS):
            return
    raise S3Error(ErrorCode.InvalidRequest, "Content-MD5 OR x-amz-checksum- HTTP header is "
                  "required for Put Object requests with Object Lock parameters")


_NOT_CHECKSUMS = ("x-amz-checksum-mode", "x-amz-checksum-type", "x-amz-checksum-algorithm")


def lock_headers(ctx: Context, record: Mapping[str, Any]) -> dict[str, str]:
    """What GET and HEAD answer about a version's lock: as AWS, only to callers who may read
    it (s3:GetObjectRetention, s3:GetObjectLegalHold)."""
    if not record.get("lock") and "hold" not in record:
        return {}
    bucket = ctx.node.meta.bucket(ctx.bucket_name) or {}

    def may(action: str) -> bool:
        return bool(bucket) and ctx.allowed(ctx.bucket_name, bucket, action, ctx.key)

    headers: dict[str, str] = {}
    if record.get("lock") and may("s3:GetObjectRetention"):
        headers["x-amz-object-lock-mode"] = record["lock"]["mode"]
        headers["x-amz-object-lock-retain-until-date"] = format_date(record["lock"]["until"])
    if "hold" in record and may("s3:GetObjectLegalHold"):
        headers["x-amz-object-lock-legal-hold"] = record["hold"]
    return headers


# ---- bucket configuration ---------------------------------------------------------------------


async def put_bucket_object_lock(ctx: Context) -> web.Response:
    bucket = ctx.bucket()
    doc = xml.parse(await ctx.read_small_body(xml.MAX_BODY), "ObjectLockConfiguration")
    if xml.text(doc, "ObjectLockEnabled") != "Enabled":
        raise S3Error(ErrorCode.MalformedXML)
    if not lock_enabled(bucket) and bucket.get("versioning") != "Enabled":
        # AWS enables object lock on an existing bucket only once its versioning is Enabled.
        raise S3Error(ErrorCode.InvalidBucketState, "Versioning must be 'Enabled' on the bucket "
                      "to apply a Object Lock configuration")
    config: dict[str, Any] = {"enabled": True}
    rules = xml.children(doc, "Rule")
    if rules:
        retention = xml.children(rules[0], "DefaultRetention")
        if not retention:
            raise S3Error(ErrorCode.MalformedXML)
        mode = xml.text(retention[0], "Mode")
        days, years = xml.text(retention[0], "Days"), xml.text(retention[0], "Years")
        if mode not in MODES or (days is None) == (years is None):
            raise S3Error(ErrorCode.MalformedXML)
        period = (days or years or "").strip()
        if not period.lstrip("-").isdigit() or int(period) <= 0:
            raise S3Error(ErrorCode.InvalidArgument,
                          "Default retention period must be a positive integer value.")
        config["rule"] = {"mode": mode, "days" if days is not None else "years": int(period)}
    await ctx.node.propose(SetBucketConfig(bucket=ctx.bucket_name, name="objectlock",
                                           value=config))
    return web.Response()


async def get_bucket_object_lock(ctx: Context) -> web.Response:
    bucket = ctx.bucket()
    if not lock_enabled(bucket):
        raise S3Error(ErrorCode.ObjectLockConfigurationNotFoundError,
                      BucketName=ctx.bucket_name)
    children: list[tuple[str, Any]] = [("ObjectLockEnabled", "Enabled")]
    rule = bucket["objectlock"].get("rule")
    if rule:
        period = ("Days", rule["days"]) if "days" in rule else ("Years", rule["years"])
        children.append(("Rule", [("DefaultRetention", [("Mode", rule["mode"]), period])]))
    body = xml.document("ObjectLockConfiguration", children)
    return web.Response(body=body, content_type="application/xml")


# ---- retention and legal hold -----------------------------------------------------------------


def _locked_version(ctx: Context) -> tuple[dict[str, Any], dict[str, Any]]:
    bucket = ctx.bucket()
    if not lock_enabled(bucket):
        raise S3Error(ErrorCode.InvalidRequest, MISSING_CONFIG)
    return bucket, find_version(ctx, ctx.bucket_name, bucket, ctx.key, requested_version(ctx))


async def _set_lock(ctx: Context, bucket: dict[str, Any], **change: Any) -> web.Response:
    result = await ctx.node.propose(SetObjectLock(
        bucket=ctx.bucket_name, key=ctx.key, version_id=requested_version(ctx), now=time.time(),
        bypass=may_bypass(ctx, bucket), **change))
    return web.Response(headers=version_header(result["version_id"]))


async def put_object_retention(ctx: Context) -> web.Response:
    bucket, _ = _locked_version(ctx)
    doc = xml.parse(await ctx.read_small_body(xml.MAX_BODY), "Retention")
    mode, until = xml.text(doc, "Mode"), xml.text(doc, "RetainUntilDate")
    if (mode is None) != (until is None):
        raise S3Error(ErrorCode.MalformedXML)
    retention: dict[str, Any] = {}
    if mode is not None and until is not None:
        if mode not in MODES:
            raise S3Error(ErrorCode.MalformedXML)
        seconds = parse_date(until, argument="RetainUntilDate")
        if seconds <= time.time():
            raise S3Error(ErrorCode.InvalidArgument, "The retain until date must be in the future!")
        retention = {"mode": mode, "until": seconds}
    return await _set_lock(ctx, bucket, retention=retention)


async def get_object_retention(ctx: Context) -> web.Response:
    _, record = _locked_version(ctx)
    lock = record.get("lock")
    if not lock:
        raise S3Error(ErrorCode.NoSuchObjectLockConfiguration)
    body = xml.document("Retention", [("Mode", lock["mode"]),
                                      ("RetainUntilDate", format_date(lock["until"]))])
    return web.Response(body=body, content_type="application/xml")


async def put_object_legal_hold(ctx: Context) -> web.Response:
    bucket, _ = _locked_version(ctx)
    doc = xml.parse(await ctx.read_small_body(xml.MAX_BODY), "LegalHold")
    status = xml.text(doc, "Status")
    if status not in ("ON", "OFF"):
        raise S3Error(ErrorCode.MalformedXML)
    return await _set_lock(ctx, bucket, legal_hold=status)


async def get_object_legal_hold(ctx: Context) -> web.Response:
    _, record = _locked_version(ctx)
    if "hold" not in record:
        raise S3Error(ErrorCode.NoSuchObjectLockConfiguration)
    body = xml.document("LegalHold", [("Status", record.get("hold", "OFF"))])
    return web.Response(body=body, content_type="application/xml")
