"""Bucket default encryption: Put/Get/DeleteBucketEncryption.

The configuration lives in the bucket record (`encryption`: {"algorithm", "bucket_key", and
for aws:kms the "key" name or None for the default key}), set with SetBucketConfig; `s3/sse.py`
applies it to writes that name no encryption themselves. DSSE-KMS answers NotImplemented.
"""

from __future__ import annotations

from aiohttp import web

from ... import kms
from ...meta.commands import SetBucketConfig
from .. import xml
from ..context import Context
from ..errors import ErrorCode, S3Error
from ..sse import AES256, AWS_KMS

ALGORITHMS = (AES256, "aws:kms", "aws:kms:dsse")


async def put_bucket_encryption(ctx: Context) -> web.Response:
    ctx.bucket()
    doc = xml.parse(await ctx.read_small_body(xml.MAX_BODY), "ServerSideEncryptionConfiguration")
    rules = xml.children(doc, "Rule")
    if len(rules) != 1:
        raise S3Error(ErrorCode.MalformedXML)
    defaults = xml.children(rules[0], "ApplyServerSideEncryptionByDefault")
    if len(defaults) != 1:
        raise S3Error(ErrorCode.MalformedXML)
    algorithm = xml.text(defaults[0], "SSEAlgorithm")
    if algorithm not in ALGORITHMS:
        raise S3Error(ErrorCode.MalformedXML)
    if algorithm not in (AES256, AWS_KMS):
        raise S3Error(ErrorCode.NotImplemented, "DSSE-KMS is not supported by Anode")
    key_id = xml.text(defaults[0], "KMSMasterKeyID")
    if key_id is not None and algorithm != AWS_KMS:
        raise S3Error(ErrorCode.InvalidArgument,
                      "a KMSMasterKeyID is not applicable if the default sse algorithm is not "
                      "aws:kms or aws:kms:dsse")
    bucket_key = (xml.text(rules[0], "BucketKeyEnabled") or "false").strip().lower()
    if bucket_key not in ("true", "false"):
        raise S3Error(ErrorCode.MalformedXML)
    value = {"algorithm": algorithm, "bucket_key": bucket_key == "true"}
    if algorithm == AWS_KMS:
        value["key"] = kms.key_name(key_id) if key_id else None
    await ctx.node.propose(SetBucketConfig(bucket=ctx.bucket_name, name="encryption",
                                           value=value))
    return web.Response()


async def get_bucket_encryption(ctx: Context) -> web.Response:
    config = ctx.bucket().get("encryption")
    if not config:
        raise S3Error(ErrorCode.ServerSideEncryptionConfigurationNotFoundError,
                      BucketName=ctx.bucket_name)
    default = [("SSEAlgorithm", config["algorithm"])]
    if config.get("key"):
        default.append(("KMSMasterKeyID", kms.arn(ctx.node, config["key"])))
    body = xml.document("ServerSideEncryptionConfiguration", [("Rule", [
        ("ApplyServerSideEncryptionByDefault", default),
        ("BucketKeyEnabled", bool(config.get("bucket_key"))),
    ])])
    return web.Response(body=body, content_type="application/xml")


async def delete_bucket_encryption(ctx: Context) -> web.Response:
    ctx.bucket()
    await ctx.node.propose(SetBucketConfig(bucket=ctx.bucket_name, name="encryption", value=None))
    return web.Response(status=204)
