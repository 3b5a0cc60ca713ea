"""``render()``: a golden file for the reference spec, and properties over many specs (every
object is schema-valid Kubernetes, owned, labelled, and the PDB never lets a majority go)."""

from __future__ import annotations

import itertools
import os
import tomllib
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from op_helpers import make_cluster

from anode_operator import constants as c
from anode_operator import naming
from anode_operator.render import (
    Capabilities,
    Credentials,
    config_hash,
    endpoint,
    parse_voters,
    quorum,
    render,
)

GOLDEN = Path(__file__).parent / "golden" / "render-demo.yaml"
CREDS = Credentials(root_access_key="AKTEST", root_secret_key="s3cr3t", cluster_secret="cs")
K8S_SCHEMA_VERSION = "1.25"  # oldest schemas kubernetes-validate ships; v1.20 API is a subset


def by_kind(manifests):
    return {m["kind"]: m for m in manifests}


def test_render_matches_golden_file():
    """Regenerate with ANODE_UPDATE_GOLDEN=1 after an intended change, and review the diff."""
    cluster = make_cluster(replicas=3, image="ghcr.io/anode-dev/anode:0.1.0")
    text = yaml.safe_dump_all(render(cluster, credentials=CREDS), sort_keys=True)
    if os.environ.get("ANODE_UPDATE_GOLDEN"):
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text()


SPECS = [
    {},
    {"replicas": 1, "replicationFactor": 1},
    {"replicas": 5, "storage": {"size": "1Ti", "storageClassName": "ssd"}},
    {"replicas": 7, "tls": {"secretName": "tls"}, "service": {"type": "LoadBalancer"}},
    {"credentialsSecretRef": {"name": "mine"}, "nodeSelector": {"disk": "ssd"}},
    {
        "tolerations": [{"key": "storage", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {}},
        "podAnnotations": {"team": "data"},
        "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
    },
    {"metrics": {"serviceMonitor": {"enabled": True}}, "image": "reg.local:5000/anode@sha256:ab"},
    {"service": {"type": "NodePort", "annotations": {"x": "y"}}, "replicas": 15},
]
CAPS = [
    Capabilities(pdb_api_version="policy/v1", service_monitor=True),
    Capabilities(pdb_api_version="policy/v1beta1", service_monitor=False),
]


@pytest.mark.parametrize(("spec", "caps"), list(itertools.product(SPECS, CAPS)))
def test_rendered_objects_are_owned_labelled_and_namespaced(spec, caps):
    cluster = make_cluster(**spec)
    manifests = render(cluster, credentials=CREDS, capabilities=caps)
    names = [(m["kind"], m["metadata"]["name"]) for m in manifests]
    assert len(names) == len(set(names))
    for m in manifests:
        meta = m["metadata"]
        assert meta["namespace"] == "store"
        assert meta["ownerReferences"] == [
            {
                "apiVersion": "anode.dev/v1alpha1",
                "kind": "AnodeCluster",
                "name": "demo",
                "uid": "uid-demo",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
        for key in (c.LABEL_NAME, c.LABEL_INSTANCE, c.LABEL_MANAGED_BY, c.LABEL_PART_OF):
            assert key in meta["labels"]
        assert len(meta["labels"][c.LABEL_VERSION]) <= 63


@pytest.mark.parametrize("spec", SPECS)
def test_rendered_objects_validate_strictly_against_kubernetes_schemas(spec):
    cluster = make_cluster(**spec)
    caps = Capabilities(pdb_api_version="policy/v1", service_monitor=False)
    for m in render(cluster, credentials=CREDS, capabilities=caps):
        kubernetes_validate.validate(m, K8S_SCHEMA_VERSION, strict=True)


@pytest.mark.parametrize("voters", range(1, 16, 2))
def test_pdb_never_allows_losing_a_raft_majority(voters):
    cluster = make_cluster(replicas=voters, replicationFactor=1)
    pdb = by_kind(render(cluster))["PodDisruptionBudget"]
    min_available = pdb["spec"]["minAvailable"]
    assert min_available == quorum(voters)
    # the pods the PDB lets go never include a majority
    assert voters - min_available < quorum(voters)
    assert 2 * min_available > voters


def test_pdb_follows_the_replicas_being_rendered_not_the_spec():
    cluster = make_cluster(replicas=5)
    manifests = by_kind(render(cluster, replicas=3))
    assert manifests["StatefulSet"]["spec"]["replicas"] == 3
    assert manifests["PodDisruptionBudget"]["spec"]["minAvailable"] == 2


def test_pdb_api_version_follows_capabilities():
    cluster = make_cluster()
    for version in ("policy/v1", "policy/v1beta1"):
        pdb = by_kind(render(cluster, capabilities=Capabilities(pdb_api_version=version)))
        assert pdb["PodDisruptionBudget"]["apiVersion"] == version


def test_statefulset_shape():
    cluster = make_cluster(replicas=5, storage={"size": "50Gi", "storageClassName": "ssd"})
    sts = by_kind(render(cluster))["StatefulSet"]
    spec = sts["spec"]
    assert spec["podManagementPolicy"] == "Parallel"
    assert spec["updateStrategy"] == {"type": "OnDelete"}
    assert spec["serviceName"] == "demo-peers"
    assert spec["selector"]["matchLabels"] == naming.selector_labels("demo")
    (pvc,) = spec["volumeClaimTemplates"]
    assert pvc["spec"]["resources"]["requests"]["storage"] == "50Gi"
    assert pvc["spec"]["storageClassName"] == "ssd"
    (ctr,) = spec["template"]["spec"]["containers"]
    assert ctr["command"] == ["anode", "server", "--config", "/etc/anode/anode.toml"]
    assert ctr["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert ctr["livenessProbe"]["httpGet"]["path"] == "/health"
    ports = {p["name"]: p["containerPort"] for p in ctr["ports"]}
    assert ports == {"s3": 8080, "admin": 8081, "internode": 9090, "data": 9091}
    env = {e["name"]: e for e in ctr["env"]}
    assert env["ANODE_ROOT_SECRET_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "demo-credentials",
        "key": "AWS_SECRET_ACCESS_KEY",
    }
    assert env["ANODE_NODE_ADVERTISE_HOST"]["value"] == "$(POD_NAME).demo-peers.store.svc"
    assert ctr["securityContext"]["runAsNonRoot"] is True
    assert ctr["securityContext"]["readOnlyRootFilesystem"] is True
    assert "podAntiAffinity" in spec["template"]["spec"]["affinity"]


def test_user_credentials_secret_is_referenced_not_rendered():
    cluster = make_cluster(credentialsSecretRef={"name": "mine"})
    manifests = render(cluster, credentials=CREDS)
    assert "Secret" not in by_kind(manifests)
    (ctr,) = by_kind(manifests)["StatefulSet"]["spec"]["template"]["spec"]["containers"]
    refs = {
        e["valueFrom"]["secretKeyRef"]["name"]
        for e in ctr["env"]
        if "valueFrom" in e and "secretKeyRef" in e["valueFrom"]
    }
    assert refs == {"mine"}


def test_generated_credentials_secret_holds_the_three_keys():
    secret = by_kind(render(make_cluster(), credentials=CREDS))["Secret"]
    assert secret["metadata"]["name"] == "demo-credentials"
    assert secret["stringData"] == {
        "AWS_ACCESS_KEY_ID": "AKTEST",
        "AWS_SECRET_ACCESS_KEY": "s3cr3t",
        "ANODE_CLUSTER_SECRET": "cs",
    }


def test_no_credentials_means_no_secret_rendered():
    assert "Secret" not in by_kind(render(make_cluster(), credentials=None))


def test_tls_switches_probes_endpoint_and_mounts_the_secret():
    cluster = make_cluster(tls={"secretName": "certs"})
    sts = by_kind(render(cluster))["StatefulSet"]
    pod = sts["spec"]["template"]["spec"]
    (ctr,) = pod["containers"]
    assert ctr["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    assert {"name": "tls", "secret": {"secretName": "certs"}} in pod["volumes"]
    assert endpoint(cluster) == "https://demo.store.svc:8080"
    assert endpoint(make_cluster()) == "http://demo.store.svc:8080"
    mount = next(m for m in ctr["volumeMounts"] if m["name"] == "tls")
    env = {e["name"]: e.get("value") for e in ctr["env"]}
    assert env["ANODE_NODE_TLS_CERT_FILE"] == mount["mountPath"] + "/tls.crt"
    assert env["ANODE_NODE_TLS_KEY_FILE"] == mount["mountPath"] + "/tls.key"
    (plain,) = by_kind(render(make_cluster()))["StatefulSet"]["spec"]["template"]["spec"][
        "containers"
    ]
    assert not any(e["name"].startswith("ANODE_NODE_TLS") for e in plain["env"])


def test_service_monitor_only_when_enabled_and_served():
    on = make_cluster(metrics={"serviceMonitor": {"enabled": True}})
    assert "ServiceMonitor" in by_kind(render(on, capabilities=Capabilities(service_monitor=True)))
    assert "ServiceMonitor" not in by_kind(render(on, capabilities=Capabilities()))
    off = make_cluster()
    assert "ServiceMonitor" not in by_kind(
        render(off, capabilities=Capabilities(service_monitor=True))
    )


def test_services_headless_for_peers_and_typed_for_clients():
    cluster = make_cluster(service={"type": "LoadBalancer", "annotations": {"lb": "internal"}})
    services = {m["metadata"]["name"]: m for m in render(cluster) if m["kind"] == "Service"}
    peers, client = services["demo-peers"], services["demo"]
    assert peers["spec"]["clusterIP"] == "None"
    assert peers["spec"]["publishNotReadyAddresses"] is True
    assert {p["port"] for p in peers["spec"]["ports"]} == {8080, 8081, 9090, 9091}
    assert client["spec"]["type"] == "LoadBalancer"
    assert client["metadata"]["annotations"] == {"lb": "internal"}
    assert {p["port"] for p in client["spec"]["ports"]} == {8080, 8081}


@pytest.mark.parametrize("replicas", [1, 3, 5])
def test_node_config_is_valid_toml_with_one_peer_per_replica(replicas):
    cm = by_kind(render(make_cluster(replicas=replicas, replicationFactor=1)))["ConfigMap"]
    config = tomllib.loads(cm["data"]["anode.toml"])
    assert set(config) == {"node", "cluster", "storage", "parquet"}
    assert config["cluster"]["peers"] == [
        f"demo-{i}=demo-{i}.demo-peers.store.svc:9090" for i in range(replicas)
    ]
    assert config["storage"]["data_dir"] == "/var/lib/anode"
    assert config["node"]["s3_addr"] == "0.0.0.0:8080"
    assert "secret" not in config["cluster"]  # secrets come from env, never the ConfigMap


def test_config_hash_ignores_scaling_but_not_settings():
    base = make_cluster(replicas=3)
    assert config_hash(base) == config_hash(make_cluster(replicas=5))
    assert config_hash(base) != config_hash(make_cluster(replicas=3, chunkSize="8MiB"))
    assert config_hash(base) != config_hash(make_cluster(replicas=3, tls={"secretName": "t"}))


def test_render_is_deterministic():
    cluster = make_cluster(replicas=5)
    assert render(cluster, credentials=CREDS) == render(cluster, credentials=CREDS)


@pytest.mark.parametrize(
    ("image", "label"),
    [
        ("ghcr.io/anode-dev/anode:0.2.0", "0.2.0"),
        ("localhost:5000/anode", "latest"),
        ("anode@sha256:abcdef", "sha256-abcdef"),
    ],
)
def test_version_label_from_image(image, label):
    assert naming.image_version(image) == label


def test_pods_outside_the_voter_list_start_as_learners():
    cm = by_kind(render(make_cluster(replicas=5), replicas=5, voters=[0, 1, 2]))["ConfigMap"]
    assert cm["data"]["voters"] == "demo-0\ndemo-1\ndemo-2\n"
    config = tomllib.loads(cm["data"]["anode.toml"])
    assert [p.split("=")[0] for p in config["cluster"]["peers"]] == ["demo-0", "demo-1", "demo-2"]
    assert parse_voters(make_cluster(), cm) == [0, 1, 2]
    assert parse_voters(make_cluster(), None) is None


@pytest.mark.parametrize("voters", [[0], [0, 1, 2], [0, 1, 2, 3, 4]])
def test_the_rendered_config_makes_exactly_the_non_voters_learners(tmp_path, voters):
    """Load the rendered anode.toml with the node's own config loader, as each pod would."""
    from anode.config import load_config

    cm = by_kind(render(make_cluster(replicas=5), replicas=5, voters=voters))["ConfigMap"]
    path = tmp_path / "anode.toml"
    path.write_text(cm["data"]["anode.toml"])
    for i in range(5):
        env = {"ANODE_NODE_ID": f"demo-{i}", "ANODE_CLUSTER_SECRET": "s" * 32}
        assert load_config(path, env=env).is_learner is (i not in voters), i


def test_pdb_counts_learners_as_pods_but_protects_the_voter_majority():
    pdb = by_kind(render(make_cluster(replicas=5), replicas=5, voters=[0, 1, 2]))
    # 3 voters tolerate losing 1; with 2 learners that is 4 of 5 pods that must stay
    assert pdb["PodDisruptionBudget"]["spec"]["minAvailable"] == 4


def test_service_monitor_verifies_the_clusters_certificate_under_tls():
    caps = Capabilities(service_monitor=True)
    metrics = {"serviceMonitor": {"enabled": True}}
    tls = by_kind(render(make_cluster(metrics=metrics, tls={"secretName": "certs"}),
                         capabilities=caps))["ServiceMonitor"]
    (endpoint,) = tls["spec"]["endpoints"]
    assert endpoint["scheme"] == "https"
    assert endpoint["tlsConfig"] == {
        "ca": {"secret": {"name": "certs", "key": "tls.crt"}},
        "serverName": "demo.store.svc",
    }
    plain = by_kind(render(make_cluster(metrics=metrics), capabilities=caps))["ServiceMonitor"]
    assert "tlsConfig" not in plain["spec"]["endpoints"][0]


def test_console_spec_reaches_the_node_config(tmp_path):
    """`spec.console`: the node's own defaults (on, read-only) render nothing; writes or off
    render a [console] section the node's loader accepts."""
    from anode.config import load_config

    env = {"ANODE_NODE_ID": "demo-0", "ANODE_CLUSTER_SECRET": "s" * 32}
    path = tmp_path / "anode.toml"
    for console, expected in [(None, (True, False)), ({"writes": True}, (True, True)),
                              ({"enabled": False}, (False, False))]:
        cm = by_kind(render(make_cluster(**({"console": console} if console else {}))))
        toml = cm["ConfigMap"]["data"]["anode.toml"]
        assert ("console" in tomllib.loads(toml)) == (console is not None)
        path.write_text(toml)
        loaded = load_config(path, env=env).console
        assert (loaded.enabled, loaded.writes) == expected, console


def test_audit_spec_puts_the_audit_log_on_the_pods_stdout(tmp_path):
    """`spec.audit` renders an [audit] section the node's own loader accepts: records on stdout
    (the pod's logs, no sidecar), none on the volume, and the webhook if one is named."""
    from anode.config import load_config

    env = {"ANODE_NODE_ID": "demo-0", "ANODE_CLUSTER_SECRET": "s" * 32}
    path = tmp_path / "anode.toml"
    audit = {"enabled": True, "webhook": "https://collector.logs.svc:8443/audit"}
    cm = by_kind(render(make_cluster(audit=audit)))["ConfigMap"]
    path.write_text(cm["data"]["anode.toml"])
    loaded = load_config(path, env=env).audit
    got = (loaded.enabled, loaded.stdout, loaded.file, loaded.webhook_url)
    assert got == (True, True, "", audit["webhook"])
    plain = by_kind(render(make_cluster()))["ConfigMap"]
    assert "audit" not in tomllib.loads(plain["data"]["anode.toml"])
    path.write_text(plain["data"]["anode.toml"])
    assert load_config(path, env=env).audit.enabled is False


def test_erasure_coding_spec_reaches_the_node_config(tmp_path):
    """`spec.erasureCoding` renders `[cluster] erasure_coding` that the node's own loader accepts
    (and checks against the peers it lists); none without it."""
    from anode.config import ConfigError, load_config

    env = {"ANODE_NODE_ID": "demo-0", "ANODE_CLUSTER_SECRET": "s" * 32}
    path = tmp_path / "anode.toml"
    coded = make_cluster(replicas=5, erasureCoding={"dataShards": 3, "parityShards": 2})
    cm = by_kind(render(coded, replicas=5, voters=[0, 1, 2, 3, 4]))["ConfigMap"]
    path.write_text(cm["data"]["anode.toml"])
    loaded = load_config(path, env=env)
    assert loaded.cluster.erasure_coding == "3+2" and loaded.erasure_scheme() == (3, 2)
    plain = by_kind(render(make_cluster()))["ConfigMap"]["data"]["anode.toml"]
    assert "erasure_coding" not in plain
    narrow = make_cluster(replicas=3, erasureCoding={"dataShards": 4, "parityShards": 2})
    path.write_text(by_kind(render(narrow))["ConfigMap"]["data"]["anode.toml"])
    with pytest.raises(ConfigError, match="names 3"):  # the node refuses what safety refuses
        load_config(path, env=env)
