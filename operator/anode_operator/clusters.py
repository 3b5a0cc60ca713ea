"""One reconcile pass of an ``AnodeCluster``: observe, refuse unsafe specs, take at most one
scaling or upgrade step, apply the rendered children, and compute the status.

Called by the kopf change handlers and, every few seconds, by the timer; each pass is idempotent
and short (a step that has to wait returns and the next pass looks again), so nothing blocks a
worker thread and an operator restart resumes where the last one stopped. A per-cluster lock keeps
the timer and a change handler from stepping the same cluster twice at once.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from anode_operator import constants as c
from anode_operator import naming, rollout, scaling
from anode_operator.admin import AdminClient, AdminError, NotSupported, Unreachable
from anode_operator.kube import Kube
from anode_operator.model import Cluster, parse_cluster, parse_duration
from anode_operator.observe import ClusterState, admin_clients, observe, peer_address
from anode_operator.render import (
    Credentials,
    credentials_secret_name,
    endpoint,
    formed,
    parse_voters,
    render,
)
from anode_operator.safety import Violation, check_spec
from anode_operator.status import (
    Observation,
    Progress,
    compute_status,
    track_wait,
    transitions,
    waited,
)
from anode_operator.tlsclient import cluster_context

log = logging.getLogger(__name__)

Emit = Callable[[str, str, str], None]  # (type Normal|Warning, reason, message)


@dataclass
class NodeCapabilities:
    """What the nodes told us they cannot do (501), remembered per cluster uid."""

    membership: bool = True
    leadership: bool = True


@dataclass
class Memory:
    locks: dict[str, threading.Lock] = field(default_factory=dict)
    capabilities: dict[str, NodeCapabilities] = field(default_factory=dict)
    guard: threading.Lock = field(default_factory=threading.Lock)

    def lock(self, uid: str) -> threading.Lock:
        with self.guard:
            return self.locks.setdefault(uid, threading.Lock())

    def caps(self, uid: str) -> NodeCapabilities:
        with self.guard:
            return self.capabilities.setdefault(uid, NodeCapabilities())

    def forget(self, uid: str) -> None:
        with self.guard:
            self.locks.pop(uid, None)
            self.capabilities.pop(uid, None)


MEMORY = Memory()


def generate_credentials() -> Credentials:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return Credentials(
        root_access_key="AK" + "".join(secrets.choice(alphabet) for _ in range(18)),
        root_secret_key=secrets.token_urlsafe(30),
        cluster_secret=secrets.token_urlsafe(32),
    )


def _credentials(
    kube: Kube, cluster: Cluster, violations: list[Violation]
) -> tuple[Credentials | None, str | None]:
    """(credentials to render, root secret key for the admin API)."""
    name = credentials_secret_name(cluster)
    data = kube.read_secret(namespace=cluster.namespace, name=name)
    if cluster.spec.credentials_secret:
        if data is None or c.ROOT_SECRET_KEY not in data:
            violations.append(
                Violation(
                    "CredentialsSecretMissing",
                    f"Secret {name} with keys {c.ROOT_ACCESS_KEY}, {c.ROOT_SECRET_KEY}, "
                    f"{c.CLUSTER_SECRET_KEY} not found",
                )
            )
            return None, None
        return None, data[c.ROOT_SECRET_KEY]
    if data and all(k in data for k in (c.ROOT_ACCESS_KEY, c.ROOT_SECRET_KEY)):
        creds = Credentials(
            root_access_key=data[c.ROOT_ACCESS_KEY],
            root_secret_key=data[c.ROOT_SECRET_KEY],
            cluster_secret=data.get(c.CLUSTER_SECRET_KEY) or secrets.token_urlsafe(32),
        )
        return creds, creds.root_secret_key
    return generate_credentials(), None


def _leader_client(
    clients: dict[int, AdminClient], state: ClusterState, cluster: str
) -> AdminClient | None:
    leader = state.leader_ordinal(cluster)
    if leader is not None and leader in clients:
        return clients[leader]
    return next(iter(clients.values()), None)


def _scale_step(
    cluster: Cluster,
    state: ClusterState,
    clients: dict[int, AdminClient],
    caps: NodeCapabilities,
    emit: Emit,
) -> tuple[int, Progress]:
    """Execute at most one scaling step; returns (StatefulSet replicas to render, progress)."""
    current = state.current_replicas
    for _ in range(3):  # a 501 turns a membership step into "no action", then re-plan
        step = scaling.plan_scale(
            desired=cluster.spec.replicas,
            current=current,
            ready=state.ready,
            members=state.members(cluster.name),
            membership_api=caps.membership,
            rejoining=state.rejoining(),
        )
        client = _leader_client(clients, state, cluster.name)
        try:
            match step:
                case scaling.Done():
                    return current, Progress()
                case scaling.Hold(reason=reason, message=message):
                    return current, Progress("Scaling", reason, message)
                case scaling.SetReplicas(replicas=n):
                    verb = "ScalingUp" if n > current else "ScalingDown"
                    emit("Normal", verb, f"StatefulSet replicas {current} -> {n}")
                    return n, Progress("Scaling", verb, f"StatefulSet {current} -> {n}")
                case scaling.AddMember(ordinal=i) if client is not None and i in state.pods:
                    node = naming.pod(cluster.name, i)
                    address = peer_address(
                        pod=state.pods[i], cluster=cluster.name, namespace=cluster.namespace
                    )
                    client.add_member(node_id=node, address=address)
                    emit("Normal", "MemberPromoted", f"{node} promoted from learner to voter")
                    return current, Progress("Scaling", "MemberPromoted", f"{node} is a voter")
                case scaling.RemoveStaleVoter(ordinal=i) if client is not None:
                    node = naming.pod(cluster.name, i)
                    client.remove_member(node_id=node, rejoin=True)
                    emit(
                        "Warning",
                        "MemberRejoining",
                        f"{node} lost its volume: its old voter entry is removed, it rejoins "
                        "as a learner and is promoted once caught up",
                    )
                    return current, Progress("Scaling", "MemberRejoining", f"{node} rejoins")
                case scaling.DecommissionMember(ordinal=i) if client is not None:
                    node = naming.pod(cluster.name, i)
                    if not client.drain_member(node_id=node):
                        return current, Progress("Scaling", "Draining", f"draining {node}")
                    client.remove_member(node_id=node)
                    emit("Normal", "MemberRemoved", f"{node} drained and removed")
                    return current, Progress("Scaling", "MemberRemoved", f"{node} removed")
                case _:
                    return current, Progress("Scaling", "NoNodeReachable", "no admin API answers")
        except NotSupported:
            log.info(
                "cluster %s/%s: nodes answer 501 to membership changes (single-node or "
                "membership not yet supported by the node): no membership action needed, "
                "scaling the StatefulSet only",
                cluster.namespace,
                cluster.name,
            )
            caps.membership = False
        except (AdminError, Unreachable) as exc:
            return current, Progress("Scaling", "AdminAPIError", str(exc)[:200])
    return current, Progress("Scaling", "Replanning", "membership capabilities changed")


def _rollout_step(
    cluster: Cluster,
    state: ClusterState,
    clients: dict[int, AdminClient],
    caps: NodeCapabilities,
    kube: Kube,
    emit: Emit,
) -> Progress:
    if state.statefulset is None:
        return Progress()
    if not state.statefulset_observed:
        return Progress("Upgrading", "StatefulSetNotObserved", "waiting for the controller")
    for _ in range(2):
        step = rollout.plan_rollout(
            pods=state.pod_views(),
            replicas=state.current_replicas,
            update_revision=state.update_revision,
            leader=state.leader_ordinal(cluster.name),
            leadership_api=caps.leadership,
        )
        match step:
            case rollout.Done():
                return Progress()
            case rollout.Hold(reason=reason, message=message):
                return Progress("Upgrading", reason, message)
            case rollout.RestartPod(ordinal=i):
                pod = state.pods[i]
                kube.delete_pod(namespace=cluster.namespace, name=pod.name, uid=pod.uid)
                # the leader as this decision saw it (the e2e checks it was not this pod)
                emit(
                    "Normal",
                    "RestartingPod",
                    f"{pod.name} restarts on the new revision (leader {state.leader})",
                )
                return Progress("Upgrading", "RestartingPod", f"restarting {pod.name}")
            case rollout.TransferLeadership(to_ordinal=i):
                client = _leader_client(clients, state, cluster.name)
                target = naming.pod(cluster.name, i)
                try:
                    if client is None:
                        raise Unreachable("no node to ask")
                    client.transfer_leadership(to=target)
                except NotSupported:
                    log.info(
                        "cluster %s/%s: leadership transfer answers 501; restarting the "
                        "leader without a transfer",
                        cluster.namespace,
                        cluster.name,
                    )
                    caps.leadership = False
                    continue
                except (AdminError, Unreachable) as exc:
                    return Progress("Upgrading", "AdminAPIError", str(exc)[:200])
                emit("Normal", "LeadershipTransferred", f"leadership -> {target}")
                return Progress("Upgrading", "LeadershipTransferred", f"leader now {target}")
    return Progress("Upgrading", "Replanning", "leadership capabilities changed")


def _voters(
    kube: Kube, cluster: Cluster, state: ClusterState, *, replicas: int, bootstrap: bool
) -> list[int]:
    """Who starts as a Raft voter: everyone at bootstrap; later the voters the nodes report,
    else (no node answers) whatever the ConfigMap already says; never pods being removed."""
    if bootstrap:
        return list(range(replicas))
    members = state.members(cluster.name)
    if members:
        voters = [m.ordinal for m in members if m.voter]
    else:
        previous = kube.get(
            api_version="v1",
            kind="ConfigMap",
            namespace=cluster.namespace,
            name=naming.config_map(cluster.name),
        )
        voters = parse_voters(cluster, previous) or list(range(replicas))
    return [i for i in voters if i < replicas] or list(range(min(replicas, 1)))


def _formed(kube: Kube, cluster: Cluster, state: ClusterState) -> bool:
    """A leader was elected (now, or before: the ConfigMap says so): from then on a pod on an
    empty volume must rejoin as a learner, never vote as the member it replaces.

    Only said to nodes that know ``initial_state`` (their status has ``rejoin``): an older image
    refuses the unknown key, and a restarted pod of it would not start (a new operator before
    the cluster's image change)."""
    if any("rejoin" not in doc for doc in state.nodes.values()):
        return False
    if state.leader is not None:
        return True
    previous = kube.get(
        api_version="v1",
        kind="ConfigMap",
        namespace=cluster.namespace,
        name=naming.config_map(cluster.name),
    )
    return formed(previous)


def event_type(condition: str, value: str) -> str:
    """Warning when a condition turns bad (Ready lost, or a problem condition raised)."""
    if condition == "Ready":
        return "Normal" if value == "True" else "Warning"
    if condition in ("Stalled", "Degraded", "QuorumAtRisk"):
        return "Warning" if value == "True" else "Normal"
    return "Normal"  # Reconciling: progress is news, not a problem


def reconcile(
    obj: dict[str, Any],
    *,
    kube: Kube,
    emit: Emit,
    now: datetime,
    memory: Memory = MEMORY,
) -> dict[str, Any]:
    """One pass; returns the new ``status`` (without kopf's bookkeeping)."""
    cluster = parse_cluster(obj)
    previous = obj.get("status") or {}
    with memory.lock(cluster.uid):
        caps = memory.caps(cluster.uid)
        sts_name = naming.statefulset(cluster.name)
        existing = kube.get_statefulset(namespace=cluster.namespace, name=sts_name)
        current = int((existing or {}).get("spec", {}).get("replicas") or 0) or None
        violations = check_spec(cluster.spec, current_replicas=current)
        creds, token = _credentials(kube, cluster, violations)
        tls = bool(cluster.spec.tls_secret)
        context = cluster_context(kube, cluster)
        state = observe(
            kube,
            cluster=cluster.name,
            namespace=cluster.namespace,
            token=token,
            tls=tls,
            context=context,
        )
        clients = (
            admin_clients(
                state,
                cluster=cluster.name,
                namespace=cluster.namespace,
                token=token,
                tls=tls,
                context=context,
            )
            if token
            else {}
        )

        progress = Progress()
        replicas = state.current_replicas
        if not violations:
            if existing is None:
                replicas = cluster.spec.replicas  # bootstrap: all initial peers at once
                progress = Progress("Creating", "Bootstrapping", "creating the StatefulSet")
            else:
                replicas, progress = _scale_step(cluster, state, clients, caps, emit)
            for manifest in render(
                cluster,
                replicas=replicas,
                voters=_voters(kube, cluster, state, replicas=replicas, bootstrap=existing is None),
                credentials=creds,
                capabilities=kube.capabilities,
                existing=existing is not None and _formed(kube, cluster, state),
            ):
                kube.apply(manifest)
            if cluster.spec.service_monitor and not kube.capabilities.service_monitor:
                log.warning("ServiceMonitor requested but monitoring.coreos.com/v1 not served")
            if existing is not None and not progress.operation:
                progress = _rollout_step(cluster, state, clients, caps, kube, emit)
            if progress.operation == "Creating":
                progress = Progress()

        operation = track_wait(previous.get("operation"), progress=progress, now=now)
        timeout = parse_duration(cluster.spec.upgrade_pod_ready_timeout) if not violations else 0
        exceeded = bool(operation) and waited(operation, now=now) > timeout
        status = compute_status(
            Observation(
                generation=cluster.generation,
                desired_replicas=cluster.spec.replicas,
                current_replicas=replicas,  # what the StatefulSet was just set to
                ready=state.ready,
                surplus_pods=tuple(sorted(i for i in state.pods if i >= replicas)),
                outdated_pods=len(
                    rollout.outdated(state.pod_views(), update_revision=state.update_revision)
                )
                if state.update_revision
                else 0,
                leader=state.leader,
                nodes_answering=len(state.nodes),
                endpoint=endpoint(cluster),
                selector=naming.selector_string(cluster.name),
                violations=tuple(violations),
                progress=progress,
                node_problems=state.node_problems(cluster.name),
            ),
            previous=previous,
            now=now,
            deadline_exceeded=exceeded,
        )
        status["operation"] = operation
        for kind, value, reason in transitions(previous, status):
            message = next(x["message"] for x in status["conditions"] if x["type"] == kind)
            emit(event_type(kind, value), reason, f"{kind}={value}: {message}")
        return status
