"""The Python defaults must be the CRD's defaults: the operator may see objects the API server
did not default (created before a default existed, or in unit tests)."""

from __future__ import annotations

import pytest
from op_helpers import apply_defaults, cluster_obj, crd_schema

from anode_operator.model import (
    ClusterSpec,
    parse_bucket,
    parse_cluster,
    parse_cluster_spec,
    parse_duration,
)


def test_empty_spec_defaulted_by_crd_equals_python_defaults():
    schema = crd_schema("anodeclusters")
    defaulted = apply_defaults(schema, {"spec": {}})["spec"]
    # nested objects without a `default: {}` only default when present; add them as a user would
    for key in ("metrics", "parquet", "upgradePolicy"):
        defaulted[key] = apply_defaults(schema["properties"]["spec"]["properties"][key], {})
    defaulted["metrics"]["serviceMonitor"] = apply_defaults(
        schema["properties"]["spec"]["properties"]["metrics"]["properties"]["serviceMonitor"], {}
    )
    assert parse_cluster_spec(defaulted) == ClusterSpec()
    assert parse_cluster_spec({}) == ClusterSpec()


def test_bucket_defaults_match_crd():
    schema = crd_schema("buckets")
    spec = apply_defaults(schema["properties"]["spec"], {"clusterRef": {"name": "demo"}})
    from_crd = parse_bucket({"metadata": {"name": "logs", "namespace": "a"}, "spec": spec})
    bare = parse_bucket(
        {"metadata": {"name": "logs", "namespace": "a"}, "spec": {"clusterRef": {"name": "demo"}}}
    )
    assert from_crd == bare
    assert bare.spec.bucket_name == "logs"
    assert bare.spec.secret_name == "logs-bucket"
    assert bare.spec.deletion_policy == "Retain"


def test_parse_cluster_reads_every_field():
    obj = cluster_obj(
        replicas=5,
        image="registry.local/anode:1.2.3",
        storage={"size": "1Ti", "storageClassName": "fast"},
        replicationFactor=2,
        chunkSize="8MiB",
        erasureCoding={"dataShards": 3, "parityShards": 2},
        credentialsSecretRef={"name": "root"},
        tls={"secretName": "tls"},
        service={"type": "LoadBalancer", "annotations": {"a": "b"}},
        nodeSelector={"disk": "ssd"},
        tolerations=[{"key": "k", "operator": "Exists"}],
        podAnnotations={"x": "y"},
        metrics={"serviceMonitor": {"enabled": True, "interval": "1m"}},
        parquet={"cacheEnabled": False, "cacheSize": "1GiB"},
        upgradePolicy={"podReadyTimeout": "30s"},
    )
    spec = parse_cluster(obj).spec
    assert (spec.replicas, spec.image, spec.storage_size, spec.storage_class_name) == (
        5,
        "registry.local/anode:1.2.3",
        "1Ti",
        "fast",
    )
    assert spec.erasure_coding is not None and spec.erasure_coding.parity_shards == 2
    assert spec.credentials_secret == "root" and spec.tls_secret == "tls"
    assert spec.service_type == "LoadBalancer" and spec.service_annotations == {"a": "b"}
    assert spec.service_monitor and spec.service_monitor_interval == "1m"
    assert not spec.parquet_cache_enabled and spec.parquet_cache_size == "1GiB"
    assert spec.upgrade_pod_ready_timeout == "30s"


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("10m", 600), ("2h", 7200)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "10", "1d", "m", "-1s"])
def test_parse_duration_rejects_garbage(text):
    with pytest.raises(ValueError):
        parse_duration(text)
