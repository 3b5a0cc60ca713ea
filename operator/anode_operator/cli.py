"""``anode-operator``: run the operator against the current kubeconfig (or in-cluster).

A developer runs it on a laptop to watch it reconcile (``--standalone``); the Deployment runs
the same command with two replicas, of which one holds the ``coordination.k8s.io`` Lease and
reconciles while the other waits to take over (``leader``).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import secrets
import socket
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import kopf

from anode_operator.settings import SETTINGS

if TYPE_CHECKING:
    from anode_operator.leader import Owner

log = logging.getLogger("anode_operator")
SA_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def default_lease_namespace() -> str:
    """The operator's own namespace: the Deployment's ``POD_NAMESPACE``, else the in-cluster
    service account's, else ``anode-system``."""
    if os.environ.get("POD_NAMESPACE"):
        return os.environ["POD_NAMESPACE"]
    with contextlib.suppress(OSError):
        return SA_NAMESPACE_FILE.read_text().strip() or "anode-system"
    return "anode-system"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="anode-operator", description=__doc__.splitlines()[0])
    p.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        help="watch only this namespace (repeatable; glob patterns allowed); default: all",
    )
    p.add_argument("--lease", default="anode-operator", help="leader election Lease name")
    p.add_argument(
        "--lease-namespace",
        default=None,
        help="namespace of the Lease (default: $POD_NAMESPACE, in-cluster namespace, anode-system)",
    )
    p.add_argument("--standalone", action="store_true", help="no leader election (one instance)")
    p.add_argument(
        "--liveness",
        default=None,
        metavar="URL",
        help="serve a liveness probe, e.g. http://0.0.0.0:8080/healthz",
    )
    p.add_argument(
        "--log-format", choices=["json", "plain", "full"], default="json", help="default: json"
    )
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("--debug", action="store_true")
    args = p.parse_args(argv)
    args.lease_namespace = args.lease_namespace or default_lease_namespace()
    return args


@contextlib.contextmanager
def standby_liveness(url: str | None) -> Iterator[None]:
    """Answer the liveness probe while waiting for the Lease (kopf serves it once it runs)."""
    if not url:
        yield
        return
    parts = urlsplit(url)
    path = parts.path or "/"

    class Probe(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path.split("?")[0] == path else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"standby": true}')

        def log_message(self, *_: object) -> None:
            pass

    ThreadingHTTPServer.allow_reuse_address = True
    server = ThreadingHTTPServer((parts.hostname or "0.0.0.0", parts.port or 80), Probe)
    thread = threading.Thread(target=server.serve_forever, name="standby-liveness", daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def lease_owner(lease_namespace: str) -> Owner | None:
    """This pod (``POD_NAME``/``POD_UID`` from the downward API) when the Lease lives in its
    namespace: the Lease is then collected with its last holder (``leader``)."""
    from anode_operator.leader import Owner

    name, uid = os.environ.get("POD_NAME"), os.environ.get("POD_UID")
    if not name or not uid or os.environ.get("POD_NAMESPACE") != lease_namespace:
        return None
    return Owner(name=name, uid=uid)


def _exit_now() -> None:
    """Lease lost: stop reconciling at once, before a standby may take over (the Deployment
    restarts this container, which then waits as the standby)."""
    logging.shutdown()
    os._exit(1)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    kopf.configure(
        verbose=args.verbose,
        debug=args.debug,
        log_format={
            "json": kopf.LogFormat.JSON,
            "plain": kopf.LogFormat.PLAIN,
            "full": kopf.LogFormat.FULL,
        }[args.log_format],
    )
    log.setLevel(logging.DEBUG if args.debug else logging.INFO)
    from anode_operator import handlers  # noqa: F401 - registers the handlers with kopf

    run = dict(
        clusterwide=not args.namespace,
        namespaces=args.namespace,
        standalone=True,  # never kopf peering: it pauses equal-priority replicas (see leader)
        liveness_endpoint=args.liveness,
    )
    if args.standalone:
        kopf.run(**run)
        return 0

    import kubernetes

    from anode_operator.kube import load_config
    from anode_operator.leader import LeaseElector, Timing

    load_config()
    identity = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
    elector = LeaseElector(
        kubernetes.client.ApiClient(),
        namespace=args.lease_namespace,
        name=args.lease,
        identity=identity,
        timing=Timing(
            duration=SETTINGS.lease_duration,
            renew_deadline=SETTINGS.lease_renew_deadline,
            retry=SETTINGS.lease_retry,
        ),
        owner=lease_owner(args.lease_namespace),
    )
    log.info("leader election: lease %s/%s as %s", args.lease_namespace, args.lease, identity)
    with standby_liveness(args.liveness):
        elector.wait_for_leadership(threading.Event())  # SIGTERM here just ends the process
    log.info("leading: lease %s/%s held by %s", args.lease_namespace, args.lease, identity)
    renewing = threading.Event()
    elector.keep_renewing(_exit_now, renewing)
    try:
        kopf.run(**run)
    finally:
        renewing.set()
        elector.release()
    return 0


if __name__ == "__main__":
    sys.exit(main())
