"""``anode-operator``: run the operator against the current kubeconfig (or in-cluster).

A developer runs it on a laptop to watch it reconcile; the Deployment runs the same command. Two
replicas elect a leader through kopf peering (``ClusterKopfPeering`` when watching all namespaces,
``KopfPeering`` otherwise); ``--standalone`` skips peering for a single local instance.
"""

from __future__ import annotations

import argparse
import logging
import sys

import kopf


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="anode-operator", description=__doc__.splitlines()[0])
    p.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        help="watch only this namespace (repeatable; glob patterns allowed); default: all",
    )
    p.add_argument("--peering", default="anode-operator", help="kopf peering object name")
    p.add_argument("--standalone", action="store_true", help="no leader election (one instance)")
    p.add_argument("--priority", type=int, default=0, help="peering priority of this instance")
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
    return p.parse_args(argv)


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
    logging.getLogger("anode_operator").setLevel(logging.DEBUG if args.debug else logging.INFO)
    from anode_operator import handlers  # registers the handlers with kopf

    handlers.WATCHED_NAMESPACES = list(args.namespace)

    kopf.run(
        clusterwide=not args.namespace,
        namespaces=args.namespace,
        standalone=args.standalone,
        peering_name=None if args.standalone else args.peering,
        priority=args.priority,
        liveness_endpoint=args.liveness,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
