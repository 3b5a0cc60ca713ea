"""The real operator against a real API server and controller-manager (no kubelet: pods are
created but never run). What can be proven without running nodes is proven here: children,
ownership and garbage collection, drift correction, refused specs, scaling that waits for Ready
pods, the scale subresource, printer columns, kopf bookkeeping in status, leader election with a
Lease (a standby takes over after SIGKILL), and Bucket finalizers that do not wedge when the
cluster is gone or unreachable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import kubernetes
import pytest
from kubernetes.client.exceptions import ApiException
from op_controlplane import LEASE, start_operator

pytestmark = pytest.mark.timeout(240)


def cluster_body(name: str, **spec) -> dict:
    return {
        "apiVersion": "anode.dev/v1alpha1",
        "kind": "AnodeCluster",
        "metadata": {"name": name},
        "spec": spec,
    }


def create(kube_env, namespace: str, plural: str, body: dict) -> dict:
    return kubernetes.client.CustomObjectsApi(kube_env.api).create_namespaced_custom_object(
        "anode.dev", "v1alpha1", namespace, plural, body
    )


def patch_spec(kube_env, namespace: str, plural: str, name: str, spec: dict) -> None:
    kubernetes.client.CustomObjectsApi(kube_env.api).patch_namespaced_custom_object(
        "anode.dev", "v1alpha1", namespace, plural, name, {"spec": spec}
    )


def delete(kube_env, namespace: str, plural: str, name: str) -> None:
    kubernetes.client.CustomObjectsApi(kube_env.api).delete_namespaced_custom_object(
        "anode.dev", "v1alpha1", namespace, plural, name
    )


@pytest.fixture(scope="module")
def demo(kube_env, operator_process):
    """A 3-replica cluster in its own namespace, with its children created."""
    ns = "cp-demo"
    kube_env.create_namespace(ns)
    create(kube_env, ns, "anodeclusters", cluster_body("demo", replicas=3))
    apps = kubernetes.client.AppsV1Api(kube_env.api)
    kube_env.wait("StatefulSet demo", lambda: apps.read_namespaced_stateful_set("demo", ns))
    kube_env.wait(
        "status.observedGeneration",
        lambda: (kube_env.custom("anodeclusters", ns, "demo").get("status") or {}).get(
            "observedGeneration"
        ),
    )
    return ns


def test_children_are_created_with_owner_references(kube_env, demo):
    ns = demo
    core = kubernetes.client.CoreV1Api(kube_env.api)
    apps = kubernetes.client.AppsV1Api(kube_env.api)
    cluster = kube_env.custom("anodeclusters", ns, "demo")
    uid = cluster["metadata"]["uid"]

    sts = apps.read_namespaced_stateful_set("demo", ns)
    assert sts.spec.replicas == 3
    assert sts.spec.service_name == "demo-peers"
    assert sts.spec.update_strategy.type == "OnDelete"
    assert sts.spec.pod_management_policy == "Parallel"
    peers = core.read_namespaced_service("demo-peers", ns)
    assert peers.spec.cluster_ip == "None"
    client = core.read_namespaced_service("demo", ns)
    assert {p.port for p in client.spec.ports} == {8080, 8081}
    config = core.read_namespaced_config_map("demo-config", ns)
    assert "peers = [" in config.data["anode.toml"]
    secret = core.read_namespaced_secret("demo-credentials", ns)
    assert set(secret.data) == {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "ANODE_CLUSTER_SECRET",
    }
    pdb = kube_env.kube.get(
        api_version=kube_env.kube.capabilities.pdb_api_version,
        kind="PodDisruptionBudget",
        namespace=ns,
        name="demo",
    )
    assert kube_env.kube.capabilities.pdb_api_version == "policy/v1beta1"  # v1.20
    assert pdb["spec"]["minAvailable"] == 2
    for obj in (sts, peers, client, config, secret):
        (ref,) = obj.metadata.owner_references
        assert (ref.kind, ref.uid, ref.controller) == ("AnodeCluster", uid, True)
    assert pdb["metadata"]["ownerReferences"][0]["uid"] == uid
    # the StatefulSet controller really created the pods (all three: Parallel policy)
    kube_env.wait(
        "3 pods",
        lambda: (
            len(
                core.list_namespaced_pod(ns, label_selector="app.kubernetes.io/instance=demo").items
            )
            == 3
        ),
    )


def test_status_conditions_and_kopf_bookkeeping_live_in_status(kube_env, demo):
    obj = kube_env.custom("anodeclusters", demo, "demo")
    status = obj["status"]
    assert status["observedGeneration"] == obj["metadata"]["generation"]
    assert status["endpoint"] == "http://demo.cp-demo.svc:8080"
    assert status["phase"] == "Creating"  # pods never become Ready without a kubelet
    assert kube_env.condition(obj, "Ready")["status"] == "False"
    assert kube_env.condition(obj, "Reconciling")["status"] == "True"
    assert kube_env.condition(obj, "Stalled")["status"] == "False"
    assert kube_env.condition(obj, "QuorumAtRisk")["reason"] == "QuorumLost"
    assert "kopf" in status
    annotations = obj["metadata"].get("annotations") or {}
    assert not [k for k in annotations if "kopf" in k], annotations
    assert "anode.dev/finalizer" in obj["metadata"]["finalizers"]


def test_printer_columns(kube_env, demo):
    out = kube_env.kubectl("get", "anodeclusters", "-n", demo, "-o", "wide").stdout
    header = out.splitlines()[0].split()
    assert header == ["NAME", "REPLICAS", "READY", "PHASE", "LEADER", "ENDPOINT", "AGE"]
    assert "http://demo.cp-demo.svc:8080" in out
    short = kube_env.kubectl("get", "anc", "-n", demo).stdout
    assert short.splitlines()[1].split()[:4] == ["demo", "3", "0", "Creating"]


def test_drift_is_corrected(kube_env, demo):
    core = kubernetes.client.CoreV1Api(kube_env.api)
    core.patch_namespaced_service("demo", demo, {"spec": {"type": "NodePort"}})
    core.delete_namespaced_config_map("demo-config", demo)
    kube_env.wait(
        "ConfigMap re-created", lambda: core.read_namespaced_config_map("demo-config", demo)
    )
    kube_env.wait(
        "Service type restored",
        lambda: core.read_namespaced_service("demo", demo).spec.type == "ClusterIP",
    )


def test_generated_credentials_are_stable(kube_env, demo):
    core = kubernetes.client.CoreV1Api(kube_env.api)
    before = core.read_namespaced_secret("demo-credentials", demo).data
    time.sleep(5)  # > 2 timer ticks
    assert core.read_namespaced_secret("demo-credentials", demo).data == before


def test_scale_up_waits_for_ready_pods_and_never_jumps(kube_env, demo):
    apps = kubernetes.client.AppsV1Api(kube_env.api)
    kube_env.kubectl("scale", "anodecluster/demo", "-n", demo, "--replicas=5")  # scale subresource
    assert kube_env.custom("anodeclusters", demo, "demo")["spec"]["replicas"] == 5

    def holding():
        obj = kube_env.custom("anodeclusters", demo, "demo")
        op = (obj.get("status") or {}).get("operation") or {}
        return (
            op.get("reason") == "PodsNotReady"
            and obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
        )

    kube_env.wait("scaling on hold", holding)
    assert apps.read_namespaced_stateful_set("demo", demo).spec.replicas == 3
    obj = kube_env.custom("anodeclusters", demo, "demo")
    assert obj["status"]["phase"] == "Creating"  # never Running yet: still bootstrapping
    assert kube_env.condition(obj, "Reconciling")["reason"] == "Scaling"
    # waiting longer than upgradePolicy.podReadyTimeout: Stalled (kstatus), still never forced
    patch_spec(
        kube_env, demo, "anodeclusters", "demo", {"upgradePolicy": {"podReadyTimeout": "3s"}}
    )
    kube_env.wait(
        "Stalled=ProgressDeadlineExceeded",
        lambda: (
            (
                kube_env.condition(kube_env.custom("anodeclusters", demo, "demo"), "Stalled") or {}
            ).get("reason")
            == "ProgressDeadlineExceeded"
        ),
    )
    kube_env.wait(
        "Warning Event",
        lambda: [
            e
            for e in kube_env.events(demo, "demo")
            if e.reason == "ProgressDeadlineExceeded" and e.type == "Warning"
        ],
    )
    assert apps.read_namespaced_stateful_set("demo", demo).spec.replicas == 3
    patch_spec(
        kube_env,
        demo,
        "anodeclusters",
        "demo",
        {"replicas": 3, "upgradePolicy": {"podReadyTimeout": "10m"}},
    )


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ({"replicas": 4}, "EvenReplicas"),
        ({"replicas": 1}, "ShrinkBelowReplicationFactor"),
        ({"erasureCoding": {"dataShards": 4, "parityShards": 2}}, "TooFewReplicasForErasureCoding"),
    ],
)
def test_unsafe_specs_are_refused_with_condition_and_event(kube_env, demo, spec, reason):
    apps = kubernetes.client.AppsV1Api(kube_env.api)
    patch_spec(kube_env, demo, "anodeclusters", "demo", spec)
    try:
        kube_env.wait(
            f"Stalled={reason}",
            lambda: (
                (
                    kube_env.condition(kube_env.custom("anodeclusters", demo, "demo"), "Stalled")
                    or {}
                ).get("reason")
                == reason
            ),
        )
        assert apps.read_namespaced_stateful_set("demo", demo).spec.replicas == 3
        kube_env.wait(
            f"Warning Event {reason}",
            lambda: [
                e
                for e in kube_env.events(demo, "demo")
                if e.reason == reason and e.type == "Warning"
            ],
        )
    finally:
        patch_spec(kube_env, demo, "anodeclusters", "demo", {"replicas": 3, "erasureCoding": None})
    kube_env.wait(
        "Stalled cleared",
        lambda: (
            kube_env.condition(kube_env.custom("anodeclusters", demo, "demo"), "Stalled")["status"]
            == "False"
        ),
    )


def test_schema_rejects_invalid_specs(kube_env, demo):
    for bad in (
        {"replicas": 0},
        {"replicas": 99},
        {"service": {"type": "Magic"}},
        {"storage": {"size": "lots"}},
    ):
        with pytest.raises(ApiException) as exc:
            create(kube_env, demo, "anodeclusters", cluster_body("bad", **bad))
        assert exc.value.status == 422


def test_json_logs(operator_process):
    lines = [line for line in operator_process.log_lines() if line.startswith("{")]
    assert lines, operator_process.log_lines()[:5]
    for line in lines[:50]:
        record = json.loads(line)
        assert {"message", "severity"} <= set(record) or {"message", "level"} <= set(record)


def _holder(kube_env, namespace: str, name: str) -> str | None:
    lease = kubernetes.client.CoordinationV1Api(kube_env.api).read_namespaced_lease(name, namespace)
    return lease.spec.holder_identity


def _reconciled(kube_env, ns: str, name: str) -> bool:
    status = (kube_env.custom("anodeclusters", ns, name) or {}).get("status") or {}
    return bool(status.get("observedGeneration")) and kubernetes.client.AppsV1Api(
        kube_env.api
    ).read_namespaced_stateful_set(name, ns)


def _small_cluster(kube_env, ns: str, name: str) -> None:
    create(kube_env, ns, "anodeclusters", cluster_body(name, replicas=1, replicationFactor=1))


def _mentions(op, text: str) -> bool:
    return any(text in line for line in op.log_lines())


def test_two_operators_one_leads_and_the_standby_takes_over_after_sigkill(
    kube_env, operator_process, tmp_path
):
    """High availability as the Deployment runs it (2 replicas, one Lease): only the holder
    reconciles; after a SIGKILL the standby takes over within lease duration + retry (8 + 1 s
    here, 15 + 2 s by default) and reconciles what was created meanwhile; a graceful stop hands
    over within the retry period. The survivor stays the session's operator."""
    ns = "cp-ha"
    kube_env.create_namespace(ns)
    namespace, name = LEASE
    leader = _holder(kube_env, namespace, name)
    started = []
    try:
        standby = start_operator(kube_env, tmp_path / "standby")
        started.append(standby)
        assert not standby.leading() and _holder(kube_env, namespace, name) == leader

        _small_cluster(kube_env, ns, "before")
        kube_env.wait("'before' reconciled", lambda: _reconciled(kube_env, ns, "before"))
        assert _mentions(operator_process, "cp-ha") and not _mentions(standby, "cp-ha")

        operator_process.proc.kill()  # SIGKILL: the Lease is not released, it has to expire
        killed = time.monotonic()
        operator_process.proc.wait()
        _small_cluster(kube_env, ns, "after")
        kube_env.wait("standby leads", standby.leading, timeout=30)
        took_over = time.monotonic() - killed
        kube_env.wait("'after' reconciled", lambda: _reconciled(kube_env, ns, "after"), timeout=60)
        reconciled = time.monotonic() - killed
        print(f"SIGKILL: standby leads after {took_over:.1f}s, reconciles after {reconciled:.1f}s")
        assert took_over < 8 + 1 + 5  # lease duration + retry + start-up slack
        assert _holder(kube_env, namespace, name) not in (None, leader)

        third = start_operator(kube_env, tmp_path / "third")  # the new standby
        started.append(third)
        assert not third.leading()
        standby.stop()  # SIGTERM: kopf stops, then the Lease is released
        released = time.monotonic()
        kube_env.wait("third leads", third.leading, timeout=30)
        print(f"SIGTERM: the next standby leads {time.monotonic() - released:.1f}s after")
        assert time.monotonic() - released < 1 + 3  # retry + slack: no lease expiry to wait for
        _small_cluster(kube_env, ns, "later")
        kube_env.wait("'later' reconciled", lambda: _reconciled(kube_env, ns, "later"), timeout=60)
    finally:  # whoever is alive and leading stays the session's operator; the others stop
        alive = [op for op in started if op.proc.poll() is None]
        if operator_process.proc.poll() is not None and alive:
            successor = alive.pop()
            operator_process.proc, operator_process.log_path = successor.proc, successor.log_path
        for op in alive:
            op.stop()


def test_deleting_the_cluster_garbage_collects_children(kube_env, operator_process):
    ns = "cp-gc"
    kube_env.create_namespace(ns)
    create(kube_env, ns, "anodeclusters", cluster_body("gone", replicas=1, replicationFactor=1))
    apps = kubernetes.client.AppsV1Api(kube_env.api)
    core = kubernetes.client.CoreV1Api(kube_env.api)
    kube_env.wait("StatefulSet", lambda: apps.read_namespaced_stateful_set("gone", ns))
    kube_env.wait("Secret", lambda: core.read_namespaced_secret("gone-credentials", ns))
    delete(kube_env, ns, "anodeclusters", "gone")
    kube_env.wait(
        "cluster gone", lambda: kube_env.custom("anodeclusters", ns, "gone") is None, timeout=30
    )

    def all_gone():
        left = []
        for call, name in (
            (apps.read_namespaced_stateful_set, "gone"),
            (core.read_namespaced_service, "gone"),
            (core.read_namespaced_service, "gone-peers"),
            (core.read_namespaced_config_map, "gone-config"),
            (core.read_namespaced_secret, "gone-credentials"),
        ):
            try:
                call(name, ns)
                left.append(name)
            except ApiException as exc:
                assert exc.status == 404
        return not left

    kube_env.wait("children garbage-collected", all_gone, timeout=100)


def test_bucket_without_cluster_is_stalled_and_deletes_cleanly(kube_env, operator_process):
    ns = "cp-orphan"
    kube_env.create_namespace(ns)
    body = {
        "apiVersion": "anode.dev/v1alpha1",
        "kind": "Bucket",
        "metadata": {"name": "orphan"},
        "spec": {"clusterRef": {"name": "nowhere"}, "deletionPolicy": "Delete"},
    }
    create(kube_env, ns, "buckets", body)
    kube_env.wait(
        "ClusterNotFound",
        lambda: (
            (kube_env.condition(kube_env.custom("buckets", ns, "orphan"), "Stalled") or {}).get(
                "reason"
            )
            == "ClusterNotFound"
        ),
    )
    assert kube_env.custom("buckets", ns, "orphan")["status"]["phase"] == "Failed"
    delete(kube_env, ns, "buckets", "orphan")
    kube_env.wait(
        "bucket gone", lambda: kube_env.custom("buckets", ns, "orphan") is None, timeout=20
    )


def test_bucket_on_unreachable_cluster_gives_up_after_grace(kube_env, operator_process):
    """The cluster exists but no node answers (no kubelet): deletion with policy Delete retries,
    then releases the finalizer with a Warning after the grace period (15 s in this suite)."""
    ns = "cp-unreachable"
    kube_env.create_namespace(ns)
    create(kube_env, ns, "anodeclusters", cluster_body("quiet", replicas=1, replicationFactor=1))
    body = {
        "apiVersion": "anode.dev/v1alpha1",
        "kind": "Bucket",
        "metadata": {"name": "data"},
        "spec": {"clusterRef": {"name": "quiet"}, "deletionPolicy": "Delete"},
    }
    create(kube_env, ns, "buckets", body)
    kube_env.wait(
        "ClusterNotReady",
        lambda: (
            (kube_env.condition(kube_env.custom("buckets", ns, "data"), "Ready") or {}).get(
                "reason"
            )
            == "ClusterNotReady"
        ),
    )
    assert kube_env.custom("buckets", ns, "data")["status"]["phase"] == "Pending"
    started = time.monotonic()
    delete(kube_env, ns, "buckets", "data")
    time.sleep(5)
    assert kube_env.custom("buckets", ns, "data") is not None, "released before the grace period"
    kube_env.wait(
        "bucket released", lambda: kube_env.custom("buckets", ns, "data") is None, timeout=60
    )
    assert time.monotonic() - started >= 10
    kube_env.wait(
        "Warning ClusterUnreachable",
        lambda: [e for e in kube_env.events(ns, "data") if e.reason == "ClusterUnreachable"],
    )
    secret = kubernetes.client.CoreV1Api(kube_env.api).list_namespaced_secret(ns).items
    assert not [s for s in secret if s.metadata.name == "data-bucket"]


def test_kubectl_apply_of_crds_and_manifests_is_accepted(kube_env):
    out = kube_env.kubectl("apply", "-f", "crds/", "-f", "manifests/").stdout
    assert "deployment.apps/anode-operator" in out
    apps = kubernetes.client.AppsV1Api(kube_env.api)
    assert apps.read_namespaced_deployment("anode-operator", "anode-system").spec.replicas == 2
    out = kube_env.kubectl("apply", "--dry-run=server", "-f", "manifests/examples/").stdout
    assert "anodecluster.anode.dev/demo created (server dry run)" in out
    assert "bucket.anode.dev/analytics created (server dry run)" in out


def test_helm_install_creates_operator_and_cluster_and_prints_the_endpoint(
    kube_env, operator_process
):
    from op_tools import helm

    env = {**os.environ, "KUBECONFIG": kube_env.kubeconfig, "HELM_CACHE_HOME": "/tmp/helm-cache"}
    cmd = [
        str(helm()),
        "install",
        "h",
        "charts/anode",
        "--namespace",
        "helm-test",
        "--create-namespace",
        "--set",
        "cluster.create=true",
        "--set",
        "cluster.name=demo",
        "--set",
        "cluster.replicas=1",
        "--set",
        "cluster.replicationFactor=1",
    ]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "http://demo.helm-test.svc:8080" in out.stdout  # NOTES.txt
    apps = kubernetes.client.AppsV1Api(kube_env.api)
    assert apps.read_namespaced_deployment("h-operator", "helm-test").spec.replicas == 2
    kube_env.wait(
        "the chart's AnodeCluster reconciled",
        lambda: apps.read_namespaced_stateful_set("demo", "helm-test"),
    )
    out = subprocess.run(
        [str(helm()), "uninstall", "h", "--namespace", "helm-test"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    kube_env.wait(
        "AnodeCluster removed with the release",
        lambda: kube_env.custom("anodeclusters", "helm-test", "demo") is None,
        timeout=30,
    )


def test_namespaced_operator_takes_a_lease_in_its_namespace_and_releases_it(kube_env, tmp_path):
    ns = "cp-scoped"
    kube_env.create_namespace(ns)
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "anode-operator"),
            "--namespace",
            ns,
            "--lease",
            "scoped",
            "--lease-namespace",
            ns,
            "--log-format",
            "plain",
        ],
        env={**os.environ, "KUBECONFIG": kube_env.kubeconfig},
        stdout=(tmp_path / "scoped.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        holder = kube_env.wait("Lease held", lambda: _holder(kube_env, ns, "scoped"), timeout=30)
        assert str(proc.pid) in holder  # host-pid-random: unique per process
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert _holder(kube_env, ns, "scoped") is None  # released on a graceful stop


def test_the_lease_is_collected_with_its_last_holders_pod(kube_env, tmp_path):
    """``helm uninstall`` deletes the operator's RBAC and ServiceAccount before its pods stop, so
    the graceful release fails on that path; the holder's Pod owns the Lease, and the garbage
    collector removes it with that Pod. Here a Pod object (no kubelet runs it) stands for the
    operator's pod, the operator is SIGKILLed (no release), then the Pod is deleted."""
    ns = "cp-owned"
    kube_env.create_namespace(ns)
    core = kubernetes.client.CoreV1Api(kube_env.api)
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "operator-0"},
        "spec": {
            "automountServiceAccountToken": False,  # this control plane mints no tokens
            "containers": [{"name": "operator", "image": "anode-operator:dev"}],
        },
    }
    pod = kube_env.wait(  # the namespace's default ServiceAccount may not exist yet
        "the stand-in operator Pod", lambda: _create_pod(core, ns, body), timeout=60
    )
    env = {
        **os.environ,
        "KUBECONFIG": kube_env.kubeconfig,
        "POD_NAMESPACE": ns,
        "POD_NAME": pod.metadata.name,
        "POD_UID": pod.metadata.uid,
    }
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "anode-operator"), "--namespace", ns],
        env=env,
        stdout=(tmp_path / "owned.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    leases = kubernetes.client.CoordinationV1Api(kube_env.api)
    try:
        kube_env.wait("Lease held", lambda: _holder(kube_env, ns, "anode-operator"), timeout=60)
        owners = leases.read_namespaced_lease("anode-operator", ns).metadata.owner_references
        expected = [("Pod", "operator-0", pod.metadata.uid)]
        assert [(o.kind, o.name, o.uid) for o in owners] == expected
    finally:
        proc.kill()  # no release, as when uninstall already took the RBAC away
        proc.wait()
    assert _holder(kube_env, ns, "anode-operator")
    core.delete_namespaced_pod("operator-0", ns, grace_period_seconds=0)

    def collected() -> bool:
        try:
            leases.read_namespaced_lease("anode-operator", ns)
        except ApiException as exc:
            return exc.status == 404
        return False

    kube_env.wait("the Lease collected with its holder's Pod", collected, timeout=120)


def _create_pod(core, ns: str, body: dict):
    try:
        return core.create_namespaced_pod(ns, body)
    except ApiException as exc:
        if exc.status == 403:  # "serviceaccount default not found" until the controller made it
            return None
        raise
