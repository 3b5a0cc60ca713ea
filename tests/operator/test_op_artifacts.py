"""Deployment artifacts, checked offline: every Kubernetes object in ``manifests/`` and in the
rendered Helm chart validates strictly against the Kubernetes schemas, the example custom
resources validate against our CRD schemas, the chart's CRDs and RBAC are the repository's,
``helm lint`` passes (and its values schema rejects bad values), and hadolint passes both
Dockerfiles."""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from op_helpers import REPO, apply_defaults, crd_schema, load_yaml_docs, to_jsonschema
from op_tools import hadolint, helm, kubectl, shellcheck

K8S = "1.25"
CHART = REPO / "charts" / "anode"
OUR_KINDS = {"AnodeCluster": "anodeclusters", "Bucket": "buckets"}
PEERING_KINDS = {"ClusterKopfPeering", "KopfPeering"}


def validate(doc: dict) -> None:
    kind = doc["kind"]
    if kind in OUR_KINDS:
        schema = crd_schema(OUR_KINDS[kind])
        jsonschema.validate(apply_defaults(schema, doc), to_jsonschema(schema))
    elif kind in PEERING_KINDS:
        assert doc["apiVersion"] == "kopf.dev/v1" and doc["metadata"]["name"]
    else:
        kubernetes_validate.validate(doc, K8S, strict=True)


MANIFEST_FILES = sorted((REPO / "manifests").rglob("*.yaml")) + sorted(
    (REPO / "crds").glob("*.yaml")
)


@pytest.mark.parametrize("path", MANIFEST_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_manifest_files_validate(path):
    docs = load_yaml_docs(path)
    assert docs
    for doc in docs:
        validate(doc)


def test_manifests_cover_namespace_rbac_operator_and_examples():
    kinds = {d["kind"] for p in MANIFEST_FILES for d in load_yaml_docs(p)}
    assert {
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "CustomResourceDefinition",
        "AnodeCluster",
        "Bucket",
    } <= kinds


def test_install_manifests_hold_only_built_in_kinds():
    """`kubectl apply -f crds/ -f manifests/` resolves every kind before the CRDs exist."""
    for path in sorted((REPO / "manifests").glob("*.yaml")):
        for doc in load_yaml_docs(path):
            assert "anode.dev" not in doc["apiVersion"] and "kopf.dev" not in doc["apiVersion"]


def test_crd_schema_validation_can_fail():
    """The example check is real: a bad spec is rejected by the same code path."""
    schema = crd_schema("anodeclusters")
    bad = {
        "apiVersion": "anode.dev/v1alpha1",
        "kind": "AnodeCluster",
        "metadata": {"name": "x"},
        "spec": {"replicas": 0, "bogus": True},
    }
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(apply_defaults(schema, bad), to_jsonschema(schema))


def test_chart_crds_are_the_repository_crds():
    ours = sorted(p.name for p in (REPO / "crds").glob("*.yaml"))
    assert ours == sorted(p.name for p in (CHART / "crds").glob("*.yaml"))
    for name in ours:
        assert (CHART / "crds" / name).read_text() == (REPO / "crds" / name).read_text(), name


def helm_run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run([str(helm()), *args], capture_output=True, text=True, timeout=120)
    if check:
        assert out.returncode == 0, out.stderr + out.stdout
    return out


def template(*values: str) -> list[dict]:
    args = ["template", "anode", str(CHART), "--namespace", "anode-system", "--include-crds"]
    for v in values:
        args += ["--set", v]
    return [d for d in yaml.safe_load_all(helm_run(*args).stdout) if d]


def test_helm_lint():
    out = helm_run("lint", str(CHART), "--strict")
    assert "0 chart(s) failed" in out.stdout
    helm_run("lint", str(CHART), "--strict", "--set", "cluster.create=true")


@pytest.mark.parametrize(
    "values",
    [
        [],
        ["cluster.create=true"],
        ["cluster.create=true", "cluster.replicas=5", "operator.replicas=1"],
        ["operator.watchNamespaces={team-a,team-b}"],
        ["cluster.create=true", "cluster.tls.secretName=anode-tls"],
    ],
    ids=["default", "with-cluster", "five-nodes", "namespaced", "tls"],
)
def test_helm_template_validates(values):
    docs = template(*values)
    kinds = [d["kind"] for d in docs]
    assert kinds.count("CustomResourceDefinition") == 4
    assert "Deployment" in kinds
    for doc in docs:
        validate(doc)
    if "cluster.create=true" in values:
        (cluster,) = [d for d in docs if d["kind"] == "AnodeCluster"]
        assert cluster["metadata"]["namespace"] == "anode-system"
        tls = "cluster.tls.secretName=anode-tls" in values
        assert cluster["spec"].get("tls") == ({"secretName": "anode-tls"} if tls else None)


def test_helm_rbac_matches_manifests():
    chart, manifests = template(), load_yaml_docs(REPO / "manifests" / "rbac.yaml")
    for kind in ("ClusterRole", "Role"):
        (chart_role,) = [d for d in chart if d["kind"] == kind]
        (manifest_role,) = [d for d in manifests if d["kind"] == kind]
        assert chart_role["rules"] == manifest_role["rules"]
        for rule in chart_role["rules"]:
            assert "*" not in rule["verbs"] and "*" not in rule["resources"]
    (lease_rule,) = next(d for d in chart if d["kind"] == "Role")["rules"]
    assert lease_rule["resources"] == ["leases"] and "delete" not in lease_rule["verbs"]


def _lease_args(deploy: dict) -> tuple[list[str], dict]:
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container.get("env", [])}
    return container["args"], env


def test_helm_deployment_runs_two_replicas_with_one_lease():
    docs = template()
    (deploy,) = [d for d in docs if d["kind"] == "Deployment"]
    assert deploy["spec"]["replicas"] == 2
    args, env = _lease_args(deploy)
    assert args[args.index("--lease") + 1] == "anode-operator"
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    (binding,) = [d for d in docs if d["kind"] == "RoleBinding"]
    assert binding["metadata"]["namespace"] == deploy["metadata"]["namespace"]
    assert not [d for d in docs if d["kind"] in PEERING_KINDS]  # kopf peering is not used
    namespaced = template("operator.watchNamespaces={team-a}")
    (deploy,) = [d for d in namespaced if d["kind"] == "Deployment"]
    assert "team-a" in deploy["spec"]["template"]["spec"]["containers"][0]["args"]


def test_manifest_deployment_elects_with_a_lease_it_may_write():
    (deploy,) = load_yaml_docs(REPO / "manifests" / "operator.yaml")
    assert deploy["spec"]["replicas"] == 2
    args, env = _lease_args(deploy)
    assert args[args.index("--lease") + 1] == "anode-operator"
    assert "POD_NAMESPACE" in env
    (role,) = [d for d in load_yaml_docs(REPO / "manifests" / "rbac.yaml") if d["kind"] == "Role"]
    assert role["metadata"]["namespace"] == deploy["metadata"]["namespace"]


@pytest.mark.parametrize(
    "bad",
    ["cluster.replicas=4", "operator.replicas=0", "cluster.service.type=Magic", "nope=1"],
)
def test_helm_values_schema_rejects_bad_values(bad):
    out = helm_run("template", "anode", str(CHART), "--set", bad, check=False)
    assert out.returncode != 0
    assert "schema" in out.stderr.lower() or "values don't meet" in out.stderr.lower()


@pytest.mark.parametrize(
    "dockerfile", ["Dockerfile.node", "Dockerfile.operator", "e2e/client/Dockerfile"]
)
def test_dockerfiles_pass_hadolint(dockerfile):
    out = subprocess.run(
        [str(hadolint()), "--failure-threshold", "info", str(REPO / dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("dockerfile", ["Dockerfile.node", "Dockerfile.operator"])
def test_dockerfiles_are_multistage_nonroot_with_healthcheck(dockerfile):
    text = (REPO / dockerfile).read_text()
    assert text.count("\nFROM ") + text.startswith("FROM ") >= 2
    assert "USER 10001" in text
    assert "HEALTHCHECK" in text
    assert ":latest" not in text


def requirement_pins(lines: list[str]) -> dict[str, str]:
    """``name==version`` lines (comments dropped) -> {normalized name: version}."""
    pins = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


def test_image_constraints_pin_exactly_the_declared_dependencies():
    """The images install from constraints.txt: every direct dependency of pyproject.toml with
    the same version, and between the two images' Dockerfiles every one of them is installed."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = requirement_pins(project["dependencies"])
    locked = requirement_pins((REPO / "constraints.txt").read_text().splitlines())
    assert {name: locked.get(name) for name in declared} == declared
    installed = set()
    for dockerfile in ("Dockerfile.node", "Dockerfile.operator"):
        text = (REPO / dockerfile).read_text().replace("\\\n", " ")
        (line,) = [ln for ln in text.splitlines() if "-c constraints.txt" in ln]
        names = line.split("-c constraints.txt", 1)[1].split()
        assert all(name in declared for name in names), (dockerfile, names)
        installed |= set(names)
    assert installed == set(declared)


def test_node_image_starts_from_the_environment_alone():
    """`docker run anode:dev` (no config file) works: the default command is plain `server`."""
    text = (REPO / "Dockerfile.node").read_text()
    assert 'CMD ["server"]' in text
    assert "--config" not in text.split("ENTRYPOINT", 1)[1]


def test_compose_quick_start_runs_three_nodes_with_volumes():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    assert sorted(services) == ["node-0", "node-1", "node-2"]
    peers = {"node-0=node-0:9090", "node-1=node-1:9090", "node-2=node-2:9090"}
    for name, svc in services.items():
        assert svc["hostname"] == name
        assert set(svc["environment"]["ANODE_CLUSTER_PEERS"].split(",")) == peers
        assert svc["volumes"] == [f"{name}:/var/lib/anode"]
        assert svc["read_only"] is True and svc["build"]["dockerfile"] == "Dockerfile.node"
    assert sorted(compose["volumes"]) == sorted(services)
    assert "8080:8080" in services["node-0"]["ports"][0].replace("${ANODE_PORT_PREFIX:-8}", "8")


def test_hadolint_can_fail(tmp_path: Path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN apt-get install curl\n")
    out = subprocess.run([str(hadolint()), str(bad)], capture_output=True, text=True)
    assert out.returncode != 0


@pytest.mark.parametrize(
    "script",
    [
        "e2e/run.sh",
        "e2e/compose.sh",
        "hack/ci-e2e.sh",
        ".ci/run",
        "hack/k8s/build.sh",
        "hack/k8s/up.sh",
        "hack/k8s/down.sh",
    ],
)
def test_shell_scripts_pass_shellcheck(script):
    out = subprocess.run(  # -x: also check the files a script sources (hack/k8s/lib.sh)
        [str(shellcheck()), "-x", script], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_e2e_runs_on_any_cluster_or_kind():
    """e2e/run.sh takes a kubeconfig (or makes a kind cluster); the steps live in e2e/, outside
    the testpaths `make test` collects, and build the images from the real Dockerfiles."""
    config = yaml.safe_load((REPO / "e2e" / "kind-config.yaml").read_text())
    assert config["kind"] == "Cluster" and config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert [n["role"] for n in config["nodes"]].count("worker") == 3
    script = (REPO / "e2e" / "run.sh").read_text()
    for step in (
        "KUBECONFIG",
        "--kind",
        "kind create cluster",
        "kind delete cluster",
        "pytest e2e",
    ):
        assert step in script, step
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert project["tool"]["pytest"]["ini_options"]["testpaths"] == ["tests"]
    steps = (REPO / "e2e" / "test_e2e.py").read_text()
    for path in ("Dockerfile.node", "Dockerfile.operator", '"charts" / "anode"'):
        assert path in steps, path
    assert (REPO / "e2e" / "client" / "Dockerfile").exists()
    for name in ("helm install", "apply -k", "helm template", "scale 3 -> 5", "helm uninstall"):
        assert name in steps, name


def resources(docs: list[dict]) -> dict[tuple[str, str, str], dict]:
    return {(d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]): d for d in docs}


def test_kustomization_and_helm_template_install_the_same_operator():
    """`kubectl apply -k .` and `helm template ... --include-crds | kubectl apply -f -` give the
    same CRDs, RBAC and operator Deployment; only the namespace differs, by design (Helm makes
    it with --create-namespace)."""
    out = subprocess.run(
        [str(kubectl()), "kustomize", str(REPO)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    kustomized = resources([d for d in yaml.safe_load_all(out.stdout) if d])
    helmed = resources(template())
    assert set(kustomized) - set(helmed) == {("Namespace", "", "anode-system")}
    assert set(helmed) - set(kustomized) == set()
    for key in set(kustomized) & set(helmed):
        a, b = kustomized[key], helmed[key]
        if key[0] == "Deployment":
            pa, pb = a["spec"]["template"]["spec"], b["spec"]["template"]["spec"]
            for field in ("securityContext", "serviceAccountName", "volumes"):
                assert pa[field] == pb[field], field
            ca, cb = pa["containers"][0], pb["containers"][0]
            for field in ("image", "ports", "livenessProbe", "resources", "securityContext"):
                assert ca[field] == cb[field], field
            assert a["spec"]["replicas"] == b["spec"]["replicas"]
        elif key[0] in ("CustomResourceDefinition", "ClusterRole", "Role"):
            assert a.get("spec", a.get("rules")) == b.get("spec", b.get("rules")), key


def test_helm_chart_passes_the_audit_settings_to_the_cluster():
    webhook = "http://collector.logs.svc:8080/audit"
    docs = template(
        "cluster.create=true", "cluster.audit.enabled=true", f"cluster.audit.webhook={webhook}"
    )
    (cluster,) = [d for d in docs if d["kind"] == "AnodeCluster"]
    assert cluster["spec"]["audit"] == {"enabled": True, "webhook": webhook}
    validate(cluster)
    (plain,) = [d for d in template("cluster.create=true") if d["kind"] == "AnodeCluster"]
    assert "audit" not in plain["spec"]


def test_helm_chart_ships_the_grafana_dashboard_when_enabled():
    dashboard = (CHART / "dashboards" / "anode.json").read_text()
    docs = template("dashboards.enabled=true", "dashboards.annotations.grafana_folder=Storage")
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap"]
    validate(cm)
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["metadata"]["annotations"] == {"grafana_folder": "Storage"}
    assert json.loads(cm["data"]["anode.json"]) == json.loads(dashboard)
    assert not [d for d in template() if d["kind"] == "ConfigMap"]
