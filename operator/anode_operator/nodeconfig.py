"""The node's ``anode.toml`` for a cluster, as documented in ``docs/config.md``.

Only settings that are the same for every pod go in the file (it lives in one ConfigMap); per-pod
values (node id = host name, advertise host) come from the environment the StatefulSet sets.
Secrets never go here: they are ``ANODE_ROOT_*``/``ANODE_CLUSTER_SECRET`` env vars from the
credentials Secret. The TOML is written by hand (no writer in the standard library) from a small
set of value types, and a test parses it back with ``tomllib``.
"""

from __future__ import annotations

import json
from typing import Any

from anode_operator import constants as c
from anode_operator import naming
from anode_operator.model import Cluster


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"unsupported TOML value {value!r}")


def to_toml(sections: dict[str, dict[str, Any]]) -> str:
    lines: list[str] = ["# Rendered by anode-operator; edit the AnodeCluster, not this file."]
    for section, values in sections.items():
        lines.append("")
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in values.items())
    return "\n".join(lines) + "\n"


def node_config(
    cluster: Cluster, *, voters: list[int], existing: bool = False
) -> dict[str, dict[str, Any]]:
    """The config as sections of plain values; ``voters`` are the ordinals of the Raft voters
    (the initial peers every node connects to); ``existing``: the cluster has formed, so a pod
    on an empty volume must rejoin as a learner instead of voting (the node's cluster/rejoin.py).
    """
    spec = cluster.spec
    svc = naming.client_service(cluster.name)
    peers = [
        f"{naming.pod(cluster.name, i)}="
        f"{naming.peer_host(cluster.name, cluster.namespace, i)}:{c.INTERNODE_PORT}"
        for i in voters
    ]
    ec = spec.erasure_coding
    config: dict[str, dict[str, Any]] = {
        "node": {
            "s3_addr": f"0.0.0.0:{c.S3_PORT}",
            "admin_addr": f"0.0.0.0:{c.ADMIN_PORT}",
            "cluster_addr": f"0.0.0.0:{c.INTERNODE_PORT}",
            "data_addr": f"0.0.0.0:{c.DATA_PORT}",
            "domains": [f"{svc}.{cluster.namespace}.svc", f"{svc}.{cluster.namespace}"],
            "region": spec.region,
        },
        "cluster": {
            "name": cluster.name,
            "replication_factor": spec.replication_factor,
            "peers": peers,
            # a pod not among `peers` (the voters) starts as a learner, to be promoted
            "learner": "auto",
            # Reed-Solomon instead of replication for chunks of at least erasure_min_size
            **({"erasure_coding": f"{ec.data_shards}+{ec.parity_shards}"} if ec else {}),
        },
        "storage": {
            "data_dir": c.DATA_DIR,
            "chunk_size": spec.chunk_size,
        },
        "parquet": {
            "enable_cache": spec.parquet_cache_enabled,
            "cache_size": spec.parquet_cache_size,
        },
    }
    if existing:  # never "new" (the default): nodes older than the key refuse it
        config["cluster"]["initial_state"] = "existing"
    if spec.audit_enabled:  # sidecar-free: records on stdout are the pod's logs; no file on the PVC
        config["audit"] = {"enabled": True, "stdout": True, "file": ""}
        if spec.audit_webhook:
            config["audit"]["webhook_url"] = spec.audit_webhook
    if not spec.console_enabled or spec.console_writes:  # the node's default: on, read-only
        config["console"] = {"enabled": spec.console_enabled, "writes": spec.console_writes}
    return config


def render_toml(cluster: Cluster, *, voters: list[int], existing: bool = False) -> str:
    return to_toml(node_config(cluster, voters=voters, existing=existing))
