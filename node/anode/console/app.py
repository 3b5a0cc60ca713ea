"""The web console: server-rendered pages under /console/ on the admin port.

Log in with an access key and secret key (checked as S3 checks a signature's key: the user
named by the access key, as of the latest commit); the session is a signed, HttpOnly,
SameSite=Strict cookie (`session`) that holds no secret. Every form that changes something
carries the session's CSRF token and must come from this origin; writes (upload, delete) are
refused unless `[console] writes = true`. Objects are read and written through the node's own
S3 listener as the logged-in user (`s3client`), so S3's authorization applies unchanged. The
cluster and users pages are for root. No JavaScript: a strict Content-Security-Policy.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any
from urllib.parse import quote

import jinja2
from aiohttp import web

from ..audit.record import PRINCIPAL, UNAUDITED, UNAUTHENTICATED
from ..errors import Refused
from ..node import Node
from ..users import User
from . import present, session
from .s3client import LoopbackS3, S3Failure, object_path, parse_error

PREFIX = "/console"
CONSOLE_KEY = web.AppKey("console", object)
_USER = "console.user"
_SESSION = "console.session"
_PUBLIC = {"/login", "/static/console.css"}
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # no-referrer would make form posts say `Origin: null`
    "Cache-Control": "no-store",
}
_STYLESHEET = (resources.files("anode.console") / "static" / "console.css").read_text()
_DUMMY_SECRET = "x" * 40  # compared against when the access key is unknown (same timing)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Console:
    """What the handlers share: the node, the S3 client, the templates and the session key."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.config = node.config.console
        self.s3 = LoopbackS3(node.config)
        self.key = session.server_key(node.config.cluster.secret)
        self.secure = node.config.tls
        self.templates = jinja2.Environment(
            loader=jinja2.PackageLoader("anode.console", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self.templates.globals.update(url=present.url, size=present.size, when=present.when)

    def secret_of(self, access_key: str) -> str | None:
        return self.node.secret_for(access_key)


def make_console_app(node: Node) -> web.Application:
    app = web.Application(middlewares=[_headers, _authenticate])
    console = Console(node)
    app[CONSOLE_KEY] = console
    r = app.router
    r.add_get("/", index)
    r.add_get("/login", login_page)
    r.add_post("/login", login)
    r.add_post("/logout", logout)
    r.add_get("/static/console.css", stylesheet)
    r.add_get("/cluster", cluster)
    r.add_get("/users", users)
    r.add_get("/buckets", buckets)
    r.add_get("/buckets/{bucket}", bucket)
    r.add_get("/browse/{bucket}", browse)
    r.add_get("/download/{bucket}", download)
    r.add_post("/upload/{bucket}", upload)
    r.add_get("/delete/{bucket}", confirm_delete)
    r.add_post("/delete/{bucket}", delete)

    async def close(_: web.Application) -> None:
        await console.s3.close()

    app.on_cleanup.append(close)
    return app


# ---- middlewares --------------------------------------------------------------------------


@web.middleware
async def _headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPNotFound:
        response = _page(
            request, "error.html", status=404, code="NotFound", message="There is no such page."
        )
    except web.HTTPException as e:  # redirects, 403s
        e.headers.update(_HEADERS)
        raise
    except S3Failure as e:
        response = _page(request, "error.html", status=e.status, code=e.code, message=e.message)
    except Refused as e:  # the node's own refusals (no quorum, not ready)
        response = _page(
            request, "error.html", status=e.status, code=e.code.aws_name, message=e.message
        )
    response.headers.update(_HEADERS)
    return response


@web.middleware
async def _authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Who the session cookie names; POSTs must also come from this origin."""
    if request.method == "POST" and not _same_origin(request):
        return _refuse(request, 403, "Forbidden", "The form was not sent from this console.")
    if request.path == PREFIX:  # the session cookie's path is /console/
        raise web.HTTPSeeOther(PREFIX + "/")
    path = request.path.removeprefix(PREFIX)
    if path in _PUBLIC:
        request[UNAUDITED] = path == "/static/console.css"
        return await handler(request)
    console = request.app[CONSOLE_KEY]
    await console.node.read_barrier()  # the user and their secret as of the latest commit
    found = session.decode(
        request.cookies.get(session.COOKIE, ""), console.key, console.secret_of, now=time.time()
    )
    user = found and console.node.user_by_access_key(found.access_key)
    if found is None or user is None:
        if request.method == "GET":
            raise web.HTTPSeeOther(PREFIX + "/login")
        return _refuse(request, 401, "Unauthorized", "Your session has ended: log in again.")
    request[_USER], request[_SESSION] = user, found
    request[PRINCIPAL] = (user.name, user.access_key)  # for the audit record
    return await handler(request)


def _same_origin(request: web.Request) -> bool:
    """Browsers send Origin with every POST; one from elsewhere is a cross-site request."""
    origin = request.headers.get("Origin")
    return origin is None or origin == f"{request.scheme}://{request.host}"


# ---- helpers ------------------------------------------------------------------------------


def _console(request: web.Request) -> Console:
    return request.app[CONSOLE_KEY]


def _page(request: web.Request, template: str, *, status: int = 200, **values: Any) -> web.Response:
    console = _console(request)
    found = request.get(_SESSION)
    html = console.templates.get_template(template).render(
        user=request.get(_USER),
        csrf=session.csrf_token(found, console.key) if found else "",
        writes=console.config.writes,
        base=PREFIX,
        **values,
    )
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")


def _refuse(request: web.Request, status: int, code: str, message: str) -> web.Response:
    return _page(request, "error.html", status=status, code=code, message=message)


def _user(request: web.Request) -> User:
    return request[_USER]


def _require_root(request: web.Request) -> None:
    if not _user(request).is_root:
        raise web.HTTPForbidden()


async def _checked_form(request: web.Request) -> dict[str, str]:
    """A posted form whose CSRF token is this session's; also refused in read-only mode."""
    form = await request.post()
    _check_csrf(request, str(form.get("csrf", "")))
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _check_csrf(request: web.Request, token: str) -> None:
    console = _console(request)
    if not session.csrf_ok(request[_SESSION], console.key, token):
        raise _Refusal(403, "InvalidCsrfToken", "The form is stale or forged: reload the page.")


def _require_writes(request: web.Request) -> None:
    if not _console(request).config.writes:
        raise _Refusal(403, "ReadOnly", "The console is read-only ([console] writes = false).")


class _Refusal(S3Failure):
    """A refusal by the console itself, shown like an S3 error."""


def _browse_url(bucket: str, prefix: str = "", **params: str | None) -> str:
    return present.url(f"{PREFIX}/browse/{quote(bucket, safe='')}", prefix=prefix, **params)


# ---- login --------------------------------------------------------------------------------


async def index(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther(PREFIX + ("/cluster" if _user(request).is_root else "/buckets"))


async def login_page(request: web.Request) -> web.Response:
    return _page(request, "login.html", error=None, access_key="")


async def login(request: web.Request) -> web.StreamResponse:
    console = _console(request)
    form = await request.post()
    access_key = str(form.get("access_key", "")).strip()
    secret = str(form.get("secret_key", ""))
    await console.node.read_barrier()  # credentials as of the latest commit, as S3 reads them
    user = console.node.user_by_access_key(access_key) if access_key else None
    expected = user.secret_key if user else _DUMMY_SECRET
    request[PRINCIPAL] = (UNAUTHENTICATED, access_key or None)  # until proven
    if (
        user is None
        or not secret
        or not hmac.compare_digest(expected.encode(), secret.encode("utf-8", "replace"))
    ):
        return _page(
            request,
            "login.html",
            status=401,
            access_key=access_key,
            error="Wrong access key or secret key.",
        )
    request[PRINCIPAL] = (user.name, user.access_key)
    ttl = console.config.session_ttl
    cookie = session.encode(
        session.new_session(user.access_key, now=time.time(), ttl=ttl), console.key, user.secret_key
    )
    response = web.HTTPSeeOther(PREFIX + "/")
    response.set_cookie(
        session.COOKIE,
        cookie,
        max_age=int(ttl),
        path=PREFIX + "/",
        httponly=True,
        samesite="Strict",
        secure=console.secure,
    )
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    await _checked_form(request)
    response = web.HTTPSeeOther(PREFIX + "/login")
    response.del_cookie(session.COOKIE, path=PREFIX + "/")
    raise response


async def stylesheet(request: web.Request) -> web.Response:
    return web.Response(
        text=_STYLESHEET, content_type="text/css", headers={"Cache-Control": "max-age=300"}
    )


# ---- cluster and users (root) -------------------------------------------------------------


async def cluster(request: web.Request) -> web.Response:
    _require_root(request)
    status = await _console(request).node.status()
    return _page(request, "cluster.html", info=status)


async def users(request: web.Request) -> web.Response:
    _require_root(request)
    node = _console(request).node
    listed = sorted(node.meta.users(), key=lambda u: u["name"])
    return _page(request, "users.html", users=listed, root=node.root)


# ---- buckets ------------------------------------------------------------------------------


def _visible(user: User, record: dict[str, Any]) -> bool:
    """The buckets S3's ListBuckets shows this user: their own (root: all)."""
    return user.is_root or record["owner"] == user.name


async def buckets(request: web.Request) -> web.Response:
    node, user = _console(request).node, _user(request)
    rows = []
    for name, record in node.meta.buckets():
        if _visible(user, record):
            objects, bytes_ = node.meta.usage(name)
            rows.append(
                {
                    "name": name,
                    "record": record,
                    "objects": objects,
                    "bytes": bytes_,
                    "quota": present.quota(record.get("quota")),
                }
            )
    return _page(request, "buckets.html", buckets=rows)


async def bucket(request: web.Request) -> web.Response:
    node, user = _console(request).node, _user(request)
    name = request.match_info["bucket"]
    record = node.meta.bucket(name)
    if record is None or not _visible(user, record):
        raise S3Failure(404, "NoSuchBucket", "No bucket of that name is yours to see.")
    objects, bytes_ = node.meta.usage(name)
    return _page(
        request,
        "bucket.html",
        name=name,
        objects=objects,
        bytes=bytes_,
        settings=present.bucket_settings(record),
        policy=present.policy_text(record),
        browse=_browse_url(name),
    )


# ---- bucket browser -----------------------------------------------------------------------


async def browse(request: web.Request) -> web.Response:
    console, user = _console(request), _user(request)
    name = request.match_info["bucket"]
    prefix = request.query.get("prefix", "")
    token = request.query.get("token") or None
    listing = await console.s3.list_objects(
        user, name, prefix=prefix, token=token, max_keys=console.config.page_size
    )
    return _page(
        request,
        "browse.html",
        bucket=name,
        folder=prefix,
        listing=listing,
        crumbs=present.breadcrumbs(prefix),
        browse=lambda p="", **kw: _browse_url(name, p, **kw),
        quoted=quote(name, safe=""),
        first_page=token is not None,
        uploaded=request.query.get("uploaded"),
        deleted=request.query.get("deleted"),
        max_upload=console.config.max_upload,
    )


async def download(request: web.Request) -> web.StreamResponse:
    """The object's bytes as an attachment of a neutral type: a browser never renders them."""
    console = _console(request)
    name, key = request.match_info["bucket"], request.query.get("key", "")
    async with await console.s3.request(_user(request), "GET", object_path(name, key)) as answer:
        if answer.status != 200:
            raise parse_error(answer.status, await answer.read())
        response = web.StreamResponse(
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Disposition": _attachment(key),
                **_HEADERS,
            }
        )
        if answer.content_length is not None:
            response.content_length = answer.content_length
        await response.prepare(request)
        async for data in answer.content.iter_chunked(256 * 1024):
            await response.write(data)
        await response.write_eof()
        return response


def _attachment(key: str) -> str:
    """Content-Disposition naming the key's last part: ASCII fallback, then RFC 6266 UTF-8."""
    filename = key.rsplit("/", 1)[-1] or "download"
    fallback = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename
    )
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


async def upload(request: web.Request) -> web.StreamResponse:
    """One small file (`[console] max_upload`) from a multipart form, as PutObject."""
    console = _console(request)
    _require_writes(request)
    name = request.match_info["bucket"]
    fields: dict[str, str] = {}
    data, filename, content_type = None, "", "application/octet-stream"
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if part.name == "file" and data is None:
            filename = getattr(part, "filename", None) or ""
            content_type = part.headers.get("Content-Type") or content_type
            data = await _read_limited(part, console.config.max_upload)
        elif part.name in ("csrf", "prefix", "key"):
            fields[part.name] = (await part.read(decode=True)).decode("utf-8", "replace")[:4096]
    _check_csrf(request, fields.get("csrf", ""))
    prefix = fields.get("prefix", "")
    key = prefix + (fields.get("key") or filename)
    if data is None or not (fields.get("key") or filename):
        raise _Refusal(400, "InvalidArgument", "Choose a file to upload.")
    await console.s3.call(
        _user(request),
        "PUT",
        object_path(name, key),
        body=data,
        headers={"Content-Type": content_type},
    )
    raise web.HTTPSeeOther(_browse_url(name, prefix, uploaded=key))


async def _read_limited(part: Any, limit: int) -> bytes:
    chunks, total = [], 0
    while chunk := await part.read_chunk(64 * 1024):
        total += len(chunk)
        if total > limit:
            raise _Refusal(
                413,
                "EntityTooLarge",
                f"The console uploads files of at most {present.size(limit)}.",
            )
        chunks.append(chunk)
    return b"".join(chunks)


async def confirm_delete(request: web.Request) -> web.Response:
    _require_writes(request)
    name, key = request.match_info["bucket"], request.query.get("key", "")
    return _page(
        request,
        "delete.html",
        bucket=name,
        key=key,
        quoted=quote(name, safe=""),
        back=_browse_url(name, present.parent_prefix(key)),
    )


async def delete(request: web.Request) -> web.StreamResponse:
    _require_writes(request)
    form = await _checked_form(request)
    name, key = request.match_info["bucket"], form.get("key", "")
    if not key:
        raise _Refusal(400, "InvalidArgument", "No key to delete.")
    await _console(request).s3.call(_user(request), "DELETE", object_path(name, key))
    raise web.HTTPSeeOther(_browse_url(name, present.parent_prefix(key), deleted=key))
