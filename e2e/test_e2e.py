"""Anode on a real Kubernetes cluster, end to end. The tests are steps that run in file order
(``-x`` stops at the first failure) and print their evidence and time: images, the Helm chart,
a 3-node AnodeCluster, S3 from the host and from pods, a Bucket's credentials, scaling 3->5->3,
a rolling image change under a writer, pod and PVC loss, garbage collection, ``helm uninstall``
and the GitOps install paths. ``e2e/run.sh`` runs them; settings in conftest.py."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import random
import subprocess
import tempfile
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from conftest import REPO, Settings
from kube import Kube, condition, evidence, load_images, pod_ready, step, wait_for

CLUSTER = "e2e"
SELECTOR = f"app.kubernetes.io/instance={CLUSTER},app.kubernetes.io/name=anode"
CRDS = {
    "anodeclusters.anode.dev",
    "buckets.anode.dev",
    "clusterkopfpeerings.kopf.dev",
    "kopfpeerings.kopf.dev",
}
CHUNK_LIST = (
    "import json, os; print(json.dumps(sorted(f for _, _, fs in os.walk('/var/lib/anode/chunks')"
    " for f in fs if len(f) == 64)))"
)
STATUS = (
    "import sys, urllib.request as u; r = u.Request('http://127.0.0.1:8081/status', "
    "headers={'Authorization': 'Bearer ' + sys.argv[1]}); "
    "print(u.urlopen(r, timeout=20).read().decode())"
)


# ------------------------------------------------------------------ helpers


def cluster_cr(kube: Kube, s: Settings) -> dict:
    return kube.get("-n", s.namespace, "anodecluster", CLUSTER)


def pods(kube: Kube, s: Settings) -> list[dict]:
    return kube.items("-n", s.namespace, "pods", "-l", SELECTOR)


def node_status(kube: Kube, s: Settings, state: dict, pod: str) -> dict:
    out = kube("-n", s.namespace, "exec", pod, "--", "python", "-c", STATUS, state["root_secret"])
    return json.loads(out)


def cluster_ready(kube: Kube, s: Settings, replicas: int) -> dict | None:
    """The AnodeCluster when kstatus says it is done: Ready, not Reconciling/Stalled, for the
    current generation, with ``replicas`` Ready members and a leader."""
    cr = cluster_cr(kube, s)
    st = cr.get("status", {})
    if (
        condition(cr, "Ready") == "True"
        and condition(cr, "Reconciling") == "False"
        and condition(cr, "Stalled") == "False"
        and st.get("observedGeneration") == cr["metadata"]["generation"]
        and st.get("readyReplicas") == replicas
        and st.get("leader")
    ):
        return cr
    return None


def describe(cr: dict) -> str:
    st = cr["status"]
    conds = ",".join(f"{c['type']}={c['status']}" for c in st.get("conditions", []))
    return (
        f"phase={st.get('phase')} readyReplicas={st.get('readyReplicas')} leader={st.get('leader')}"
        f" generation={cr['metadata']['generation']}"
        f" observedGeneration={st.get('observedGeneration')}"
        f" [{conds}]"
    )


def s3_client(port: int, creds: dict[str, str]):
    return boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
        config=Config(retries={"max_attempts": 8, "mode": "standard"}, read_timeout=60),
    )


def check_host_objects(kube: Kube, s: Settings, state: dict) -> str:
    """Every object written from the host reads back byte-exact through the Service."""
    with kube.port_forward(s.namespace, f"svc/{CLUSTER}", 8080) as port:
        s3 = s3_client(port, state["root"])
        for key, digest in state["objects"].items():
            body = s3.get_object(Bucket="host-data", Key=key)["Body"].read()
            assert hashlib.sha256(body).hexdigest() == digest, key
    return (
        f"{len(state['objects'])}/{len(state['objects'])} host objects byte-exact via port-forward"
    )


def fully_replicated(kube: Kube, s: Settings, state: dict, names: list[str]) -> str | None:
    """With replicationFactor == members, every member holds every chunk file: the same set on
    each, as many as the cluster's unique non-inline chunks."""
    sets = {
        p: set(json.loads(kube("-n", s.namespace, "exec", p, "--", "python", "-c", CHUNK_LIST)))
        for p in names
    }
    storage = node_status(kube, s, state, names[0])["storage"]
    files = storage["chunks"] - storage.get("inline_chunks", 0)
    counts = {p: len(v) for p, v in sets.items()}
    union = set().union(*sets.values())
    if all(v == union for v in sets.values()) and len(union) == files and files > 0:
        return f"every member holds all {files} chunk files ({counts})"
    evidence(f"  not yet: unique chunk files {files}, per member {counts}, union {len(union)}")
    return None


def run_client_pod(kube: Kube, s: Settings, name: str, secret: str, args: list[str]) -> None:
    kube.apply(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name, "namespace": s.namespace},
                "spec": {
                    "restartPolicy": "Never",
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001},
                    "containers": [
                        {
                            "name": "client",
                            "image": s.client_image,
                            "imagePullPolicy": "Never",
                            "args": args,
                            "envFrom": [{"secretRef": {"name": secret}}],
                            "env": [{"name": "HOME", "value": "/tmp"}],
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                        }
                    ],
                    "volumes": [{"name": "tmp", "emptyDir": {}}],
                },
            }
        )
    )


def pod_result(kube: Kube, s: Settings, name: str, timeout: float) -> dict:
    """Wait for a client pod to finish; its last JSON line (asserting it succeeded)."""
    phase = wait_for(
        f"pod {name} to finish",
        lambda: (
            kube.get("-n", s.namespace, "pod", name)["status"].get("phase")
            in ("Succeeded", "Failed")
            and kube.get("-n", s.namespace, "pod", name)["status"]["phase"]
        ),
        timeout,
    )
    logs = kube.pod_logs(s.namespace, name)
    lines = [ln for ln in logs.splitlines() if ln.startswith("{")]
    assert lines, f"pod {name} ({phase}) printed no result: {logs[-2000:]}"
    result = json.loads(lines[-1])
    assert phase == "Succeeded" and result["ok"], f"pod {name} {phase}: {result}"
    return result


PACKAGES = (
    "import importlib.metadata as m; "
    "print('\\n'.join(sorted(f'{d.name}=={d.version}' for d in m.distributions())))"
)


def pinned_packages(tag: str) -> str:
    """Every package in the image's venv has exactly the version constraints.txt pins."""
    out = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "--entrypoint", "python", tag, "-c",
         PACKAGES],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    pins = {
        ln.split("==")[0].lower().replace("_", "-"): ln.split("==")[1]
        for ln in (REPO / "constraints.txt").read_text().splitlines()
        if "==" in ln and not ln.startswith("#")
    }
    installed = {ln.split("==")[0].lower().replace("_", "-"): ln.split("==")[1] for ln in out}
    installed.pop("anode")
    assert {n: pins.get(n) for n in installed} == installed, "packages not from constraints.txt"
    return f"{len(installed)} packages, each at its constraints.txt version, no pip"


# ------------------------------------------------------------------ steps


@pytest.mark.timeout(1800)  # builds from scratch on a loaded machine take minutes
def test_images_build_and_load(settings: Settings):
    s = settings
    with step("images build (node, operator, e2e client) and reach the cluster's node"):
        revision = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
        builds = [
            ("Dockerfile.node", REPO, s.node_image),
            ("Dockerfile.operator", REPO, s.operator_image),
            ("Dockerfile", REPO / "e2e" / "client", s.client_image),
        ]
        for dockerfile, context, tag in builds:
            if s.build:
                t0 = time.monotonic()
                cmd = [
                    "docker",
                    "build",
                    "--network",
                    "host",
                    "-q",
                    "-f",
                    str(context / dockerfile),
                ]
                cmd += ["--build-arg", f"REVISION={revision}", "-t", tag, str(context)]
                built = subprocess.run(cmd, capture_output=True, text=True)
                assert built.returncode == 0, f"{' '.join(cmd)}: {built.stdout}{built.stderr}"
                evidence(f"docker build -f {dockerfile} -t {tag}: {time.monotonic() - t0:.0f}s")
            info = json.loads(
                subprocess.run(
                    ["docker", "image", "inspect", tag], capture_output=True, text=True, check=True
                ).stdout
            )[0]
            labels = info["Config"].get("Labels") or {}
            evidence(
                f"{tag}: {info['Size'] / 1e6:.0f} MB, user {info['Config'].get('User')!r}, "
                f"revision label {labels.get('org.opencontainers.image.revision', '-')[:12]}"
            )
            assert info["Config"].get("User") == "10001:10001"
            if dockerfile != "Dockerfile":
                assert labels.get("org.opencontainers.image.title")
                evidence(f"{tag}: {pinned_packages(tag)}")
        subprocess.run(["docker", "tag", s.node_image, s.next_image], check=True)
        how = load_images(
            s.image_load, [s.node_image, s.next_image, s.operator_image, s.client_image]
        )
        evidence(f"loaded with E2E_IMAGE_LOAD={s.image_load}: {how}")


def test_helm_install(kube: Kube, settings: Settings, state: dict):
    s = settings
    with step(f"helm install of charts/anode (operator replicas {s.operator_replicas})"):
        repo, tag = s.operator_image.split(":")
        t0 = time.monotonic()
        kube.helm_run(
            "install",
            "anode",
            str(REPO / "charts" / "anode"),
            "--namespace",
            s.operator_namespace,
            "--create-namespace",
            "--set",
            f"operator.image.repository={repo}",
            "--set",
            f"operator.image.tag={tag}",
            "--set",
            "operator.image.pullPolicy=Never",
            "--set",
            f"operator.replicas={s.operator_replicas}",
            "--wait",
            "--timeout",
            "5m",
        )
        evidence(f"helm install --wait: {time.monotonic() - t0:.0f}s")
        crds = {c["metadata"]["name"]: c for c in kube.items("crd")}
        assert set(crds) >= CRDS
        for name in sorted(CRDS):
            assert condition(crds[name], "Established") == "True", name
        evidence(f"CRDs Established: {', '.join(sorted(CRDS))}")
        (deploy,) = kube.items(
            "-n", s.operator_namespace, "deploy", "-l", "app.kubernetes.io/instance=anode"
        )
        st = deploy["status"]
        assert st.get("readyReplicas") == s.operator_replicas == st.get("availableReplicas")
        evidence(
            f"deployment {deploy['metadata']['name']}: "
            f"{st['readyReplicas']}/{s.operator_replicas} Ready"
        )
        state["operator_deploy"] = deploy["metadata"]["name"]


def test_anodecluster_becomes_ready(kube: Kube, settings: Settings, state: dict):
    s = settings
    with step("a 3-node AnodeCluster and two Buckets become Ready, with a leader"):
        storage = {"size": "1Gi"}
        if s.storage_class:
            storage["storageClassName"] = s.storage_class
        kube("create", "namespace", s.namespace)
        docs = [
            {
                "apiVersion": "anode.dev/v1alpha1",
                "kind": "AnodeCluster",
                "metadata": {"name": CLUSTER, "namespace": s.namespace},
                "spec": {
                    "replicas": 3,
                    "replicationFactor": 3,
                    "image": s.node_image,
                    "imagePullPolicy": "Never",
                    "storage": storage,
                    "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}},
                },
            },
            *(
                {
                    "apiVersion": "anode.dev/v1alpha1",
                    "kind": "Bucket",
                    "metadata": {"name": b, "namespace": s.namespace},
                    "spec": {"clusterRef": {"name": CLUSTER}, "deletionPolicy": "Retain"},
                }
                for b in ("smoke", "other")
            ),
        ]
        t0 = time.monotonic()
        kube.apply(json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}))
        cr = wait_for("AnodeCluster Ready", lambda: cluster_ready(kube, s, 3), 300)
        evidence(f"Ready {time.monotonic() - t0:.0f}s after kubectl apply: {describe(cr)}")
        names = sorted(p["metadata"]["name"] for p in pods(kube, s))
        assert names == [f"{CLUSTER}-{i}" for i in range(3)]
        assert cr["status"]["leader"] in names
        state["root"] = kube.secret(s.namespace, f"{CLUSTER}-credentials")
        state["root_secret"] = state["root"]["AWS_SECRET_ACCESS_KEY"]
        st = node_status(kube, s, state, f"{CLUSTER}-0")
        members = sorted(m["id"] for m in st["members"])
        assert members == names and all(m["healthy"] for m in st["members"])
        assert st["leader"] == cr["status"]["leader"]
        evidence(f"node {CLUSTER}-0 /status: leader {st['leader']}, members {members} all healthy")
        for b in ("smoke", "other"):
            bucket = wait_for(
                f"Bucket {b} Ready",
                lambda b=b: (
                    condition(got := kube.get("-n", s.namespace, "bucket", b), "Ready") == "True"
                    and got
                ),
                120,
            )
            assert bucket["status"]["observedGeneration"] == bucket["metadata"]["generation"]
        evidence("Buckets smoke, other: Ready (observedGeneration current)")


def test_s3_from_the_host_via_port_forward(kube: Kube, settings: Settings, state: dict):
    s = settings
    with step("S3 from the host through `kubectl port-forward svc/e2e`"):
        rng = random.Random(13)
        sizes = [0, 1, 1000, 32 * 1024, 100_000, 1 << 20, 4 << 20, (4 << 20) + 1, 9 << 20]
        sizes += [rng.randint(50_000, 2_000_000) for _ in range(11)]
        state["objects"] = {}
        with kube.port_forward(s.namespace, f"svc/{CLUSTER}", 8080) as port:
            s3 = s3_client(port, state["root"])
            s3.create_bucket(Bucket="host-data")
            t0 = time.monotonic()
            for i, size in enumerate(sizes):
                body = rng.randbytes(size)
                s3.put_object(Bucket="host-data", Key=f"obj-{i:02d}", Body=body)
                state["objects"][f"obj-{i:02d}"] = hashlib.sha256(body).hexdigest()
            evidence(
                f"PUT {len(sizes)} objects, {sum(sizes) / 1e6:.1f} MB (0 B .. 9 MiB) in "
                f"{time.monotonic() - t0:.1f}s via 127.0.0.1:{port}"
            )
            listed = s3.list_objects_v2(Bucket="host-data")["KeyCount"]
            assert listed == len(sizes)
        evidence(check_host_objects(kube, s, state))


def test_bucket_secret_works_from_a_pod_and_only_for_its_bucket(
    kube: Kube, settings: Settings, state: dict
):
    s = settings
    with step("a pod with the Bucket's Secret: S3 through the Service, refused on other buckets"):
        secret = kube.secret(s.namespace, "smoke-bucket")
        assert set(secret) >= {
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_ENDPOINT_URL",
            "BUCKET_NAME",
        }
        assert secret["AWS_ACCESS_KEY_ID"] != state["root"]["AWS_ACCESS_KEY_ID"]
        evidence(
            f"Secret smoke-bucket: endpoint {secret['AWS_ENDPOINT_URL']}, "
            f"bucket {secret['BUCKET_NAME']}, own access key"
        )
        run_client_pod(
            kube,
            s,
            "s3-roundtrip",
            "smoke-bucket",
            ["roundtrip", "--other", "other", "--other", "host-data"],
        )
        result = pod_result(kube, s, "s3-roundtrip", 240)
        evidence(
            f"pod s3-roundtrip: boto3 3 MiB equal={result['boto3_equal']}, aws CLI "
            f"equal={result['cli_equal']}, listed {result['listed']}"
        )
        evidence(f"refused: {result['refused']}")


def test_operator_standby_takes_over(kube: Kube, settings: Settings):
    s = settings
    if s.operator_replicas < 2:
        pytest.skip("one operator replica: no standby")
    with step("operator HA: delete the active replica; the standby takes over and reconciles"):
        (lease,) = kube.items("-n", s.operator_namespace, "lease")
        identity = lease["spec"]["holderIdentity"]  # <pod name>-<pid>-<random>
        (active,) = [
            p["metadata"]["name"]
            for p in kube.items("-n", s.operator_namespace, "pods")
            if identity.startswith(p["metadata"]["name"] + "-")
        ]
        evidence(f"Lease {lease['metadata']['name']} held by {identity} (pod {active})")
        t0 = time.monotonic()
        kube("-n", s.operator_namespace, "delete", "pod", active, "--wait=false")

        def new_holder():
            spec = kube.get("-n", s.operator_namespace, "lease", lease["metadata"]["name"])["spec"]
            holder = spec.get("holderIdentity") or ""
            return holder and not holder.startswith(active + "-") and holder

        holder = wait_for("another holder of the Lease", new_holder, 90, interval=1)
        evidence(f"{holder} holds the Lease {time.monotonic() - t0:.1f}s after the delete")
        kube.apply(
            json.dumps(
                {
                    "apiVersion": "anode.dev/v1alpha1",
                    "kind": "Bucket",
                    "metadata": {"name": "failover", "namespace": s.namespace},
                    "spec": {"clusterRef": {"name": CLUSTER}, "deletionPolicy": "Retain"},
                }
            )
        )
        wait_for(
            "Bucket failover Ready",
            lambda: condition(kube.get("-n", s.namespace, "bucket", "failover"), "Ready") == "True",
            120,
        )
        evidence(f"a new Bucket reconciled by {holder}: Ready {time.monotonic() - t0:.0f}s after")


def scale(kube: Kube, s: Settings, state: dict, replicas: int) -> None:
    before = cluster_cr(kube, s)["metadata"]["generation"]
    t0 = time.monotonic()
    kube(
        "-n",
        s.namespace,
        "patch",
        "anodecluster",
        CLUSTER,
        "--type",
        "merge",
        "-p",
        json.dumps({"spec": {"replicas": replicas}}),
    )
    seen: set[str] = set()

    def done():
        cr = cluster_cr(kube, s)
        if condition(cr, "Reconciling") == "True":
            seen.add(cr["status"].get("phase", "?"))
        return cluster_ready(kube, s, replicas)

    cr = wait_for(f"{replicas} Ready replicas", done, 600, interval=3)
    assert cr["metadata"]["generation"] > before
    assert seen, "Reconciling=True never observed while scaling (kstatus)"
    evidence(
        f"{replicas} Ready in {time.monotonic() - t0:.0f}s; Reconciling=True was seen "
        f"(phases {sorted(seen) or 'none'}); then {describe(cr)}"
    )
    names = sorted(p["metadata"]["name"] for p in pods(kube, s))
    assert names == [f"{CLUSTER}-{i}" for i in range(replicas)]
    st = node_status(kube, s, state, f"{CLUSTER}-0")
    voters = sorted(m["id"] for m in st["members"])
    assert voters == names, voters
    evidence(f"Raft members {voters}")


@pytest.mark.timeout(1200)
def test_scale_3_to_5_to_3(kube: Kube, settings: Settings, state: dict):
    s = settings
    with step("scale 3 -> 5"):
        scale(kube, s, state, 5)
        evidence(check_host_objects(kube, s, state))
    with step("scale 5 -> 3 (drain), every object readable, every chunk fully replicated"):
        scale(kube, s, state, 3)
        evidence(check_host_objects(kube, s, state))
        names = [f"{CLUSTER}-{i}" for i in range(3)]
        evidence(
            wait_for(
                "full replication",
                lambda: fully_replicated(kube, s, state, names),
                240,
                interval=10,
            )
        )


def events(kube: Kube, s: Settings) -> list[tuple[str, str]]:
    items = kube.items(
        "-n",
        s.namespace,
        "events",
        "--field-selector",
        f"involvedObject.name={CLUSTER},involvedObject.kind=AnodeCluster",
    )
    items.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
    return [(e["reason"], e.get("message", "")) for e in items]


@pytest.mark.timeout(1200)
def test_image_change_rolls_one_pod_at_a_time_leader_last(
    kube: Kube, settings: Settings, state: dict
):
    s = settings
    with step("image change with a writer running: one pod at a time, leader last"):
        run_client_pod(
            kube,
            s,
            "writer",
            "smoke-bucket",
            ["writer", "--prefix", "upgrade", "--max-seconds", "900"],
        )
        wait_for(
            "the writer's first acknowledged writes",
            lambda: '"progress": 20' in kube.pod_logs(s.namespace, "writer"),
            120,
        )
        leader = node_status(kube, s, state, f"{CLUSTER}-0")["leader"]
        first = {p["metadata"]["name"]: p["metadata"]["uid"] for p in pods(kube, s)}
        evidence(
            f"writer running; leader {leader}; patching image {s.node_image} -> {s.next_image}"
        )
        t0 = time.monotonic()
        kube(
            "-n",
            s.namespace,
            "patch",
            "anodecluster",
            CLUSTER,
            "--type",
            "merge",
            "-p",
            json.dumps({"spec": {"image": s.next_image}}),
        )
        restarted: list[str] = []  # in the order the old pods went away
        down: dict[str, float] = {}  # pod -> when its restart began
        windows: list[tuple[str, float, float]] = []
        max_unready = 0
        handed_over: list[str] = []
        leader_at_down = leader
        deadline = time.monotonic() + 900
        while True:
            now = time.monotonic()
            current = {p["metadata"]["name"]: p for p in pods(kube, s)}
            unready = 0
            for name, uid in first.items():
                p = current.get(name)
                replaced = (
                    p is None
                    or p["metadata"]["uid"] != uid
                    or bool(p["metadata"].get("deletionTimestamp"))
                )
                if replaced and name not in down:
                    down[name] = now
                    restarted.append(name)
                    if name == leader:  # what the operator and the nodes said by then
                        others = [n for n in first if n != leader]
                        leader_at_down = node_status(kube, s, state, others[0]).get("leader")
                        handed_over = [
                            m for r, m in events(kube, s) if r == "LeadershipTransferred"
                        ]
                if p is None or not pod_ready(p):
                    unready += 1
                elif (
                    name in down
                    and not any(w[0] == name for w in windows)
                    and p["metadata"]["uid"] != uid
                ):
                    windows.append((name, down[name], now))
            max_unready = max(max_unready, unready)
            images = {p["spec"]["containers"][0]["image"] for p in current.values()}
            if images == {s.next_image} and len(windows) == 3 and cluster_ready(kube, s, 3):
                break
            assert now < deadline, f"rollout unfinished: restarted {restarted}, images {images}"
            time.sleep(1)
        evidence(
            f"rolled in {time.monotonic() - t0:.0f}s; restart order {restarted}; "
            f"at most {max_unready} pod(s) not Ready at once"
        )
        for name, start, end in windows:
            evidence(f"  {name}: down at +{start - t0:.0f}s, Ready again at +{end - t0:.0f}s")
        assert sorted(restarted) == sorted(first) and restarted[-1] == leader
        ordered = sorted(windows, key=lambda w: w[1])
        for (a, _, a_end), (b, b_start, _) in itertools.pairwise(ordered):
            assert b_start >= a_end - 1.5, f"{b} went down before {a} was Ready again"
        assert max_unready <= 1
        evidence(
            f"when {leader} went down: LeadershipTransferred events {handed_over}, "
            f"the cluster's leader per another member: {leader_at_down}"
        )
        # the operator deletes the old leader's pod only when it sees another leader: after its
        # own transfer (LeadershipTransferred), or after leadership moved by itself; each
        # RestartingPod event names the leader that decision saw
        decided = [
            m for r, m in events(kube, s) if r == "RestartingPod" and m.startswith(f"{leader} ")
        ]
        evidence(f"the operator's restart of {leader}: {decided}")
        assert decided and all(f"(leader {leader})" not in m for m in decided), (
            f"{leader} was restarted while the operator saw it lead: {decided}"
        )
        new_leader = node_status(kube, s, state, f"{CLUSTER}-0")["leader"]
        evidence(f"leader now {new_leader}")
        kube("-n", s.namespace, "exec", "writer", "--", "touch", "/tmp/stop")
        result = pod_result(kube, s, "writer", 300)
        evidence(
            f"writer: {result['acknowledged']} PUT+GET acknowledged in {result['seconds']}s, "
            f"failures {result['failures']}, lost {result['lost']}, slowest "
            f"{result['slowest_put_get_s']}s (boto3 standard retries, 10 attempts)"
        )
        evidence(check_host_objects(kube, s, state))


@pytest.mark.timeout(900)
def test_deleted_node_pod_recovers(kube: Kube, settings: Settings, state: dict):
    s = settings
    victim = f"{CLUSTER}-1"
    with step(f"delete pod {victim}: recreated, rejoins, the cluster is Ready again"):
        uid = kube.get("-n", s.namespace, "pod", victim)["metadata"]["uid"]
        t0 = time.monotonic()
        kube("-n", s.namespace, "delete", "pod", victim, "--wait=false")
        wait_for(
            f"{victim} replaced and Ready",
            lambda: (
                (p := kube.get("-n", s.namespace, "pod", victim))["metadata"]["uid"] != uid
                and pod_ready(p)
            ),
            300,
        )
        cr = wait_for("cluster Ready", lambda: cluster_ready(kube, s, 3), 300)
        evidence(f"recovered in {time.monotonic() - t0:.0f}s: {describe(cr)}")
        evidence(check_host_objects(kube, s, state))


@pytest.mark.timeout(900)
def test_deleted_pvc_recovers(kube: Kube, settings: Settings, state: dict):
    s = settings
    victim = f"{CLUSTER}-2"
    pvc = f"data-{victim}"
    with step(f"delete PVC {pvc} (and its pod): a new empty volume, refilled from the others"):
        old = kube.get("-n", s.namespace, "pvc", pvc)["metadata"]["uid"]
        t0 = time.monotonic()
        kube("-n", s.namespace, "delete", "pvc", pvc, "--wait=false")
        kube("-n", s.namespace, "delete", "pod", victim, "--wait=false")
        fresh = wait_for(
            f"a new {pvc} Bound",
            lambda: (
                (c := kube.get("-n", s.namespace, "pvc", pvc))["metadata"]["uid"] != old
                and c["status"].get("phase") == "Bound"
                and c
            ),
            300,
        )
        evidence(f"new PVC {pvc} bound to {fresh['spec']['volumeName']}")
        wait_for(
            f"{victim} Ready", lambda: pod_ready(kube.get("-n", s.namespace, "pod", victim)), 300
        )
        # an empty volume under the old member id must not vote: it rejoins as a learner, the
        # operator removes its old voter entry, then promotes it (node: cluster/rejoin.py)
        rejoined = wait_for(
            "the operator's MemberRejoining event",
            lambda: [m for r, m in events(kube, s) if r == "MemberRejoining" and victim in m],
            300,
            interval=3,
        )
        evidence(f"operator: {rejoined[-1]}")

        def voter_again():
            mine = node_status(kube, s, state, victim)
            leader = node_status(kube, s, state, f"{CLUSTER}-0")
            voters = {m["id"] for m in leader["members"] if m.get("voter")}
            if mine.get("rejoin") is None and mine["role"] != "learner" and victim in voters:
                return f"{victim} role {mine['role']}, voters {sorted(voters)}"
            evidence(f"  {victim}: role {mine['role']}, rejoin {mine.get('rejoin')}")
            return None

        evidence(wait_for(f"{victim} a voter again", voter_again, 300, interval=3))
        cr = wait_for("cluster Ready", lambda: cluster_ready(kube, s, 3), 300)
        evidence(f"Ready again in {time.monotonic() - t0:.0f}s: {describe(cr)}")
        names = [f"{CLUSTER}-{i}" for i in range(3)]
        evidence(
            wait_for(
                "the new volume refilled",
                lambda: fully_replicated(kube, s, state, names),
                300,
                interval=10,
            )
        )
        evidence(check_host_objects(kube, s, state))


@pytest.mark.timeout(600)
def test_deleting_the_anodecluster_collects_everything(kube: Kube, settings: Settings):
    s = settings
    with step("delete the Buckets and the AnodeCluster: everything it owned is collected"):
        kube("-n", s.namespace, "delete", "pod", "s3-roundtrip", "writer", "--wait=false")
        buckets = [b["metadata"]["name"] for b in kube.items("-n", s.namespace, "bucket")]
        kube("-n", s.namespace, "delete", "bucket", *buckets, "--timeout=120s")
        t0 = time.monotonic()
        kube("-n", s.namespace, "delete", "anodecluster", CLUSTER, "--timeout=300s")
        evidence(
            f"kubectl delete anodecluster returned after {time.monotonic() - t0:.0f}s "
            "(finalizer done)"
        )
        kinds = "statefulset,service,configmap,secret,pod,poddisruptionbudget"

        def leftovers():
            left = [
                f"{o['kind']}/{o['metadata']['name']}"
                for o in kube.items("-n", s.namespace, kinds)
                if o["kind"] != "ConfigMap" or o["metadata"]["name"] != "kube-root-ca.crt"
                if not o["metadata"]["name"].startswith("default-token")
            ]
            return "nothing" if not left else (evidence(f"  still there: {left}") and None)

        wait_for("garbage collection", leftovers, 180, interval=5)
        evidence(
            f"no StatefulSet/Service/ConfigMap/Secret/Pod/PDB left in {s.namespace} after "
            f"{time.monotonic() - t0:.0f}s"
        )
        pvcs = [c["metadata"]["name"] for c in kube.items("-n", s.namespace, "pvc")]
        evidence(f"PVCs kept by design (the data; README): {pvcs}; deleting them and the namespace")
        kube("delete", "namespace", s.namespace, "--timeout=300s")


@pytest.mark.timeout(600)
def test_helm_uninstall_leaves_nothing(kube: Kube, settings: Settings):
    s = settings
    with step("helm uninstall leaves nothing behind (CRDs: Helm never deletes crds/, we do)"):
        kube.helm_run("uninstall", "anode", "--namespace", s.operator_namespace, "--wait")

        def leftovers():
            left = [
                f"{o['kind']}/{o['metadata']['name']}"
                for o in kube.items(
                    "-n",
                    s.operator_namespace,
                    "deploy,replicaset,pod,serviceaccount,role,rolebinding,lease",
                )
                if not o["metadata"]["name"].startswith("default")
            ]
            left += [
                f"{o['kind']}/{o['metadata']['name']}"
                for o in kube.items("clusterrole,clusterrolebinding,clusterkopfpeering")
                if "anode" in o["metadata"]["name"]
            ]
            return "nothing" if not left else (evidence(f"  still there: {left}") and None)

        # the Lease is owned by its holder's Pod (the release on SIGTERM fails once uninstall
        # took the RBAC away): collected with it
        t0 = time.monotonic()
        wait_for("nothing of the release left", leftovers, 180, interval=5)
        left_crds = sorted({c["metadata"]["name"] for c in kube.items("crd")} & CRDS)
        evidence(
            f"no Deployment/Pod/ServiceAccount/RBAC/Lease/peering left after "
            f"{time.monotonic() - t0:.0f}s; CRDs kept by Helm: {left_crds}"
        )
        kube("delete", "namespace", s.operator_namespace, "--timeout=300s")


def gitops_install(
    kube: Kube, s: Settings, how: str, apply: list[str], diff: list[str], manifest: str | None
) -> None:
    t0 = time.monotonic()
    first = kube(*apply, input=manifest)
    wait_for(
        "the operator Ready",
        lambda: (
            (d := kube.get("-n", s.operator_namespace, "deploy", "anode-operator"))["status"].get(
                "readyReplicas"
            )
            == d["spec"]["replicas"]
        ),
        180,
    )
    second = kube(*apply, input=manifest)
    changed = [ln for ln in second.splitlines() if not ln.endswith(" unchanged")]
    evidence(
        f"{how}: {len(first.splitlines())} objects applied, operator Ready in "
        f"{time.monotonic() - t0:.0f}s; second apply: {len(second.splitlines())} unchanged"
    )
    assert not changed, changed
    out = kube.run(*diff, input=manifest, check=False)
    assert out.returncode == 0 and not out.stdout.strip(), out.stdout + out.stderr
    evidence(f"{how}: kubectl diff empty (exit 0)")


@pytest.mark.timeout(900)
def test_gitops_kustomize_and_helm_template_apply_idempotently(kube: Kube, settings: Settings):
    s = settings
    repo, tag = s.operator_image.split(":")
    with (
        step("kubectl apply -k: installs, a second apply changes nothing, kubectl diff empty"),
        tempfile.TemporaryDirectory() as overlay,
    ):
        # the user's overlay: this repository as the base, the image built here
        Path(overlay, "kustomization.yaml").write_text(
            json.dumps(
                {
                    "apiVersion": "kustomize.config.k8s.io/v1beta1",
                    "kind": "Kustomization",
                    "resources": [os.path.relpath(REPO, overlay)],
                    "images": [
                        {"name": "ghcr.io/anode-dev/anode-operator", "newName": repo, "newTag": tag}
                    ],
                    "patches": [
                        {
                            "target": {"kind": "Deployment", "name": "anode-operator"},
                            "patch": json.dumps(
                                [
                                    {
                                        "op": "replace",
                                        "path": "/spec/template/spec/containers/0/imagePullPolicy",
                                        "value": "Never",
                                    },
                                    {
                                        "op": "replace",
                                        "path": "/spec/replicas",
                                        "value": s.operator_replicas,
                                    },
                                ]
                            ),
                        }
                    ],
                }
            )
        )
        gitops_install(kube, s, "apply -k", ["apply", "-k", overlay], ["diff", "-k", overlay], None)
        kube("delete", "-k", overlay, "--timeout=300s")
    with step("helm template --include-crds | kubectl apply -f -: same idempotence"):
        kube("create", "namespace", s.operator_namespace)
        manifest = kube.helm_run(
            "template", "anode", str(REPO / "charts" / "anode"), "-n", s.operator_namespace,
            "--include-crds",
            "--set", f"operator.image.repository={repo}", "--set", f"operator.image.tag={tag}",
            "--set", "operator.image.pullPolicy=Never",
            "--set", f"operator.replicas={s.operator_replicas}",
        )  # fmt: skip
        gitops_install(
            kube, s, "helm template | apply", ["apply", "-f", "-"], ["diff", "-f", "-"], manifest
        )
        kube("delete", "-f", "-", "--timeout=300s", input=manifest)
        kube("delete", "namespace", s.operator_namespace, "--timeout=300s")
        evidence("removed again (CRDs included)")
