"""The admin API on :8081 (see docs/admin-api.md): probes, metrics, status, users, buckets,
KMS keys.

JSON in and out. Probes and metrics are open; everything else needs the root secret as a Bearer
token, compared in constant time.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from .. import kms
from ..errors import ErrorCode, Refused
from ..meta.commands import CreateBucket, CreateUser, DeleteBucket, DeleteUser, SetBucketQuota
from ..meta.layout import unpack
from ..meta.names import valid_bucket_name
from ..meta.quota import validate_limit
from ..node import Node
from ..users import ROOT_USER, owner_id
from . import integrity, membership
from .common import NODE_KEY, error


def make_admin_app(
    node: Node, *, mounts: Mapping[str, web.Application] | None = None
) -> web.Application:
    """`mounts`: apps served under a path prefix that authenticate their own requests (the web
    console); the Bearer token is not asked of them."""
    app = web.Application(middlewares=[_errors, _authenticate])
    app[NODE_KEY] = node
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/status", status)
    app.router.add_get("/users", list_users)
    app.router.add_post("/users", create_user)
    app.router.add_delete("/users/{name}", delete_user)
    app.router.add_get("/buckets", list_buckets)
    app.router.add_post("/buckets", create_bucket)
    app.router.add_delete("/buckets/{name}", delete_bucket)
    app.router.add_put("/buckets/{name}/quota", set_bucket_quota)
    app.router.add_get("/kms/keys", list_kms_keys)
    app.router.add_post("/kms/keys", create_kms_key)
    app.router.add_put("/kms/keys/{name:.+}", update_kms_key)
    membership.register(app)
    integrity.register(app)
    for prefix, mounted in (mounts or {}).items():
        app.add_subapp(prefix, mounted)
    return app


OPEN = {"/health", "/ready", "/metrics"}


@web.middleware
async def _errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)
    except Refused as e:
        return error(e.status, e.message, e.code.aws_name)
    except ValueError as e:
        return error(400, str(e), "BadRequest")


@web.middleware
async def _authenticate(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.path in OPEN or len(request.match_info.apps) > 1:  # routed into a mount
        return await handler(request)
    node = request.app[NODE_KEY]
    token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    secret = node.root.secret_key
    if not secret or not hmac.compare_digest(token.encode(), secret.encode()):
        return error(
            401, "a valid 'Authorization: Bearer <root secret key>' is required", "Unauthorized"
        )
    return await handler(request)


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except Exception:
        raise ValueError("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    return body


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    node = request.app[NODE_KEY]
    if node.ready:
        return web.json_response({"ready": True})
    return web.json_response({"ready": False, "reason": "starting or stopping"}, status=503)


async def metrics(request: web.Request) -> web.Response:
    return web.Response(
        body=request.app[NODE_KEY].metrics.render(), content_type="text/plain", charset="utf-8"
    )


async def status(request: web.Request) -> web.Response:
    return web.json_response(await request.app[NODE_KEY].status())


def _public(user: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": user["name"],
        "access_key": user["access_key"],
        "owner_id": owner_id(user["name"]),
        "display_name": user["name"],
        **({"email": user["email"]} if user.get("email") else {}),
    }


async def list_users(request: web.Request) -> web.Response:
    return web.json_response({"users": [_public(u) for u in request.app[NODE_KEY].meta.users()]})


async def create_user(request: web.Request) -> web.Response:
    node = request.app[NODE_KEY]
    body = await _json(request)
    name = body.get("name")
    if not isinstance(name, str) or not name or name == ROOT_USER or len(name) > 64:
        raise ValueError("'name' must be a non-empty string of at most 64 characters, not 'root'")
    access_key = body.get("access_key") or "AK" + secrets.token_hex(9).upper()
    secret_key = body.get("secret_key") or secrets.token_urlsafe(30)
    if not isinstance(access_key, str) or not isinstance(secret_key, str) or len(secret_key) < 8:
        raise ValueError("'access_key' and 'secret_key' must be strings (secret: 8+ characters)")
    email = body.get("email", "")
    if not isinstance(email, str) or (email and "@" not in email):
        raise ValueError("'email' must be an e-mail address")
    if access_key == node.root.access_key:
        return error(409, "access key already in use", "UserExists")
    existed = node.meta.user(name)
    record = await node.propose(
        CreateUser(
            name=name,
            access_key=access_key,
            secret_key=secret_key,
            owner_id=owner_id(name),
            created=time.time(),
            email=email,
        )
    )
    return web.json_response(
        {**_public(record), "secret_key": record["secret_key"]}, status=200 if existed else 201
    )


async def list_kms_keys(request: web.Request) -> web.Response:
    node = request.app[NODE_KEY]
    await node.read_barrier()
    return web.json_response({"keys": [kms.public(node, k) for k in node.meta.kms_keys()]})


async def create_kms_key(request: web.Request) -> web.Response:
    """Create a named SSE-KMS key (200 and the existing key when the name is taken)."""
    node = request.app[NODE_KEY]
    name = (await _json(request)).get("name")
    if not isinstance(name, str):
        raise ValueError("'name' must be a string")
    record, created = await kms.create(node, name)
    return web.json_response(kms.public(node, record), status=201 if created else 200)


async def update_kms_key(request: web.Request) -> web.Response:
    """{"enabled": false} disables a key: objects under it can be neither written nor read."""
    node = request.app[NODE_KEY]
    enabled = (await _json(request)).get("enabled")
    if not isinstance(enabled, bool):
        raise ValueError("'enabled' must be true or false")
    record = await kms.set_enabled(node, request.match_info["name"], enabled)
    return web.json_response(kms.public(node, record))


async def delete_user(request: web.Request) -> web.Response:
    await request.app[NODE_KEY].propose(DeleteUser(name=request.match_info["name"]))
    return web.Response(status=204)


def _bucket_doc(node: Node, name: str, record: dict[str, Any]) -> dict[str, Any]:
    objects = bytes_ = 0
    for _, raw in node.meta.objects(name):
        objects += 1
        bytes_ += unpack(raw)["size"]
    quota = record.get("quota") or {}
    usage_objects, usage_bytes = node.meta.usage(name)
    return {
        "name": name,
        "owner": record["owner"],
        "created": record["created"],
        "objects": objects,
        "bytes": bytes_,
        "quota": {"max_bytes": quota.get("bytes"), "max_objects": quota.get("objects")}
        if quota
        else None,
        "usage": {"objects": usage_objects, "bytes": usage_bytes},
    }


async def list_buckets(request: web.Request) -> web.Response:
    node = request.app[NODE_KEY]
    await node.read_barrier()  # usage as of the latest commit, whichever node is asked
    return web.json_response({"buckets": [_bucket_doc(node, n, r) for n, r in node.meta.buckets()]})


async def create_bucket(request: web.Request) -> web.Response:
    node = request.app[NODE_KEY]
    body = await _json(request)
    name = body.get("name")
    owner = body.get("owner") or ROOT_USER
    if not isinstance(name, str):
        raise ValueError("'name' is required")
    if not valid_bucket_name(name):
        raise Refused(ErrorCode.InvalidBucketName)
    if owner != ROOT_USER and node.meta.user(owner) is None:
        return error(404, f"no user named {owner!r}", "NoSuchUser")
    existing = node.meta.bucket(name)
    if existing is not None:
        if existing["owner"] != owner:
            return error(
                409, "the bucket exists and belongs to someone else", "BucketAlreadyExists"
            )
        return web.json_response(_bucket_doc(node, name, existing))
    try:
        await node.propose(
            CreateBucket(
                bucket=name, owner=owner, created=time.time(), region=node.config.node.region
            )
        )
    except Refused as e:
        if e.code is not ErrorCode.BucketAlreadyOwnedByYou:
            raise
    return web.json_response(_bucket_doc(node, name, node.meta.bucket(name) or {}), status=201)


async def set_bucket_quota(request: web.Request) -> web.Response:
    """Both limits null removes the quota; a lower quota than the usage refuses only growth."""
    node = request.app[NODE_KEY]
    name = request.match_info["name"]
    body = await _json(request)
    unknown = set(body) - {"max_bytes", "max_objects"}
    if unknown:
        raise ValueError(f"unknown field(s): {', '.join(sorted(unknown))}")
    await node.propose(
        SetBucketQuota(
            bucket=name,
            max_bytes=validate_limit(body.get("max_bytes"), "max_bytes"),
            max_objects=validate_limit(body.get("max_objects"), "max_objects"),
        )
    )
    return web.json_response(_bucket_doc(node, name, node.meta.bucket(name) or {}))


async def delete_bucket(request: web.Request) -> web.Response:
    force = request.query.get("force", "").lower() == "true"
    await request.app[NODE_KEY].propose(
        DeleteBucket(bucket=request.match_info["name"], force=force)
    )
    return web.Response(status=204)
