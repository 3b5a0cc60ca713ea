"""PostObject: a browser's multipart/form-data upload to a bucket, authorized by a signed policy.

A POST carries no Authorization header, so the app admits it as anonymous; the form's signed
policy names the user, who is set on the request (after the signature and the policy's
conditions check out) before the usual authorization. The form fields before `file` are read
into memory (they are small and bounded); the file is streamed through the same ingest as
PutObject (`put.receive_body` / `put.commit`), never held whole.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from aiohttp import BodyPartReader, web
from multidict import CIMultiDict

from ...chunks.ingest import release
from ...meta.commands import PutObject
from .. import postpolicy, xml
from ..checksums import requested_algorithm
from ..context import Context
from ..errors import ErrorCode, S3Error
from ..objectmeta import STANDARD_HEADERS, metadata_from_headers, validate_key
from ..router import Endpoint
from ..sse import for_write, response_headers
from ..versions import created_version_header, new_version_id
from .acl import new_object_owner, set_owner
from .lifecycle import expiration_header
from .objectlock import lock_fields
from .put import MAX_PUT_SIZE, commit, receive_body, version_record
from .tagging import MAX_OBJECT_TAGS, apply_tags, parse_tagging

MAX_FIELDS_BYTES = 64 * 1024  # all fields before the file together (AWS allows 20 KB)
_PIECE = 256 * 1024
_AUTH_FIELDS = frozenset({"x-amz-algorithm", "x-amz-credential", "x-amz-date",
                          "x-amz-signature", "x-amz-security-token", "policy", "signature",
                          "awsaccesskeyid"})
_NOT_MULTIPART = "Bucket POST must be of the enclosure-type multipart/form-data"


class _FileBody:
    """The `file` part as a BodyReader for ingest."""

    def __init__(self, part: BodyPartReader) -> None:
        self._part = part

    async def read_chunk(self) -> bytes:
        return await self._part.read_chunk(_PIECE)


@dataclass
class _FormContext(Context):
    """The request as the put path sees it: form fields stand in for the request headers
    (`acl` as x-amz-acl, Content-Type, x-amz-meta-*, ...) and the file part is the body."""

    form: CIMultiDict[str] = field(default_factory=CIMultiDict)
    file: BodyPartReader | None = None

    @property
    def headers(self) -> Any:
        return self.form

    def body(self) -> Any:
        assert self.file is not None
        return _FileBody(self.file)


async def _read_fields(reader: Any) -> tuple[dict[str, str], list[tuple[str, str]],
                                             BodyPartReader | None]:
    """The fields before `file` ({lower name: value} and as sent), and the file part."""
    fields: dict[str, str] = {}
    ordered: list[tuple[str, str]] = []
    total = 0
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            raise S3Error(ErrorCode.MalformedXML, "Nested multipart forms are not supported")
        name = part.name or ""
        if name.lower() == "file":
            return fields, ordered, part
        data = bytearray()
        while chunk := await part.read_chunk(8192):
            data += chunk
            total += len(chunk)
            if total > MAX_FIELDS_BYTES:
                raise S3Error(ErrorCode.MaxPostPreDataLengthExceededError)
        try:
            value = data.decode()
        except UnicodeDecodeError:
            raise S3Error(ErrorCode.InvalidArgument, f"Form field {name} is not UTF-8",
                          ArgumentName=name) from None
        fields[name.lower()] = value
        ordered.append((name, value))
    return fields, ordered, None


def _as_headers(ordered: list[tuple[str, str]]) -> CIMultiDict[str]:
    """The form fields that mean what a PutObject header means."""
    standard = {h.lower(): h for h in (*STANDARD_HEADERS, "Content-MD5")}
    headers: CIMultiDict[str] = CIMultiDict()
    for name, value in ordered:
        lower = name.lower()
        if lower == "acl":
            headers["x-amz-acl"] = value
        elif lower in standard:
            headers[standard[lower]] = value
        elif lower.startswith("x-amz-") and lower not in _AUTH_FIELDS:
            headers[lower] = value
    return headers


def _check_policy(policy: postpolicy.Policy, fields: dict[str, str], key: str, *,
                  bucket: str) -> None:
    """Conditions on `$key` hold for the key being written (`${filename}` replaced by the file's
    name, as AWS does); a policy that spells the placeholder itself is honoured too."""
    now = datetime.now(UTC)
    try:
        postpolicy.check(policy, {**fields, "key": key}, bucket=bucket, now=now)
    except S3Error:
        if key == fields["key"]:
            raise
        postpolicy.check(policy, fields, bucket=bucket, now=now)


def _answer(ctx: Context, fields: dict[str, str], bucket: str, key: str, etag: str,
            extra: dict[str, str]) -> web.Response:
    location = f"{ctx.http.scheme}://{ctx.http.host}/{bucket}/{quote(key)}"
    headers = {"ETag": etag, "Location": location, **extra}
    redirect = fields.get("success_action_redirect") or fields.get("redirect")
    if redirect and urlsplit(redirect).scheme in ("http", "https"):
        query = urlencode({"bucket": bucket, "key": key, "etag": etag})
        headers["Location"] = redirect + ("&" if "?" in redirect else "?") + query
        return web.Response(status=303, headers=headers)
    status = fields.get("success_action_status")
    if status == "201":
        body = xml.document("PostResponse", [("Location", location), ("Bucket", bucket),
                                             ("Key", key), ("ETag", etag)], namespace=False)
        return web.Response(status=201, body=body, content_type="application/xml",
                            headers=headers)
    return web.Response(status=200 if status == "200" else 204, headers=headers)


async def post_object(ctx: Context) -> web.StreamResponse:
    if not ctx.headers.get("Content-Type", "").lower().startswith("multipart/form-data"):
        raise S3Error(ErrorCode.PreconditionFailed, _NOT_MULTIPART, Condition=_NOT_MULTIPART)
    try:
        reader = await ctx.http.multipart()
        fields, ordered, file_part = await _read_fields(reader)
    except (ValueError, AssertionError, KeyError):  # aiohttp's complaints about the framing
        raise S3Error(ErrorCode.MalformedPOSTRequest) from None
    if "key" not in fields:
        raise S3Error(ErrorCode.InvalidArgument, "Bucket POST must contain a field named 'key'.  "
                      "If it is specified, please check the order of the fields.",
                      ArgumentName="key")
    if file_part is None:
        raise S3Error(ErrorCode.IncorrectNumberOfFilesInPostRequest)
    user = None
    length_range = None
    if "policy" in fields:
        policy = postpolicy.decode(fields["policy"])
        region = ctx.node.config.node.region
        access_key = postpolicy.signer(fields, ctx.node.secret_for, region)
        user = ctx.node.user_by_access_key(access_key)
        if user is None:
            raise S3Error(ErrorCode.InvalidAccessKeyId, AWSAccessKeyId=access_key)
    key = fields["key"].replace("${filename}", file_part.filename or "")
    if "policy" in fields:
        _check_policy(policy, fields, key, bucket=ctx.bucket_name)
        length_range = policy.length_range
    if not key:
        raise S3Error(ErrorCode.InvalidArgument, "User key must have a length greater than 0.",
                      ArgumentName="key")
    validate_key(key)
    form = _FormContext(http=ctx.http, node=ctx.node, user=user, auth=None,
                        request_id=ctx.request_id,
                        endpoint=Endpoint("PostObject", ctx.bucket_name, key, ctx.endpoint.query),
                        form=_as_headers(ordered), file=file_part)
    bucket = form.bucket()
    owner, acl = new_object_owner(form, bucket)
    metadata = metadata_from_headers(form.headers)
    # Form fields stand for headers: object lock and encryption fields, and bucket defaults.
    metadata.update(lock_fields(form.headers, bucket, time.time()))
    form.encryption = await for_write(ctx.node, form.headers, bucket)
    tags = parse_tagging(fields["tagging"].encode(), limit=MAX_OBJECT_TAGS) \
        if "tagging" in fields else None
    max_size = MAX_PUT_SIZE if length_range is None else min(length_range[1], MAX_PUT_SIZE)
    algorithm = requested_algorithm(form.headers)
    body = await receive_body(form, max_size=max_size, length_required=False,
                              storage_class=metadata["class"])
    if length_range is not None and body.size < length_range[0]:
        release(ctx.node.chunks, body.chunks, abandoned=True)
        raise S3Error(ErrorCode.EntityTooSmall, ProposedSize=str(body.size),
                      MinSizeAllowed=str(length_range[0]))
    record = version_record(form, body, algorithm, metadata)
    if form.encryption is not None:
        record.update(sse=form.encryption.record(), etag=form.encryption.etag(body.md5))
    set_owner(record, owner, acl)
    apply_tags(record, tags)
    result = await commit(form, body, PutObject(bucket=ctx.bucket_name, key=key, record=record,
                                                version_id=new_version_id(),
                                                inline=body.inline))
    while (rest := await reader.next()) is not None:  # AWS ignores fields after the file
        await rest.release()
    return _answer(ctx, fields, ctx.bucket_name, key, record["etag"],
                   {**created_version_header(result["version_id"]),
                    **response_headers(record.get("sse")), **expiration_header(form)})

