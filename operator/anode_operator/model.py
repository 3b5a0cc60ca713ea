"""Typed, defaulted views of the custom resources.

The API server applies the CRD's defaults, but the operator must not depend on that (objects
created before a default existed, unit tests, `kubectl apply --validate=false`). ``parse_cluster``
and ``parse_bucket`` apply the same defaults as ``crds/`` (a test keeps them in sync) and return
frozen dataclasses, so the pure modules never poke at nested dicts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from anode_operator.constants import API_VERSION, BUCKET_KIND, CLUSTER_KIND

DEFAULT_IMAGE = "ghcr.io/anode-dev/anode:0.1.0"

_DURATION = re.compile(r"^(\d+)(s|m|h)$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600}


def parse_duration(text: str) -> int:
    """``30s``/``10m``/``1h`` -> seconds (the same grammar as the node's config)."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"invalid duration {text!r} (expected e.g. 30s, 10m, 1h)")
    return int(match.group(1)) * _DURATION_UNITS[match.group(2)]


@dataclass(frozen=True)
class OwnerRef:
    """What a child needs to point back at its custom resource."""

    api_version: str
    kind: str
    name: str
    uid: str

    def as_manifest(self) -> dict[str, Any]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


@dataclass(frozen=True)
class ErasureCoding:
    data_shards: int
    parity_shards: int


@dataclass(frozen=True)
class ClusterSpec:
    """``AnodeCluster.spec`` with every default applied."""

    replicas: int = 3
    image: str = DEFAULT_IMAGE
    image_pull_policy: str = "IfNotPresent"
    resources: dict[str, Any] = field(default_factory=dict)
    storage_size: str = "10Gi"
    storage_class_name: str | None = None
    replication_factor: int = 3
    chunk_size: str = "4MiB"
    erasure_coding: ErasureCoding | None = None
    region: str = "us-east-1"
    credentials_secret: str | None = None
    tls_secret: str | None = None
    service_type: str = "ClusterIP"
    service_annotations: dict[str, str] = field(default_factory=dict)
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)
    affinity: dict[str, Any] | None = None
    pod_annotations: dict[str, str] = field(default_factory=dict)
    service_monitor: bool = False
    service_monitor_interval: str = "30s"
    parquet_cache_enabled: bool = True
    parquet_cache_size: str = "256MiB"
    upgrade_pod_ready_timeout: str = "10m"
    audit_enabled: bool = False  # the node's audit log on its container's stdout (pod logs)
    audit_webhook: str = ""  # and POSTed there too
    console_enabled: bool = True  # the web console on the admin port (/console/)
    console_writes: bool = False  # uploads and deletes from the console


@dataclass(frozen=True)
class Cluster:
    """An ``AnodeCluster`` as the pure core sees it."""

    name: str
    namespace: str
    uid: str
    generation: int
    spec: ClusterSpec

    @property
    def owner(self) -> OwnerRef:
        return OwnerRef(api_version=API_VERSION, kind=CLUSTER_KIND, name=self.name, uid=self.uid)


def _get(mapping: dict[str, Any] | None, *path: str, default: Any = None) -> Any:
    node: Any = mapping or {}
    for key in path:
        if not isinstance(node, dict) or node.get(key) is None:
            return default
        node = node[key]
    return node


def parse_cluster_spec(spec: dict[str, Any] | None) -> ClusterSpec:
    s = spec or {}
    ec = _get(s, "erasureCoding")
    base = ClusterSpec()
    return ClusterSpec(
        replicas=int(_get(s, "replicas", default=base.replicas)),
        image=_get(s, "image", default=base.image),
        image_pull_policy=_get(s, "imagePullPolicy", default=base.image_pull_policy),
        resources=dict(_get(s, "resources", default={})),
        storage_size=str(_get(s, "storage", "size", default=base.storage_size)),
        storage_class_name=_get(s, "storage", "storageClassName"),
        replication_factor=int(_get(s, "replicationFactor", default=base.replication_factor)),
        chunk_size=str(_get(s, "chunkSize", default=base.chunk_size)),
        erasure_coding=(
            ErasureCoding(data_shards=int(ec["dataShards"]), parity_shards=int(ec["parityShards"]))
            if ec
            else None
        ),
        region=_get(s, "region", default=base.region),
        credentials_secret=_get(s, "credentialsSecretRef", "name"),
        tls_secret=_get(s, "tls", "secretName"),
        service_type=_get(s, "service", "type", default=base.service_type),
        service_annotations=dict(_get(s, "service", "annotations", default={})),
        node_selector=dict(_get(s, "nodeSelector", default={})),
        tolerations=list(_get(s, "tolerations", default=[])),
        affinity=_get(s, "affinity"),
        pod_annotations=dict(_get(s, "podAnnotations", default={})),
        service_monitor=bool(_get(s, "metrics", "serviceMonitor", "enabled", default=False)),
        service_monitor_interval=_get(
            s, "metrics", "serviceMonitor", "interval", default=base.service_monitor_interval
        ),
        parquet_cache_enabled=bool(_get(s, "parquet", "cacheEnabled", default=True)),
        parquet_cache_size=_get(s, "parquet", "cacheSize", default=base.parquet_cache_size),
        upgrade_pod_ready_timeout=_get(
            s, "upgradePolicy", "podReadyTimeout", default=base.upgrade_pod_ready_timeout
        ),
        audit_enabled=bool(_get(s, "audit", "enabled", default=False)),
        audit_webhook=str(_get(s, "audit", "webhook", default="")),
        console_enabled=bool(_get(s, "console", "enabled", default=True)),
        console_writes=bool(_get(s, "console", "writes", default=False)),
    )


def parse_cluster(obj: dict[str, Any]) -> Cluster:
    meta = obj.get("metadata") or {}
    return Cluster(
        name=meta["name"],
        namespace=meta.get("namespace") or "default",
        uid=meta.get("uid", ""),
        generation=int(meta.get("generation") or 0),
        spec=parse_cluster_spec(obj.get("spec")),
    )


@dataclass(frozen=True)
class LifecycleRule:
    id: str
    prefix: str = ""
    expiration_days: int | None = None
    noncurrent_version_expiration_days: int | None = None
    abort_incomplete_multipart_upload_days: int | None = None


@dataclass(frozen=True)
class BucketSpec:
    cluster: str
    bucket_name: str
    secret_name: str
    versioning: str = "Disabled"
    quota_max_size: str | None = None
    quota_max_objects: int | None = None
    storage_class: str = "STANDARD"
    anonymous_read: bool = False
    deletion_policy: str = "Retain"
    # None: no ``spec.lifecycle``, so the bucket's lifecycle configuration is left alone
    lifecycle: tuple[LifecycleRule, ...] | None = None


@dataclass(frozen=True)
class BucketResource:
    name: str
    namespace: str
    uid: str
    generation: int
    spec: BucketSpec

    @property
    def owner(self) -> OwnerRef:
        return OwnerRef(api_version=API_VERSION, kind=BUCKET_KIND, name=self.name, uid=self.uid)


def parse_bucket(obj: dict[str, Any]) -> BucketResource:
    meta = obj.get("metadata") or {}
    s = obj.get("spec") or {}
    name = meta["name"]
    rules = None if _get(s, "lifecycle") is None else tuple(
        LifecycleRule(
            id=r["id"],
            prefix=r.get("prefix", ""),
            expiration_days=r.get("expirationDays"),
            noncurrent_version_expiration_days=r.get("noncurrentVersionExpirationDays"),
            abort_incomplete_multipart_upload_days=r.get("abortIncompleteMultipartUploadDays"),
        )
        for r in _get(s, "lifecycle", "rules", default=[])
    )
    return BucketResource(
        name=name,
        namespace=meta.get("namespace") or "default",
        uid=meta.get("uid", ""),
        generation=int(meta.get("generation") or 0),
        spec=BucketSpec(
            cluster=_get(s, "clusterRef", "name", default=""),
            bucket_name=_get(s, "bucketName", default=name),
            secret_name=_get(s, "secretName", default=f"{name}-bucket"),
            versioning=_get(s, "versioning", default="Disabled"),
            quota_max_size=_get(s, "quota", "maxSize"),
            quota_max_objects=_get(s, "quota", "maxObjects"),
            storage_class=_get(s, "storageClass", default="STANDARD"),
            anonymous_read=bool(_get(s, "anonymousRead", default=False)),
            deletion_policy=_get(s, "deletionPolicy", default="Retain"),
            lifecycle=rules,
        ),
    )
