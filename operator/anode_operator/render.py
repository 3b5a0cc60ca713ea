"""``render(cluster) -> manifests``: everything an ``AnodeCluster`` owns, as plain dicts.

Pure: no API calls, no clock, no randomness. What the renderer cannot know is passed in:
``replicas`` (the StatefulSet size the scaling state machine allows right now, which lags
``spec.replicas`` while members are added or drained one at a time), the credentials when the
operator generated them (``None`` when the user brought a Secret), and ``capabilities`` of the API
server (which PodDisruptionBudget version it serves, whether ServiceMonitor exists).

Every object carries the standard ``app.kubernetes.io/*`` labels and a controller ownerReference
to the cluster, so deleting the cluster garbage-collects all of it (PVCs excepted: the StatefulSet
controller does not own them, which is what keeps data safe from an accidental delete).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from anode_operator import constants as c
from anode_operator import naming
from anode_operator.model import Cluster
from anode_operator.nodeconfig import node_config, to_toml

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Capabilities:
    """What the target API server serves (discovered once by the shell, fixed in tests)."""

    pdb_api_version: str = "policy/v1"
    service_monitor: bool = False


@dataclass(frozen=True)
class Credentials:
    root_access_key: str
    root_secret_key: str
    cluster_secret: str


def quorum(voters: int) -> int:
    """Smallest majority of ``voters`` Raft members."""
    return voters // 2 + 1


def _meta(cluster: Cluster, name: str, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": cluster.namespace,
        "labels": naming.labels(cluster.name, version=naming.image_version(cluster.spec.image)),
        "ownerReferences": [cluster.owner.as_manifest()],
    }
    meta.update(extra)
    return meta


def config_hash(cluster: Cluster) -> str:
    """Hash of the settings that need a pod restart to take effect.

    The peer list and the initial state are left out: they change with scaling and once the
    cluster has formed, which must not roll the pods (membership changes go through the admin
    API instead)."""
    cfg = node_config(cluster, voters=[])
    material = {
        "config": cfg,
        "tls": cluster.spec.tls_secret,
        "credentials": cluster.spec.credentials_secret,
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]


def render_config_map(cluster: Cluster, *, voters: list[int], existing: bool = False) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(cluster, naming.config_map(cluster.name)),
        "data": {
            c.CONFIG_FILE: to_toml(node_config(cluster, voters=voters, existing=existing)),
            c.VOTERS_FILE: "".join(f"{naming.pod(cluster.name, i)}\n" for i in voters),
        },
    }


def parse_voters(cluster: Cluster, config_map: dict[str, Any] | None) -> list[int] | None:
    """The voter ordinals a previously rendered ConfigMap holds (None if there is none)."""
    text = ((config_map or {}).get("data") or {}).get(c.VOTERS_FILE)
    if text is None:
        return None
    ordinals = [naming.ordinal_of(cluster.name, line.strip()) for line in text.splitlines()]
    return sorted(i for i in ordinals if i is not None)


def formed(config_map: dict[str, Any] | None) -> bool:
    """Whether a previously rendered ConfigMap already says the cluster has formed."""
    text = ((config_map or {}).get("data") or {}).get(c.CONFIG_FILE) or ""
    return 'initial_state = "existing"' in text


def render_credentials_secret(cluster: Cluster, *, credentials: Credentials) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(cluster, naming.credentials_secret(cluster.name)),
        "type": "Opaque",
        "stringData": {
            c.ROOT_ACCESS_KEY: credentials.root_access_key,
            c.ROOT_SECRET_KEY: credentials.root_secret_key,
            c.CLUSTER_SECRET_KEY: credentials.cluster_secret,
        },
    }


def credentials_secret_name(cluster: Cluster) -> str:
    return cluster.spec.credentials_secret or naming.credentials_secret(cluster.name)


def _ports(*, include_internode: bool) -> list[dict[str, Any]]:
    ports = [
        {"name": "s3", "port": c.S3_PORT, "targetPort": "s3", "protocol": "TCP"},
        {"name": "admin", "port": c.ADMIN_PORT, "targetPort": "admin", "protocol": "TCP"},
    ]
    if include_internode:
        ports.append(
            {
                "name": "internode",
                "port": c.INTERNODE_PORT,
                "targetPort": "internode",
                "protocol": "TCP",
            }
        )
        ports.append({"name": "data", "port": c.DATA_PORT, "targetPort": "data", "protocol": "TCP"})
    return ports


def render_peer_service(cluster: Cluster) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(cluster, naming.peer_service(cluster.name)),
        "spec": {
            "clusterIP": "None",
            # peers must find each other before they are Ready (Raft elects a leader first)
            "publishNotReadyAddresses": True,
            "selector": naming.selector_labels(cluster.name),
            "ports": _ports(include_internode=True),
        },
    }


def render_client_service(cluster: Cluster) -> Manifest:
    spec = cluster.spec
    meta = _meta(cluster, naming.client_service(cluster.name))
    if spec.service_annotations:
        meta["annotations"] = dict(spec.service_annotations)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "type": spec.service_type,
            "selector": naming.selector_labels(cluster.name),
            "ports": _ports(include_internode=False),
        },
    }


def _default_affinity(cluster: Cluster) -> dict[str, Any]:
    """Spread nodes over hosts, preferred (not required) so small dev clusters still schedule."""
    return {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "podAffinityTerm": {
                        "topologyKey": "kubernetes.io/hostname",
                        "labelSelector": {"matchLabels": naming.selector_labels(cluster.name)},
                    },
                }
            ]
        }
    }


def _probe(path: str, *, scheme: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "admin", "scheme": scheme},
        "periodSeconds": period,
        "timeoutSeconds": 3,
        "failureThreshold": failures,
    }


def _env(cluster: Cluster) -> list[dict[str, Any]]:
    secret = credentials_secret_name(cluster)
    peers = naming.peer_service(cluster.name)

    def from_secret(var: str, key: str) -> dict[str, Any]:
        return {"name": var, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}

    return [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "ANODE_NODE_ID", "value": "$(POD_NAME)"},
        {
            "name": "ANODE_NODE_ADVERTISE_HOST",
            "value": f"$(POD_NAME).{peers}.{cluster.namespace}.svc",
        },
        from_secret("ANODE_ROOT_ACCESS_KEY", c.ROOT_ACCESS_KEY),
        from_secret("ANODE_ROOT_SECRET_KEY", c.ROOT_SECRET_KEY),
        from_secret("ANODE_CLUSTER_SECRET", c.CLUSTER_SECRET_KEY),
        # the TLS Secret is mounted at TLS_DIR (render_statefulset): S3 and admin serve HTTPS
        *(
            [
                {"name": "ANODE_NODE_TLS_CERT_FILE", "value": f"{c.TLS_DIR}/tls.crt"},
                {"name": "ANODE_NODE_TLS_KEY_FILE", "value": f"{c.TLS_DIR}/tls.key"},
            ]
            if cluster.spec.tls_secret
            else []
        ),
    ]


def render_statefulset(cluster: Cluster, *, replicas: int) -> Manifest:
    spec = cluster.spec
    scheme = "HTTPS" if spec.tls_secret else "HTTP"
    volume_mounts = [
        {"name": "data", "mountPath": c.DATA_DIR},
        {"name": "config", "mountPath": c.CONFIG_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    volumes: list[dict[str, Any]] = [
        {"name": "config", "configMap": {"name": naming.config_map(cluster.name)}},
        {"name": "tmp", "emptyDir": {}},
    ]
    if spec.tls_secret:
        volume_mounts.append({"name": "tls", "mountPath": c.TLS_DIR, "readOnly": True})
        volumes.append({"name": "tls", "secret": {"secretName": spec.tls_secret}})

    container: dict[str, Any] = {
        "name": "anode",
        "image": spec.image,
        "imagePullPolicy": spec.image_pull_policy,
        # No shell: `[cluster] learner = "auto"` makes a pod outside the rendered voters a
        # learner that the operator promotes once it caught up (docs/admin-api.md).
        "command": ["anode", "server", "--config", f"{c.CONFIG_DIR}/{c.CONFIG_FILE}"],
        "ports": [
            {"name": "s3", "containerPort": c.S3_PORT, "protocol": "TCP"},
            {"name": "admin", "containerPort": c.ADMIN_PORT, "protocol": "TCP"},
            {"name": "internode", "containerPort": c.INTERNODE_PORT, "protocol": "TCP"},
            {"name": "data", "containerPort": c.DATA_PORT, "protocol": "TCP"},
        ],
        "env": _env(cluster),
        "volumeMounts": volume_mounts,
        "startupProbe": _probe("/health", scheme=scheme, period=2, failures=60),
        "livenessProbe": _probe("/health", scheme=scheme, period=10, failures=3),
        "readinessProbe": _probe("/ready", scheme=scheme, period=5, failures=2),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    if spec.resources:
        container["resources"] = spec.resources

    pod_annotations = {**spec.pod_annotations, c.ANNOTATION_CONFIG_HASH: config_hash(cluster)}
    pod_spec: dict[str, Any] = {
        "containers": [container],
        "volumes": volumes,
        "affinity": spec.affinity or _default_affinity(cluster),
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": 60,
        "securityContext": {
            "runAsUser": c.NODE_UID,
            "runAsGroup": c.NODE_UID,
            "fsGroup": c.NODE_UID,
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    if spec.node_selector:
        pod_spec["nodeSelector"] = dict(spec.node_selector)
    if spec.tolerations:
        pod_spec["tolerations"] = list(spec.tolerations)

    pvc_spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": spec.storage_size}},
    }
    if spec.storage_class_name:
        pvc_spec["storageClassName"] = spec.storage_class_name

    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": _meta(cluster, naming.statefulset(cluster.name)),
        "spec": {
            "replicas": replicas,
            "serviceName": naming.peer_service(cluster.name),
            "selector": {"matchLabels": naming.selector_labels(cluster.name)},
            # All initial peers must start together to elect a leader; later changes are
            # sequenced by the operator itself, one member at a time.
            "podManagementPolicy": "Parallel",
            # The operator rolls pods itself: followers first, the leader last after a
            # leadership transfer, waiting for health in between.
            "updateStrategy": {"type": "OnDelete"},
            "template": {
                "metadata": {
                    "labels": naming.labels(cluster.name, version=naming.image_version(spec.image)),
                    "annotations": pod_annotations,
                },
                "spec": pod_spec,
            },
            "volumeClaimTemplates": [
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": {
                        "name": "data",
                        "labels": naming.selector_labels(cluster.name),
                    },
                    "spec": pvc_spec,
                }
            ],
        },
    }


def render_pdb(
    cluster: Cluster, *, replicas: int, api_version: str, voters: int | None = None
) -> Manifest:
    """Voluntary evictions may never take away a Raft majority of the current voters.

    Learners count as pods too, so the budget is "all pods but a minority of the voters"."""
    voter_count = replicas if voters is None else voters
    tolerable = voter_count - quorum(voter_count)
    return {
        "apiVersion": api_version,
        "kind": "PodDisruptionBudget",
        "metadata": _meta(cluster, naming.pdb(cluster.name)),
        "spec": {
            "minAvailable": max(replicas - tolerable, 0),
            "selector": {"matchLabels": naming.selector_labels(cluster.name)},
        },
    }


def render_service_monitor(cluster: Cluster) -> Manifest:
    endpoint: dict[str, Any] = {
        "port": "admin",
        "path": "/metrics",
        "interval": cluster.spec.service_monitor_interval,
        "scheme": "https" if cluster.spec.tls_secret else "http",
    }
    if cluster.spec.tls_secret:
        # Prometheus scrapes pods by address: verify the cluster's certificate against the
        # name it is issued for (the client Service), not the address.
        endpoint["tlsConfig"] = {
            "ca": {"secret": {"name": cluster.spec.tls_secret, "key": "tls.crt"}},
            "serverName": f"{naming.client_service(cluster.name)}.{cluster.namespace}.svc",
        }
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": _meta(cluster, naming.client_service(cluster.name)),
        "spec": {
            "selector": {"matchLabels": naming.selector_labels(cluster.name)},
            "endpoints": [endpoint],
        },
    }


def render(
    cluster: Cluster,
    *,
    replicas: int | None = None,
    voters: list[int] | None = None,
    credentials: Credentials | None = None,
    capabilities: Capabilities = Capabilities(),  # frozen, so a safe default
    existing: bool = False,
) -> list[Manifest]:
    """All children of ``cluster``, in an order that is safe to apply front to back.

    ``voters``: ordinals of the Raft voters (default: all ``replicas``, as at bootstrap); pods
    outside the list start as learners. ``existing``: the cluster has formed (a leader was
    seen); a pod that then starts on an empty volume rejoins as a learner."""
    size = cluster.spec.replicas if replicas is None else replicas
    voter_list = list(range(size)) if voters is None else sorted(voters)
    out: list[Manifest] = []
    if credentials is not None and cluster.spec.credentials_secret is None:
        out.append(render_credentials_secret(cluster, credentials=credentials))
    out.append(render_config_map(cluster, voters=voter_list, existing=existing))
    out.append(render_peer_service(cluster))
    out.append(render_client_service(cluster))
    out.append(render_statefulset(cluster, replicas=size))
    out.append(
        render_pdb(
            cluster,
            replicas=size,
            voters=len([i for i in voter_list if i < size]),
            api_version=capabilities.pdb_api_version,
        )
    )
    if cluster.spec.service_monitor and capabilities.service_monitor:
        out.append(render_service_monitor(cluster))
    return out


def endpoint(cluster: Cluster) -> str:
    """The S3 URL applications use inside the Kubernetes cluster."""
    scheme = "https" if cluster.spec.tls_secret else "http"
    svc = naming.client_service(cluster.name)
    return f"{scheme}://{svc}.{cluster.namespace}.svc:{c.S3_PORT}"
