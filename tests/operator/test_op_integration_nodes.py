"""The operator against real Anode nodes: the stand-in kubelet (``op_kubelet``) runs
``anode server`` for the pods the StatefulSet controller creates, so readiness, leader discovery,
bucket/user creation, S3 traffic with the Bucket's Secret, scaling and rolling upgrades are the
real thing end to end (minus containers and DNS). The nodes are part 1 (single-node Raft): the
membership endpoints answer 501, which the operator must treat as "no membership action"."""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import kubernetes
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from op_kubelet import StandInKubelet
from selfsigned import make_cert

from anode_operator.admin import AdminClient

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def kubelets(kube_env, tmp_path_factory) -> Iterator[dict[str, StandInKubelet]]:
    started: dict[str, StandInKubelet] = {}
    # a loopback /16 of this session's own (by pid), so concurrent runs never share addresses
    base = f"127.{100 + os.getpid() % 150}"
    for index, ns in enumerate(("nodes-one", "nodes-three", "nodes-tls")):
        kube_env.create_namespace(ns)
        started[ns] = StandInKubelet(
            api=kube_env.api,
            namespace=ns,
            workdir=tmp_path_factory.mktemp(ns),
            subnet=f"{base}.{os.getpid() // 150 % 250 + index}.",
        ).start()
    try:
        yield started
    finally:
        for kubelet in started.values():
            kubelet.stop()
        for kubelet in started.values():
            assert not kubelet.errors, kubelet.errors


def custom_api(kube_env):
    return kubernetes.client.CustomObjectsApi(kube_env.api)


def create(kube_env, ns: str, plural: str, body: dict) -> None:
    custom_api(kube_env).create_namespaced_custom_object("anode.dev", "v1alpha1", ns, plural, body)


def create_bucket(kube_env, ns: str, name: str, spec: dict) -> None:
    create(
        kube_env,
        ns,
        "buckets",
        {
            "apiVersion": "anode.dev/v1alpha1",
            "kind": "Bucket",
            "metadata": {"name": name},
            "spec": spec,
        },
    )


def patch_spec(kube_env, ns: str, plural: str, name: str, spec: dict) -> None:
    custom_api(kube_env).patch_namespaced_custom_object(
        "anode.dev", "v1alpha1", ns, plural, name, {"spec": spec}
    )


def ready(kube_env, ns: str, plural: str, name: str) -> bool:
    obj = kube_env.custom(plural, ns, name)
    cond = kube_env.condition(obj, "Ready") or {}
    return (
        cond.get("status") == "True"
        and obj["status"].get("observedGeneration") == obj["metadata"]["generation"]
    )


def secret_data(kube_env, ns: str, name: str) -> dict[str, str]:
    secret = kubernetes.client.CoreV1Api(kube_env.api).read_namespaced_secret(name, ns)
    return {k: base64.b64decode(v).decode() for k, v in secret.data.items()}


def s3_for(creds: dict[str, str], *, pod_ip: str):
    """An S3 client from a Bucket Secret; the Service DNS name does not resolve here, so the
    request goes to the pod's address (what the Service would route to)."""
    return boto3.client(
        "s3",
        endpoint_url=f"http://{pod_ip}:8080",
        aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
        region_name=creds["AWS_REGION"],
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def root_admin(kube_env, ns: str, cluster: str, pod_ip: str) -> AdminClient:
    creds = secret_data(kube_env, ns, f"{cluster}-credentials")
    return AdminClient(base_url=f"http://{pod_ip}:8081", token=creds["AWS_SECRET_ACCESS_KEY"])


@pytest.fixture(scope="module")
def solo(kube_env, operator_process, kubelets):
    ns = "nodes-one"
    create(
        kube_env,
        ns,
        "anodeclusters",
        {
            "apiVersion": "anode.dev/v1alpha1",
            "kind": "AnodeCluster",
            "metadata": {"name": "solo"},
            "spec": {"replicas": 1, "replicationFactor": 1},
        },
    )
    kube_env.wait("solo Ready", lambda: ready(kube_env, ns, "anodeclusters", "solo"), timeout=60)
    return ns, kubelets[ns].ips["solo-0"]


def test_single_node_cluster_becomes_ready_with_its_leader(kube_env, solo):
    ns, _ = solo
    obj = kube_env.custom("anodeclusters", ns, "solo")
    status = obj["status"]
    assert status["phase"] == "Running"
    assert status["readyReplicas"] == 1
    assert status["leader"] == "solo-0"
    assert kube_env.condition(obj, "Reconciling")["status"] == "False"
    assert kube_env.condition(obj, "Stalled")["status"] == "False"
    assert kube_env.condition(obj, "Degraded")["status"] == "False"
    assert kube_env.condition(obj, "QuorumAtRisk")["reason"] == "SingleNode"
    kube_env.kubectl(
        "wait", "--for=condition=Ready", "anodecluster/solo", "-n", ns, "--timeout=30s"
    )
    events = {e.reason for e in kube_env.events(ns, "solo")}
    assert "ClusterReady" in events


def test_bucket_lifecycle_with_s3_round_trip(kube_env, solo):
    ns, ip = solo
    create_bucket(
        kube_env, ns, "photos", {"clusterRef": {"name": "solo"}, "deletionPolicy": "Delete"}
    )
    kube_env.wait("bucket Ready", lambda: ready(kube_env, ns, "buckets", "photos"), timeout=60)
    status = kube_env.custom("buckets", ns, "photos")["status"]
    assert status["phase"] == "Ready" and status["secretName"] == "photos-bucket"
    assert status["user"] == "bucket-nodes-one-photos"
    creds = secret_data(kube_env, ns, "photos-bucket")
    assert set(creds) == {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_ENDPOINT_URL",
        "AWS_REGION",
        "BUCKET_NAME",
    }
    assert creds["AWS_ENDPOINT_URL"] == "http://solo.nodes-one.svc:8080"
    assert creds["BUCKET_NAME"] == "photos"

    s3 = s3_for(creds, pod_ip=ip)
    s3.put_object(Bucket="photos", Key="cat.jpg", Body=b"meow" * 1000)
    assert s3.get_object(Bucket="photos", Key="cat.jpg")["Body"].read() == b"meow" * 1000
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="photos")["Contents"]] == ["cat.jpg"]

    admin = root_admin(kube_env, ns, "solo", ip)
    owners = {b["name"]: b["owner"] for b in admin.list_buckets()}
    assert owners["photos"] == "bucket-nodes-one-photos"

    # a deleted Secret comes back (the timer re-ensures), with working keys
    kubernetes.client.CoreV1Api(kube_env.api).delete_namespaced_secret("photos-bucket", ns)
    fresh = kube_env.wait(
        "Secret restored", lambda: secret_data(kube_env, ns, "photos-bucket"), timeout=30
    )
    assert s3_for(fresh, pod_ip=ip).get_object(Bucket="photos", Key="cat.jpg")["Body"].read()

    # deletionPolicy Delete: the bucket (with its objects) and its user are gone
    custom_api(kube_env).delete_namespaced_custom_object(
        "anode.dev", "v1alpha1", ns, "buckets", "photos"
    )
    kube_env.wait(
        "Bucket CR gone", lambda: kube_env.custom("buckets", ns, "photos") is None, timeout=30
    )
    assert "photos" not in {b["name"] for b in admin.list_buckets()}
    assert "bucket-nodes-one-photos" not in {u["name"] for u in admin.list_users()}


def test_retained_bucket_survives_its_resource(kube_env, solo):
    ns, ip = solo
    create_bucket(
        kube_env,
        ns,
        "archive",
        {
            "clusterRef": {"name": "solo"},
            "bucketName": "long-term-archive",
            "versioning": "Enabled",
            "anonymousRead": True,
        },
    )
    kube_env.wait("bucket Ready", lambda: ready(kube_env, ns, "buckets", "archive"), timeout=60)
    obj = kube_env.custom("buckets", ns, "archive")
    applied = kube_env.condition(obj, "SettingsApplied")
    # versioning and anonymousRead are applied through the S3 API as the bucket's owner
    assert applied["status"] == "True", applied
    creds = secret_data(kube_env, ns, "archive-bucket")
    versioning = s3_for(creds, pod_ip=ip).get_bucket_versioning(Bucket="long-term-archive")
    assert versioning["Status"] == "Enabled"
    custom_api(kube_env).delete_namespaced_custom_object(
        "anode.dev", "v1alpha1", ns, "buckets", "archive"
    )
    kube_env.wait(
        "Bucket CR gone", lambda: kube_env.custom("buckets", ns, "archive") is None, timeout=30
    )
    admin = root_admin(kube_env, ns, "solo", ip)
    assert "long-term-archive" in {b["name"] for b in admin.list_buckets()}


def anonymous_get(ip: str, bucket: str, key: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://{ip}:8080/{bucket}/{key}", timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def settings_applied(kube_env, ns: str, name: str) -> dict | None:
    """The SettingsApplied condition once the Bucket's current generation is reconciled."""
    if not ready(kube_env, ns, "buckets", name):
        return None
    return kube_env.condition(kube_env.custom("buckets", ns, name), "SettingsApplied")


def test_bucket_settings_follow_the_spec_through_the_s3_api(kube_env, solo):
    ns, ip = solo
    rules = [
        {"id": "tmp", "prefix": "tmp/", "expirationDays": 1},
        {
            "id": "versions",
            "noncurrentVersionExpirationDays": 30,
            "abortIncompleteMultipartUploadDays": 2,
        },
    ]
    create_bucket(
        kube_env,
        ns,
        "website",
        {
            "clusterRef": {"name": "solo"},
            "deletionPolicy": "Delete",
            "versioning": "Enabled",
            "anonymousRead": True,
            "lifecycle": {"rules": rules},
        },
    )
    cond = kube_env.wait(
        "settings applied", lambda: settings_applied(kube_env, ns, "website"), timeout=60
    )
    assert cond["status"] == "True", cond
    s3 = s3_for(secret_data(kube_env, ns, "website-bucket"), pod_ip=ip)
    s3.put_object(Bucket="website", Key="index.html", Body=b"<h1>hi</h1>")
    assert anonymous_get(ip, "website", "index.html") == (200, b"<h1>hi</h1>")
    assert s3.get_bucket_versioning(Bucket="website")["Status"] == "Enabled"
    got = s3.get_bucket_lifecycle_configuration(Bucket="website")["Rules"]
    assert [(r["ID"], r["Filter"].get("Prefix"), r.get("Expiration")) for r in got] == [
        ("tmp", "tmp/", {"Days": 1}),
        ("versions", "", None),
    ]
    assert got[1]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 30
    assert got[1]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 2
    # the application's own statement survives the operator's edits
    theirs = {
        "Sid": "App",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::website/private/*",
    }
    policy = json.loads(s3.get_bucket_policy(Bucket="website")["Policy"])
    policy["Statement"].append(theirs)
    s3.put_bucket_policy(Bucket="website", Policy=json.dumps(policy))

    patch_spec(
        kube_env,
        ns,
        "buckets",
        "website",
        {
            "anonymousRead": False,
            "lifecycle": {"rules": []},
            "storageClass": "REDUCED_REDUNDANCY",
        },
    )
    cond = kube_env.wait(
        "generation reconciled", lambda: settings_applied(kube_env, ns, "website"), timeout=60
    )
    # the bucket works, but the storage class cannot be honoured, and the condition says so
    assert cond["status"] == "False" and cond["message"].startswith("not applied: storageClass:")
    warnings = kube_env.wait(
        "Warning Event",
        lambda: [e for e in kube_env.events(ns, "website") if e.reason == "SettingsNotApplied"],
        timeout=30,
    )
    assert warnings[0].type == "Warning" and "storageClass" in warnings[0].message
    assert anonymous_get(ip, "website", "index.html")[0] == 403
    assert json.loads(s3.get_bucket_policy(Bucket="website")["Policy"])["Statement"] == [theirs]
    with pytest.raises(ClientError, match="NoSuchLifecycleConfiguration"):
        s3.get_bucket_lifecycle_configuration(Bucket="website")
    custom_api(kube_env).delete_namespaced_custom_object(
        "anode.dev", "v1alpha1", ns, "buckets", "website"
    )
    kube_env.wait(
        "Bucket CR gone", lambda: kube_env.custom("buckets", ns, "website") is None, timeout=30
    )


def test_bucket_quota_is_set_on_the_node_and_enforced(kube_env, solo):
    ns, ip = solo
    create_bucket(
        kube_env,
        ns,
        "capped",
        {
            "clusterRef": {"name": "solo"},
            "deletionPolicy": "Delete",
            "quota": {"maxSize": "1Ki", "maxObjects": 2},
        },
    )
    cond = kube_env.wait(
        "settings applied", lambda: settings_applied(kube_env, ns, "capped"), timeout=60
    )
    assert cond["status"] == "True", cond
    admin = root_admin(kube_env, ns, "solo", ip)
    (doc,) = [b for b in admin.list_buckets() if b["name"] == "capped"]
    assert doc["quota"] == {"max_bytes": 1024, "max_objects": 2}
    s3 = s3_for(secret_data(kube_env, ns, "capped-bucket"), pod_ip=ip)
    s3.put_object(Bucket="capped", Key="a", Body=b"x" * 1000)
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket="capped", Key="b", Body=b"x" * 25)
    assert exc.value.response["Error"]["Code"] == "QuotaExceeded"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    # the timer refreshes the usage in the Bucket's status
    status = kube_env.wait(
        "usage in status",
        lambda: (
            (kube_env.custom("buckets", ns, "capped")["status"].get("usage") or {}).get("bytes")
            == 1000
            and kube_env.custom("buckets", ns, "capped")["status"]
        ),
        timeout=30,
    )
    assert status["usage"] == {"objects": 1, "bytes": 1000}
    assert status["quota"] == {"maxSize": "1Ki", "maxObjects": 2}
    # no quota in the spec: the operator removes it from the node
    patch_spec(kube_env, ns, "buckets", "capped", {"quota": None})  # merge patch: removed
    kube_env.wait(
        "quota removed",
        lambda: next(b for b in admin.list_buckets() if b["name"] == "capped")["quota"] is None,
        timeout=30,
    )
    s3.put_object(Bucket="capped", Key="b", Body=b"x" * 2000)
    custom_api(kube_env).delete_namespaced_custom_object(
        "anode.dev", "v1alpha1", ns, "buckets", "capped"
    )
    kube_env.wait(
        "Bucket CR gone", lambda: kube_env.custom("buckets", ns, "capped") is None, timeout=30
    )


@pytest.fixture(scope="module")
def trio(kube_env, operator_process, kubelets):
    ns = "nodes-three"
    create(
        kube_env,
        ns,
        "anodeclusters",
        {
            "apiVersion": "anode.dev/v1alpha1",
            "kind": "AnodeCluster",
            "metadata": {"name": "trio"},
            "spec": {"replicas": 3, "replicationFactor": 3, "image": "anode:1.0.0"},
        },
    )
    kube_env.wait("trio Ready", lambda: ready(kube_env, ns, "anodeclusters", "trio"), timeout=90)
    return ns


def statefulset_replicas(kube_env, ns: str, name: str) -> int:
    apps = kubernetes.client.AppsV1Api(kube_env.api)
    return apps.read_namespaced_stateful_set(name, ns).spec.replicas


def test_scale_3_to_5_to_3_one_pod_at_a_time(kube_env, operator_process, trio, kubelets):
    ns = trio
    seen: set[int] = set()

    def converged(target: int) -> bool:
        seen.add(statefulset_replicas(kube_env, ns, "trio"))
        obj = kube_env.custom("anodeclusters", ns, "trio")
        return (
            ready(kube_env, ns, "anodeclusters", "trio")
            and obj["status"]["readyReplicas"] == target
            and statefulset_replicas(kube_env, ns, "trio") == target
        )

    def voters() -> set[str]:
        admin = root_admin(kube_env, ns, "trio", kubelets[ns].ips["trio-0"])
        return {m["id"] for m in admin.status()["members"] if m.get("voter")}

    patch_spec(kube_env, ns, "anodeclusters", "trio", {"replicas": 5})
    kube_env.wait("5 Ready nodes", lambda: converged(5), timeout=120)
    assert set(kubelets[ns].ips) >= {f"trio-{i}" for i in range(5)}
    membership_api = not any(
        "no membership action needed" in line for line in operator_process.log_lines()
    )
    if membership_api:  # part-2 nodes: the new pods were promoted from learners
        assert voters() == {f"trio-{i}" for i in range(5)}
    patch_spec(kube_env, ns, "anodeclusters", "trio", {"replicas": 3})
    kube_env.wait("back to 3", lambda: converged(3), timeout=120)
    assert seen <= {3, 4, 5}
    events = kube_env.events(ns, "trio")
    ups = sorted(e.message for e in events if e.reason == "ScalingUp")
    downs = sorted(e.message for e in events if e.reason == "ScalingDown")
    assert ups == ["StatefulSet replicas 3 -> 4", "StatefulSet replicas 4 -> 5"]
    assert downs == ["StatefulSet replicas 4 -> 3", "StatefulSet replicas 5 -> 4"]
    promoted = sorted(e.message for e in events if e.reason == "MemberPromoted")
    removed = sorted(e.message for e in events if e.reason == "MemberRemoved")
    if membership_api:
        assert promoted == [f"trio-{i} promoted from learner to voter" for i in (3, 4)]
        assert removed == [f"trio-{i} drained and removed" for i in (3, 4)]
        assert voters() == {"trio-0", "trio-1", "trio-2"}
    else:  # nodes answer 501: logged, and no membership step was taken
        assert promoted == [] and removed == []


def test_rolling_upgrade_followers_first_leader_last(kube_env, trio, kubelets):
    ns = trio
    kubelet = kubelets[ns]
    before = len(kubelet.starts)
    leader = kube_env.custom("anodeclusters", ns, "trio")["status"]["leader"]
    patch_spec(kube_env, ns, "anodeclusters", "trio", {"image": "anode:1.1.0"})

    def upgraded() -> bool:
        restarted = [name for name, image in kubelet.starts[before:] if image == "anode:1.1.0"]
        return len(restarted) == 3 and ready(kube_env, ns, "anodeclusters", "trio")

    kube_env.wait("all pods on anode:1.1.0 and Ready", upgraded, timeout=150)
    order = [name for name, image in kubelet.starts[before:] if image == "anode:1.1.0"]
    assert order[-1] == leader, order
    assert order[:2] == sorted(order[:2], reverse=True)
    pods = kubernetes.client.CoreV1Api(kube_env.api).list_namespaced_pod(ns).items
    assert {p.spec.containers[0].image for p in pods} == {"anode:1.1.0"}
    restarts = [e for e in kube_env.events(ns, "trio") if e.reason == "RestartingPod"]
    assert len(restarts) == 3


def test_bucket_refuses_to_overwrite_a_foreign_secret(kube_env, solo):
    ns, _ = solo
    core = kubernetes.client.CoreV1Api(kube_env.api)
    core.create_namespaced_secret(
        ns, {"metadata": {"name": "taken"}, "stringData": {"mine": "precious"}}
    )
    create_bucket(kube_env, ns, "intruder", {"clusterRef": {"name": "solo"}, "secretName": "taken"})
    kube_env.wait(
        "Stalled=SecretConflict",
        lambda: (
            (kube_env.condition(kube_env.custom("buckets", ns, "intruder"), "Stalled") or {}).get(
                "reason"
            )
            == "SecretConflict"
        ),
    )
    assert secret_data(kube_env, ns, "taken") == {"mine": "precious"}
    custom_api(kube_env).delete_namespaced_custom_object(
        "anode.dev", "v1alpha1", ns, "buckets", "intruder"
    )


def test_tls_cluster_serves_https_and_the_operator_verifies_it(
    kube_env, operator_process, kubelets
):
    """The TLS Secret is mounted into the pod, the node serves S3 and admin over HTTPS, the
    operator's health checks, admin calls and S3 settings go over HTTPS trusting that
    certificate, and the Bucket's Secret names the https endpoint."""
    ns = "nodes-tls"
    ip = f"{kubelets[ns].subnet}10"  # the first pod of this kubelet
    cert, key = make_cert(Path(kubelets[ns].workdir) / "certs", ip=ip)
    kubernetes.client.CoreV1Api(kube_env.api).create_namespaced_secret(
        ns,
        {
            "metadata": {"name": "anode-tls"},
            "type": "kubernetes.io/tls",
            "data": {
                "tls.crt": base64.b64encode(cert.read_bytes()).decode(),
                "tls.key": base64.b64encode(key.read_bytes()).decode(),
            },
        },
    )
    create(
        kube_env,
        ns,
        "anodeclusters",
        {
            "apiVersion": "anode.dev/v1alpha1",
            "kind": "AnodeCluster",
            "metadata": {"name": "secure"},
            "spec": {"replicas": 1, "replicationFactor": 1, "tls": {"secretName": "anode-tls"}},
        },
    )
    kube_env.wait(
        "secure Ready", lambda: ready(kube_env, ns, "anodeclusters", "secure"), timeout=60
    )
    assert kubelets[ns].ips["secure-0"] == ip
    status = kube_env.custom("anodeclusters", ns, "secure")["status"]
    assert status["leader"] == "secure-0"  # asked over https
    assert status["endpoint"] == "https://secure.nodes-tls.svc:8080"
    create_bucket(
        kube_env,
        ns,
        "vault",
        {"clusterRef": {"name": "secure"}, "anonymousRead": True, "quota": {"maxObjects": 10}},
    )
    cond = kube_env.wait(
        "settings applied", lambda: settings_applied(kube_env, ns, "vault"), timeout=60
    )
    assert cond["status"] == "True", cond  # S3 (policy) and admin (quota) calls over https
    creds = secret_data(kube_env, ns, "vault-bucket")
    assert creds["AWS_ENDPOINT_URL"] == "https://secure.nodes-tls.svc:8080"
    s3 = boto3.client(
        "s3",
        endpoint_url=f"https://{ip}:8080",
        aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
        region_name=creds["AWS_REGION"],
        verify=str(cert),
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )
    s3.put_object(Bucket="vault", Key="k", Body=b"secret")
    assert s3.get_object(Bucket="vault", Key="k")["Body"].read() == b"secret"
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://{ip}:8080/vault/k", timeout=3).read()
