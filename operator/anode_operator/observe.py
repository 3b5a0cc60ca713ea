"""What is true right now about one cluster: its StatefulSet, its pods, and what the nodes say.

This is the only module that asks the nodes about themselves (``GET /status`` on every pod that
has an address, in parallel, with a short timeout); the answers become plain dataclasses for the
pure planners. A node that does not answer is simply absent from ``nodes``.
"""

from __future__ import annotations

import logging
import os
import ssl
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from anode_operator import constants as c
from anode_operator import naming
from anode_operator.admin import AdminClient, AdminError, Unreachable
from anode_operator.kube import Kube
from anode_operator.rollout import PodView
from anode_operator.scaling import Member
from anode_operator.status import NodeProblem

log = logging.getLogger(__name__)

# How the operator reaches a pod's admin API. The pod IP works in-cluster and with the test
# suite's stand-in kubelet; override (e.g. with DNS names) where pod IPs are not routable.
ADMIN_URL_TEMPLATE_ENV = "ANODE_OPERATOR_ADMIN_URL"
DEFAULT_ADMIN_URL_TEMPLATE = "{scheme}://{ip}:{port}"
# The Raft address a new member is promoted with: a stable DNS name through the headless
# Service in Kubernetes (pod IPs change on restart); tests without DNS use "{ip}:{port}".
PEER_ADDRESS_TEMPLATE_ENV = "ANODE_OPERATOR_PEER_ADDRESS"
DEFAULT_PEER_ADDRESS_TEMPLATE = "{pod}.{peers}.{namespace}.svc:{port}"


@dataclass(frozen=True)
class Pod:
    name: str
    uid: str
    ordinal: int
    ip: str | None
    ready: bool
    revision: str
    terminating: bool


@dataclass(frozen=True)
class ClusterState:
    statefulset: dict[str, Any] | None
    pods: dict[int, Pod] = field(default_factory=dict)
    nodes: dict[int, dict[str, Any]] = field(default_factory=dict)  # ordinal -> /status doc

    @property
    def current_replicas(self) -> int:
        return int(((self.statefulset or {}).get("spec") or {}).get("replicas") or 0)

    @property
    def update_revision(self) -> str:
        return ((self.statefulset or {}).get("status") or {}).get("updateRevision") or ""

    @property
    def statefulset_observed(self) -> bool:
        sts = self.statefulset or {}
        observed = (sts.get("status") or {}).get("observedGeneration")
        return observed is not None and observed >= (sts.get("metadata") or {}).get("generation", 0)

    @property
    def ready(self) -> frozenset[int]:
        return frozenset(i for i, p in self.pods.items() if p.ready and not p.terminating)

    @property
    def leader(self) -> str | None:
        """The leader most nodes agree on (a node that is itself leader counts as a vote)."""
        votes: dict[str, int] = {}
        for doc in self.nodes.values():
            who = doc.get("leader") or (doc.get("node_id") if doc.get("role") == "leader" else None)
            if who:
                votes[who] = votes.get(who, 0) + 1
        if not votes:
            return None
        return max(sorted(votes), key=lambda k: votes[k])

    def leader_ordinal(self, cluster: str) -> int | None:
        return naming.ordinal_of(cluster, self.leader) if self.leader else None

    def members(self, cluster: str) -> tuple[Member, ...] | None:
        """Raft membership as the leader reports it (else any node), None if nobody answered."""
        if not self.nodes:
            return None
        leader = self.leader_ordinal(cluster)
        doc = self.nodes.get(leader) if leader is not None else None
        doc = doc or next(iter(self.nodes.values()))
        out = []
        for m in doc.get("members") or []:
            ordinal = naming.ordinal_of(cluster, str(m.get("id", "")))
            if ordinal is not None:
                out.append(Member(ordinal=ordinal, voter=bool(m.get("voter", True))))
        return tuple(sorted(out, key=lambda m: m.ordinal))

    def rejoining(self) -> frozenset[int]:
        """Ordinals whose node rejoins on a new volume, has caught up, and waits for its old
        voter entry to be removed (the node's ``rejoin`` status)."""
        return frozenset(
            ordinal
            for ordinal, doc in self.nodes.items()
            if (rejoin := doc.get("rejoin"))
            and rejoin.get("since") is not None
            and not rejoin.get("removed")
        )

    def node_problems(self, cluster: str) -> tuple[NodeProblem, ...]:
        """What the nodes report wrong with themselves, in ordinal order."""
        out = []
        for ordinal, doc in sorted(self.nodes.items()):
            failed = (doc.get("snapshots") or {}).get("install_error")
            if failed:
                out.append(
                    NodeProblem(
                        "SnapshotInstallFailed",
                        f"{naming.pod(cluster, ordinal)} cannot install the leader's Raft snapshot "
                        f"({failed.get('failures', '?')} failures): {failed.get('error', '?')}",
                    )
                )
        return tuple(out)

    def pod_views(self) -> list[PodView]:
        return [
            PodView(ordinal=p.ordinal, revision=p.revision, ready=p.ready and not p.terminating)
            for p in self.pods.values()
        ]


def _pod(cluster: str, obj: dict[str, Any]) -> Pod | None:
    meta = obj.get("metadata") or {}
    ordinal = naming.ordinal_of(cluster, meta.get("name", ""))
    if ordinal is None:
        return None
    status = obj.get("status") or {}
    ready = any(
        cond.get("type") == "Ready" and cond.get("status") == "True"
        for cond in status.get("conditions") or []
    )
    return Pod(
        name=meta["name"],
        uid=meta.get("uid", ""),
        ordinal=ordinal,
        ip=status.get("podIP"),
        ready=ready,
        revision=(meta.get("labels") or {}).get("controller-revision-hash", ""),
        terminating=bool(meta.get("deletionTimestamp")),
    )


def admin_url(*, pod: Pod, cluster: str, namespace: str, tls: bool) -> str:
    template = os.environ.get(ADMIN_URL_TEMPLATE_ENV) or DEFAULT_ADMIN_URL_TEMPLATE
    return template.format(
        scheme="https" if tls else "http",
        ip=pod.ip,
        port=c.ADMIN_PORT,
        pod=pod.name,
        peers=naming.peer_service(cluster),
        namespace=namespace,
    )


def peer_address(*, pod: Pod, cluster: str, namespace: str) -> str:
    template = os.environ.get(PEER_ADDRESS_TEMPLATE_ENV) or DEFAULT_PEER_ADDRESS_TEMPLATE
    return template.format(
        ip=pod.ip,
        port=c.INTERNODE_PORT,
        pod=pod.name,
        peers=naming.peer_service(cluster),
        namespace=namespace,
    )


def admin_clients(
    state: ClusterState,
    *,
    cluster: str,
    namespace: str,
    token: str,
    tls: bool,
    context: ssl.SSLContext | None = None,
) -> dict[int, AdminClient]:
    """``context``: how to trust the nodes over https (``tlsclient.cluster_context``)."""
    return {
        i: AdminClient(
            base_url=admin_url(pod=p, cluster=cluster, namespace=namespace, tls=tls),
            token=token,
            context=context,
        )
        for i, p in state.pods.items()
        if p.ip and not p.terminating
    }


def _ask_status(client: AdminClient) -> dict[str, Any] | None:
    try:
        doc = client.status()
    except (Unreachable, AdminError) as exc:
        log.debug("node status unavailable: %s", exc)
        return None
    return doc if isinstance(doc, dict) else None


def observe(
    kube: Kube,
    *,
    cluster: str,
    namespace: str,
    token: str | None,
    tls: bool,
    context: ssl.SSLContext | None = None,
) -> ClusterState:
    sts = kube.get_statefulset(namespace=namespace, name=naming.statefulset(cluster))
    pods: dict[int, Pod] = {}
    for obj in kube.list_pods(namespace=namespace, selector=naming.selector_string(cluster)):
        pod = _pod(cluster, obj)
        if pod is not None:
            pods[pod.ordinal] = pod
    state = ClusterState(statefulset=sts, pods=pods)
    if not token:
        return state
    clients = admin_clients(
        state, cluster=cluster, namespace=namespace, token=token, tls=tls, context=context
    )
    if not clients:
        return state
    with ThreadPoolExecutor(max_workers=min(8, len(clients))) as pool:
        answers = dict(zip(clients, pool.map(_ask_status, clients.values()), strict=True))
    nodes = {i: doc for i, doc in answers.items() if doc is not None}
    return ClusterState(statefulset=sts, pods=pods, nodes=nodes)
