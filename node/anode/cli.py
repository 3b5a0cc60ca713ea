"""The `anode` command: `server`, `local` (the quick start) and `admin` (wraps the admin API)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import ssl
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from .config import ConfigError, load_config
from .local import run_local


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="anode", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    server = sub.add_parser(
        "server", help="run one node (from a config file and/or ANODE_* environment variables)"
    )
    server.add_argument(
        "--config",
        default=os.environ.get("ANODE_CONFIG") or None,
        help="TOML config file (docs/config.md; default: $ANODE_CONFIG); without one the node "
        "runs from ANODE_<SECTION>_<KEY> environment variables and defaults alone",
    )

    local = sub.add_parser("local", help="quick start: a local cluster with printed credentials")
    local.add_argument("--data-dir", default="./data")
    local.add_argument("--nodes", type=int, default=3, help="node processes (1 = no Raft)")
    local.add_argument("--base-port", type=int, default=8080, help="S3 port of the first node")

    admin = sub.add_parser("admin", help="talk to a node's admin API")
    admin.add_argument("--url", default=os.environ.get("ANODE_ADMIN_URL", "http://127.0.0.1:8081"))
    admin.add_argument(
        "--token",
        default=os.environ.get("ANODE_ROOT_SECRET_KEY"),
        help="root secret key (default: $ANODE_ROOT_SECRET_KEY)",
    )
    admin.add_argument(
        "--cacert",
        default=os.environ.get("ANODE_ADMIN_CACERT"),
        help="PEM file to verify an https node with (default: $ANODE_ADMIN_CACERT, else the "
        "system CAs)",
    )
    admin_sub = admin.add_subparsers(dest="action", required=True)
    for name in ("status", "health", "ready", "metrics"):
        admin_sub.add_parser(name)
    admin_sub.add_parser("damaged", help="damaged chunks here and the objects they belong to")
    admin_sub.add_parser("scrub", help="re-hash every chunk on this node now; list damaged ones")
    users = admin_sub.add_parser("users").add_subparsers(dest="verb", required=True)
    users.add_parser("list")
    create = users.add_parser("create")
    create.add_argument("name")
    create.add_argument("--access-key")
    create.add_argument("--secret-key")
    create.add_argument("--email", help="for ACL grants by emailAddress")
    users.add_parser("delete").add_argument("name")
    buckets = admin_sub.add_parser("buckets").add_subparsers(dest="verb", required=True)
    buckets.add_parser("list")
    bcreate = buckets.add_parser("create")
    bcreate.add_argument("name")
    bcreate.add_argument("--owner", default="root")
    bdelete = buckets.add_parser("delete")
    bdelete.add_argument("name")
    bdelete.add_argument("--force", action="store_true")
    bquota = buckets.add_parser("quota", help="set (or, with no limit, remove) a bucket quota")
    bquota.add_argument("name")
    bquota.add_argument("--max-bytes", type=int)
    bquota.add_argument("--max-objects", type=int)
    keys = (admin_sub.add_parser("kms", help="SSE-KMS keys").add_subparsers(dest="kind",
                                                                           required=True)
            .add_parser("keys").add_subparsers(dest="verb", required=True))
    keys.add_parser("list")
    for verb in ("create", "enable", "disable"):
        keys.add_parser(verb).add_argument("name")
    members = admin_sub.add_parser("members", help="cluster membership (docs/admin-api.md)")
    members = members.add_subparsers(dest="verb", required=True)
    members.add_parser("list")
    madd = members.add_parser("add", help="promote a node started with [cluster] learner = true")
    madd.add_argument("id")
    madd.add_argument("address", help="the new node's Raft host:port")
    mdrain = members.add_parser(
        "drain", help="move a member's chunks to the others and wait until none is missing"
    )
    mdrain.add_argument("id")
    mdrain.add_argument("--no-wait", action="store_true", help="start draining and return")
    mdrain.add_argument("--json", action="store_true", help="progress as JSON lines")
    mdrain.add_argument("--interval", type=float, default=1.0, help="seconds between polls")
    mdrain.add_argument("--timeout", type=float, help="give up after this many seconds (exit 3)")
    mremove = members.add_parser("remove", help="remove a drained member")
    mremove.add_argument("id")
    mremove.add_argument("--force", action="store_true")
    mremove.add_argument(
        "--rejoin",
        action="store_true",
        help="the member lost its volume and rejoins as a learner (its /status shows rejoin): "
        "remove its old voter entry, keep its registration, no drain",
    )
    mleader = members.add_parser("leader", help="transfer leadership")
    mleader.add_argument("--to", help="target member id (default: the most caught-up)")

    args = parser.parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("ANODE_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    if args.command == "admin":
        return _admin(args)
    if args.command == "local":
        return run_local(data_dir=Path(args.data_dir), nodes=args.nodes, base_port=args.base_port)
    return _serve(args)


def _serve(args: argparse.Namespace) -> int:
    from .httplog import quiet_client_errors
    from .server import run

    quiet_client_errors()

    env = dict(os.environ)
    try:
        config = load_config(getattr(args, "config", None), env)
    except ConfigError as e:
        print(f"anode: configuration error: {e}", file=sys.stderr)
        return 2
    if not config.root.access_key:
        print(
            "anode: configuration error: root credentials are required: set [root] access_key "
            "and secret_key, or ANODE_ROOT_ACCESS_KEY and ANODE_ROOT_SECRET_KEY "
            "(`anode local` uses documented quick-start credentials)",
            file=sys.stderr,
        )
        return 2
    run(config)
    return 0


def _kms_request(args: argparse.Namespace) -> tuple[str, str, dict | None]:
    if args.verb == "list":
        return "GET", "/kms/keys", None
    if args.verb == "create":
        return "POST", "/kms/keys", {"name": args.name}
    return "PUT", f"/kms/keys/{args.name}", {"enabled": args.verb == "enable"}


def _admin(args: argparse.Namespace) -> int:
    if args.action == "members" and args.verb == "drain" and not args.no_wait:
        return _drain(args)
    method, path, body = "GET", "/" + args.action, None
    if args.action == "members":
        method, path, body = _members_request(args)
    elif args.action == "kms":
        method, path, body = _kms_request(args)
    elif args.action == "scrub":
        method = "POST"
    elif args.action in ("users", "buckets"):
        if args.verb == "list":
            path = f"/{args.action}"
        elif args.verb == "create":
            method, path = "POST", f"/{args.action}"
            body = (
                {"name": args.name, "access_key": args.access_key, "secret_key": args.secret_key,
                 **({"email": args.email} if args.email else {})}
                if args.action == "users"
                else {"name": args.name, "owner": args.owner}
            )
        elif args.verb == "quota":
            method, path = "PUT", f"/buckets/{args.name}/quota"
            body = {"max_bytes": args.max_bytes, "max_objects": args.max_objects}
        else:
            method, path = "DELETE", f"/{args.action}/{args.name}"
            if getattr(args, "force", False):
                path += "?force=true"
    from .progress import waiting

    with waiting(f"{method} {path}", sys.stderr):
        status, payload = _request(args.url, method, path, body, args.token, cacert=args.cacert)
    if isinstance(payload, (dict, list)):
        print(json.dumps(payload, indent=2))
    elif payload:
        print(payload)
    return 0 if 0 < status < 400 else 1


class _Failed(Exception):
    pass


def _drain(args: argparse.Namespace) -> int:
    """Drain a member and wait, showing progress, until every chunk copy it held exists on the
    other members (the drain call answers how many are missing; it is repeated as the poll)."""
    from .progress import Remaining, reporter, wait

    def poll() -> int:
        status, payload = _request(args.url, "POST", f"/cluster/members/{args.id}/drain", None,
                                   args.token, cacert=args.cacert)
        if not 0 < status < 400 or not isinstance(payload, dict):
            raise _Failed(payload if status else "no answer")
        return int(payload["remaining"])

    state = Remaining(f"drain {args.id}", "chunk copies")
    report = reporter(sys.stdout, as_json=args.json, fields={"member": args.id})
    try:
        outcome = wait(poll, state, report, interval=args.interval, timeout=args.timeout)
    except _Failed as e:
        detail = json.dumps(e.args[0]) if isinstance(e.args[0], dict) else e.args[0]
        print(f"anode admin: drain {args.id} failed: {detail}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # the member keeps draining; only the waiting stops
        print(f"\nanode admin: stopped waiting; {args.id} is still draining", file=sys.stderr)
        return 130
    return 0 if outcome == "done" else 3


def _members_request(args: argparse.Namespace) -> tuple[str, str, Any]:
    if args.verb == "list":
        return "GET", "/cluster/members", None
    if args.verb == "add":
        return "POST", "/cluster/members", {"id": args.id, "address": args.address}
    if args.verb == "drain":
        return "POST", f"/cluster/members/{args.id}/drain", None
    if args.verb == "remove":
        query = "?rejoin=true" if args.rejoin else "?force=true" if args.force else ""
        return "DELETE", f"/cluster/members/{args.id}{query}", None
    return "POST", "/cluster/leadership", {"to": args.to}


def _request(
    base: str, method: str, path: str, body: Any, token: str | None, *, cacert: str | None = None
) -> tuple[int, Any]:
    if body is not None:
        body = {k: v for k, v in body.items() if v is not None}
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base.rstrip("/") + path, data=data, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if data:
        req.add_header("Content-Type", "application/json")
    try:
        context = ssl.create_default_context(cafile=cacert) if cacert else None
        with urllib.request.urlopen(req, timeout=30, context=context) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    except urllib.error.URLError as e:
        print(f"anode admin: cannot reach {base}: {e.reason}", file=sys.stderr)
        return 0, None  # no HTTP status at all
    text = raw.decode("utf-8", "replace")
    try:
        return status, json.loads(text) if text else None
    except json.JSONDecodeError:
        return status, text


if __name__ == "__main__":
    sys.exit(main())
