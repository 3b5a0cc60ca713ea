"""The shell that executes scaling and upgrade steps (``clusters._scale_step`` and
``_rollout_step``) against a node that already speaks the part-2 membership contract (a loopback
HTTP server; the real node answers 501 today, which the integration suite covers) and against
one that answers 501. Kubernetes is a recording fake here: this is a unit test."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from op_helpers import make_cluster

from anode_operator import clusters
from anode_operator.observe import ClusterState, Pod, admin_clients
from anode_operator.status import Progress

TOKEN = "t"


class Part2Node(BaseHTTPRequestHandler):
    """Membership endpoints as docs/admin-api.md describes them for part 2."""

    members: dict[str, bool] = {}
    drain_rounds: int = 0
    leader: str = "demo-0"
    supported: bool = True
    calls: list[tuple[str, str, dict | None]] = []

    def log_message(self, *args):
        pass

    def _reply(self, status: int, body: dict | None = None) -> None:
        raw = json.dumps(body or {}).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        cls = type(self)
        cls.calls.append((self.command, self.path, body))
        if self.path.startswith("/cluster/") and not cls.supported:
            return self._reply(501, {"error": "later", "code": "NotImplemented"})
        if self.command == "POST" and self.path == "/cluster/members":
            cls.members[body["id"]] = False
            return self._reply(202, {})
        if self.command == "POST" and self.path.endswith("/drain"):
            cls.drain_rounds -= 1
            return self._reply(200, {"state": "draining", "remaining": max(cls.drain_rounds, 0)})
        if self.command == "DELETE" and self.path.startswith("/cluster/members/"):
            cls.members.pop(self.path.rsplit("/", 1)[-1], None)
            return self._reply(204)
        if self.command == "POST" and self.path == "/cluster/leadership":
            cls.leader = body["to"]
            return self._reply(200, {})
        return self._reply(404, {"error": "no", "code": "NotFound"})

    do_GET = do_POST = do_DELETE = _handle


@pytest.fixture
def node(monkeypatch):
    Part2Node.members = {}
    Part2Node.calls = []
    Part2Node.drain_rounds = 0
    Part2Node.supported = True
    server = ThreadingHTTPServer(("127.0.0.1", 0), Part2Node)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    monkeypatch.setenv("ANODE_OPERATOR_ADMIN_URL", f"http://{{ip}}:{server.server_address[1]}")
    monkeypatch.delenv("ANODE_OPERATOR_PEER_ADDRESS", raising=False)
    yield Part2Node
    server.shutdown()
    server.server_close()


class RecordingKube:
    def __init__(self) -> None:
        self.deleted: list[str] = []

    def delete_pod(self, *, namespace: str, name: str, uid: str) -> None:
        self.deleted.append(name)


def state(
    *,
    replicas: int,
    ready: int,
    members: dict[str, bool],
    leader: str = "demo-0",
    revisions: dict[int, str] | None = None,
) -> ClusterState:
    pods = {
        i: Pod(
            name=f"demo-{i}",
            uid=f"u{i}",
            ordinal=i,
            ip="127.0.0.1",
            ready=i < ready,
            revision=(revisions or {}).get(i, "r1"),
            terminating=False,
        )
        for i in range(replicas)
    }
    doc = {
        "node_id": leader,
        "role": "leader",
        "leader": leader,
        "members": [{"id": k, "voter": v} for k, v in members.items()],
    }
    sts = {
        "metadata": {"generation": 1},
        "spec": {"replicas": replicas},
        "status": {"observedGeneration": 1, "updateRevision": "r2"},
    }
    return ClusterState(statefulset=sts, pods=pods, nodes={0: doc})


def run_scale(cluster, st, caps=None):
    events: list[tuple[str, str, str]] = []
    caps = caps or clusters.NodeCapabilities()
    clients = admin_clients(
        st, cluster=cluster.name, namespace=cluster.namespace, token=TOKEN, tls=False
    )
    replicas, progress = clusters._scale_step(
        cluster, st, clients, caps, lambda *e: events.append(e)
    )
    return replicas, progress, events, caps


def test_scale_up_adds_the_ready_pod_as_a_member(node):
    cluster = make_cluster(replicas=5)
    members = {f"demo-{i}": True for i in range(3)}
    replicas, progress, events, _ = run_scale(cluster, state(replicas=4, ready=4, members=members))
    assert replicas == 4
    assert progress == Progress("Scaling", "MemberPromoted", "demo-3 is a voter")
    assert node.calls == [
        (
            "POST",
            "/cluster/members",
            {"id": "demo-3", "address": "demo-3.demo-peers.store.svc:9090"},
        )
    ]
    assert events == [("Normal", "MemberPromoted", "demo-3 promoted from learner to voter")]


def test_scale_up_grows_the_statefulset_once_members_are_voters(node):
    cluster = make_cluster(replicas=5)
    members = {f"demo-{i}": True for i in range(4)}
    replicas, progress, events, _ = run_scale(cluster, state(replicas=4, ready=4, members=members))
    assert replicas == 5 and progress.reason == "ScalingUp"
    assert events == [("Normal", "ScalingUp", "StatefulSet replicas 4 -> 5")]
    assert node.calls == []


def test_scale_down_drains_until_done_then_removes(node):
    cluster = make_cluster(replicas=3)
    members = {f"demo-{i}": True for i in range(5)}
    node.drain_rounds = 2
    replicas, progress, _, _ = run_scale(cluster, state(replicas=5, ready=5, members=members))
    assert (replicas, progress.reason) == (5, "Draining")
    replicas, progress, events, _ = run_scale(cluster, state(replicas=5, ready=5, members=members))
    assert (replicas, progress.reason) == (5, "MemberRemoved")
    assert [c[:2] for c in node.calls] == [
        ("POST", "/cluster/members/demo-4/drain"),
        ("POST", "/cluster/members/demo-4/drain"),
        ("DELETE", "/cluster/members/demo-4"),
    ]
    assert events == [("Normal", "MemberRemoved", "demo-4 drained and removed")]
    del members["demo-4"]
    replicas, progress, _, _ = run_scale(cluster, state(replicas=5, ready=5, members=members))
    assert (replicas, progress.reason) == (4, "ScalingDown")


def test_501_means_no_membership_action_and_the_statefulset_still_moves(node, caplog):
    node.supported = False
    cluster = make_cluster(replicas=1, replicationFactor=1)
    members = {"demo-0": True, "demo-1": True, "demo-2": True}
    with caplog.at_level("INFO"):
        replicas, progress, _, caps = run_scale(
            cluster, state(replicas=3, ready=3, members=members)
        )
    assert caps.membership is False
    assert (replicas, progress.reason) == (2, "ScalingDown")
    assert "no membership action needed" in caplog.text
    # remembered: the next pass does not ask again
    node.calls.clear()
    replicas, _, _, _ = run_scale(cluster, state(replicas=2, ready=2, members=members), caps)
    assert replicas == 1 and node.calls == []


def run_rollout(cluster, st, caps=None):
    kube = RecordingKube()
    events: list[tuple[str, str, str]] = []
    caps = caps or clusters.NodeCapabilities()
    clients = admin_clients(
        st, cluster=cluster.name, namespace=cluster.namespace, token=TOKEN, tls=False
    )
    progress = clusters._rollout_step(cluster, st, clients, caps, kube, lambda *e: events.append(e))
    return progress, kube.deleted, events, caps


def test_rollout_restarts_a_follower_then_moves_leadership_then_the_leader(node):
    cluster = make_cluster(replicas=3)
    members = {f"demo-{i}": True for i in range(3)}
    progress, deleted, events, _ = run_rollout(cluster, state(replicas=3, ready=3, members=members))
    assert deleted == ["demo-2"] and progress.reason == "RestartingPod"
    assert events == [
        ("Normal", "RestartingPod", "demo-2 restarts on the new revision (leader demo-0)")
    ]
    only_leader_old = state(
        replicas=3, ready=3, members=members, revisions={0: "r1", 1: "r2", 2: "r2"}
    )
    progress, deleted, events, _ = run_rollout(cluster, only_leader_old)
    assert deleted == [] and progress.reason == "LeadershipTransferred"
    assert node.calls == [("POST", "/cluster/leadership", {"to": "demo-2"})]
    assert events == [("Normal", "LeadershipTransferred", "leadership -> demo-2")]


def test_rollout_without_leadership_api_restarts_the_leader_last(node):
    node.supported = False
    cluster = make_cluster(replicas=3)
    members = {f"demo-{i}": True for i in range(3)}
    only_leader_old = state(
        replicas=3, ready=3, members=members, revisions={0: "r1", 1: "r2", 2: "r2"}
    )
    progress, deleted, _, caps = run_rollout(cluster, only_leader_old)
    assert caps.leadership is False
    assert deleted == ["demo-0"] and progress.reason == "RestartingPod"


def test_rollout_waits_for_the_statefulset_controller(node):
    st = state(replicas=3, ready=3, members={})
    st.statefulset["status"]["observedGeneration"] = 0
    progress, deleted, _, _ = run_rollout(make_cluster(replicas=3), st)
    assert progress.reason == "StatefulSetNotObserved" and deleted == []


def test_a_member_rejoining_on_a_new_volume_loses_its_old_voter_entry_without_drain(node):
    """Its node reports ``rejoin`` (caught up, old entry not yet removed) while the leader still
    lists it as a voter: DELETE with ``?rejoin=true`` (no drain, it stays registered)."""
    cluster = make_cluster(replicas=3)
    st = state(replicas=3, ready=3, members={f"demo-{i}": True for i in range(3)})
    st.nodes[1] = {
        "node_id": "demo-1",
        "role": "learner",
        "leader": "demo-0",
        "rejoin": {"since": 12, "removed": False},
    }
    replicas, progress, events, _ = run_scale(cluster, st)
    assert replicas == 3 and progress.reason == "MemberRejoining"
    assert node.calls == [("DELETE", "/cluster/members/demo-1?rejoin=true", None)]
    assert [e[:2] for e in events] == [("Warning", "MemberRejoining")]


class ConfigMapKube:
    def __init__(self, config_map: dict | None) -> None:
        self.config_map = config_map

    def get(self, **_: object) -> dict | None:
        return self.config_map


def test_initial_state_existing_is_told_only_to_nodes_that_know_it():
    """Once a leader was seen, a pod on an empty volume must rejoin (``initial_state =
    "existing"``); an older node image refuses the unknown key, so it is not rendered while any
    node lacks ``rejoin`` in its status; nobody answering keeps what was rendered before."""
    from anode_operator.render import formed, render_config_map

    cluster = make_cluster(replicas=3)
    members = {f"demo-{i}": True for i in range(3)}
    before, after = (
        render_config_map(cluster, voters=[0, 1, 2], existing=e) for e in (False, True)
    )
    assert "initial_state" not in before["data"]["anode.toml"] and not formed(before)
    assert 'initial_state = "existing"' in after["data"]["anode.toml"] and formed(after)

    new = state(replicas=3, ready=3, members=members)
    new.nodes[0]["rejoin"] = None
    assert clusters._formed(ConfigMapKube(None), cluster, new)
    old = state(replicas=3, ready=3, members=members)  # no "rejoin": an older image
    assert not clusters._formed(ConfigMapKube(after), cluster, old)
    quiet = ClusterState(statefulset=new.statefulset, pods=new.pods, nodes={})
    assert clusters._formed(ConfigMapKube(after), cluster, quiet)
    assert not clusters._formed(ConfigMapKube(before), cluster, quiet)
