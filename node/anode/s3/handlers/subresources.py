"""Bucket sub-resources Anode has no feature behind: logging, notification, request payment,
transfer acceleration, website hosting and replication.

Clients and SDK tools probe them (a console lists a bucket's settings, `aws s3 sync` checks
request payment), so the Gets answer exactly what S3 answers for a bucket where nothing was
configured, and the Puts accept a configuration that configures nothing (turning a feature off)
and answer NotImplemented for anything that would need the feature.
"""

from __future__ import annotations

from aiohttp import web

from .. import xml
from ..context import Context
from ..errors import ErrorCode, S3Error

MAX_BODY = 256 * 1024


def _xml(root: str, children: list[tuple[str, object]] | None = None) -> web.Response:
    return web.Response(body=xml.document(root, children or []), content_type="application/xml")


def _not_implemented(what: str) -> S3Error:
    return S3Error(ErrorCode.NotImplemented, f"{what} is not implemented by Anode")


async def _body(ctx: Context, root: str) -> object:
    ctx.bucket()
    return xml.parse(await ctx.read_small_body(MAX_BODY), root)


# ---- logging --------------------------------------------------------------------------------


async def get_bucket_logging(ctx: Context) -> web.Response:
    ctx.bucket()
    return _xml("BucketLoggingStatus")


async def put_bucket_logging(ctx: Context) -> web.Response:
    status = await _body(ctx, "BucketLoggingStatus")
    if xml.children(status, "LoggingEnabled"):
        raise _not_implemented("Server access logging")
    return web.Response()  # an empty BucketLoggingStatus turns logging off: already off


# ---- notification ---------------------------------------------------------------------------


async def get_bucket_notification(ctx: Context) -> web.Response:
    ctx.bucket()
    return _xml("NotificationConfiguration")


async def put_bucket_notification(ctx: Context) -> web.Response:
    config = await _body(ctx, "NotificationConfiguration")
    if len(config):
        raise _not_implemented("Event notification")
    return web.Response()


# ---- request payment ------------------------------------------------------------------------


async def get_bucket_request_payment(ctx: Context) -> web.Response:
    ctx.bucket()
    return _xml("RequestPaymentConfiguration", [("Payer", "BucketOwner")])


async def put_bucket_request_payment(ctx: Context) -> web.Response:
    config = await _body(ctx, "RequestPaymentConfiguration")
    payer = xml.text(config, "Payer")
    if payer not in ("BucketOwner", "Requester"):
        raise S3Error(ErrorCode.MalformedXML)
    if payer == "Requester":
        raise _not_implemented("Requester Pays")
    return web.Response()


# ---- transfer acceleration ------------------------------------------------------------------


async def get_bucket_accelerate(ctx: Context) -> web.Response:
    ctx.bucket()
    return _xml("AccelerateConfiguration")  # never configured: no Status element


async def put_bucket_accelerate(ctx: Context) -> web.Response:
    config = await _body(ctx, "AccelerateConfiguration")
    status = xml.text(config, "Status")
    if status not in ("Enabled", "Suspended"):
        raise S3Error(ErrorCode.MalformedXML)
    if status == "Enabled":
        raise _not_implemented("Transfer acceleration")
    return web.Response()  # Suspended: acceleration off, as it always is


# ---- website --------------------------------------------------------------------------------


async def get_bucket_website(ctx: Context) -> web.Response:
    ctx.bucket()
    raise S3Error(ErrorCode.NoSuchWebsiteConfiguration, BucketName=ctx.bucket_name)


async def put_bucket_website(ctx: Context) -> web.Response:
    await _body(ctx, "WebsiteConfiguration")
    raise _not_implemented("Static website hosting")


async def delete_bucket_website(ctx: Context) -> web.Response:
    ctx.bucket()
    return web.Response(status=204)


# ---- replication ----------------------------------------------------------------------------


async def get_bucket_replication(ctx: Context) -> web.Response:
    ctx.bucket()
    raise S3Error(ErrorCode.ReplicationConfigurationNotFoundError, BucketName=ctx.bucket_name)


async def put_bucket_replication(ctx: Context) -> web.Response:
    await _body(ctx, "ReplicationConfiguration")
    raise _not_implemented("Cross-bucket replication")


async def delete_bucket_replication(ctx: Context) -> web.Response:
    ctx.bucket()
    return web.Response(status=204)
