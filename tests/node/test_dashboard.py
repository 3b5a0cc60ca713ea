"""The Grafana dashboard (charts/anode/dashboards/anode.json) asks only for metrics a real node
exports: every metric name in every PromQL expression is in /metrics of one node, or of a
3-node cluster member for the few only a cluster has. And the metrics it needs that the node
added for it (Raft leadership, repair, scrub) follow real events."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import promql_parser
import pytest
from anode_procs import ClusterFront, ClusterProcesses, free_port
from botocore.exceptions import ClientError

DASHBOARD = Path(__file__).parents[2] / "charts" / "anode" / "dashboards" / "anode.json"
CLUSTER_ONLY = {"anode_chunks_repaired_total", "anode_chunk_copies_dropped_total"}
# Grafana's interval variables are not PromQL; Grafana substitutes a duration before querying
_GRAFANA_DURATIONS = re.compile(r"\$(__rate_interval|__interval|__range)\b")


def metric_names(expr: str) -> set[str]:
    """Metric names of a PromQL expression, from its syntax tree (promql-parser: a syntax
    error fails the test too)."""
    return _selectors(promql_parser.parse(_GRAFANA_DURATIONS.sub("5m", expr)))


def _selectors(node: Any) -> set[str]:
    if isinstance(node, promql_parser.VectorSelector):
        names = {m.value for m in node.matchers.matchers if m.name == "__name__"}
        return names | ({node.name} if node.name else set())
    if isinstance(node, promql_parser.MatrixSelector):
        return _selectors(node.vector_selector)
    if isinstance(node, promql_parser.BinaryExpr):
        return _selectors(node.lhs) | _selectors(node.rhs)
    if isinstance(node, promql_parser.Call):
        return set().union(*(_selectors(arg) for arg in node.args))
    if isinstance(node, promql_parser.AggregateExpr):
        return _selectors(node.expr) | (_selectors(node.param) if node.param else set())
    if isinstance(node, (promql_parser.ParenExpr, promql_parser.UnaryExpr,
                         promql_parser.SubqueryExpr)):  # fmt: skip
        return _selectors(node.expr)
    return set()  # number and string literals


def dashboard_exprs() -> list[str]:
    doc = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in doc["panels"] for t in p.get("targets", [])]
    for variable in doc["templating"]["list"]:
        query = variable.get("query")
        query = query.get("query") if isinstance(query, dict) else query
        if variable["type"] == "query":  # label_values(metric, label)
            exprs.append(re.fullmatch(r"label_values\((\w+), *\w+\)", query).group(1))
    return exprs


def dashboard_metrics() -> set[str]:
    return set().union(*(metric_names(e) for e in dashboard_exprs()))


def exported(admin_url: str) -> set[str]:
    with urllib.request.urlopen(admin_url + "/metrics", timeout=10) as r:
        text = r.read().decode()
    return {
        re.split(r"[{ ]", line, maxsplit=1)[0] for line in text.splitlines() if line[:1] not in "#"
    }


def scrape(admin_url: str) -> dict[str, float]:
    with urllib.request.urlopen(admin_url + "/metrics", timeout=10) as r:
        lines = r.read().decode().splitlines()
    return {ln.rsplit(" ", 1)[0]: float(ln.rsplit(" ", 1)[1]) for ln in lines if ln[:1] != "#"}


def test_metric_names_are_extracted_from_promql() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, operation) (rate(anode_x_bucket{instance=~"$i", '
        'status=~"5.."}[$__rate_interval]))) / clamp_min(max(anode_y) - anode_z offset 5m, 1e-9)'
    )
    assert metric_names(expr) == {"anode_x_bucket", "anode_y", "anode_z"}
    assert metric_names('sum(rate({__name__="anode_w_total"}[1m]))') == {"anode_w_total"}
    with pytest.raises(ValueError):
        metric_names("sum(rate(anode_x[5m])")  # unbalanced: a broken panel is caught


def test_the_dashboard_covers_what_the_issue_asks_for() -> None:
    names = dashboard_metrics()
    assert all(n.startswith("anode_") for n in names), names
    wanted = {
        "anode_s3_requests_total", "anode_s3_request_duration_seconds_bucket",
        "anode_s3_bytes_in_total", "anode_s3_bytes_out_total", "anode_raft_term",
        "anode_raft_commit_index", "anode_raft_applied_index", "anode_raft_leader_changes_total",
        "anode_chunks_repaired_total", "anode_scrubbed_chunks_total", "anode_dedup_saved_bytes",
        "anode_stored_bytes", "anode_logical_bytes", "anode_volume_free_bytes",
    }  # fmt: skip
    assert wanted <= names
    doc = json.loads(DASHBOARD.read_text())
    assert any(v["name"] == "instance" for v in doc["templating"]["list"])
    per_member = [t["expr"] for p in doc["panels"] for t in p.get("targets", [])]
    assert all('instance=~"$instance"' in e for e in per_member)


def test_every_dashboard_metric_is_exported(node: Any) -> None:
    """Runs against one node and a 3-node cluster (the `node` fixture's two params)."""
    clustered = isinstance(node, ClusterFront)
    member = node.cluster.nodes[0] if clustered else node
    member.client().list_buckets()  # its request counters and histograms have samples
    admin_url = member.admin_url
    have = exported(admin_url)
    wanted = dashboard_metrics()
    if clustered:
        assert wanted <= have, sorted(wanted - have)
    else:
        assert wanted - CLUSTER_ONLY <= have, sorted(wanted - CLUSTER_ONLY - have)
        assert not CLUSTER_ONLY & have  # a single node has no copies to repair


def test_a_missing_metric_would_be_caught(node: Any) -> None:
    member = node.cluster.nodes[0] if isinstance(node, ClusterFront) else node
    member.client().list_buckets()
    admin_url = member.admin_url
    assert "anode_no_such_metric" not in exported(admin_url)
    assert "anode_s3_requests_total" in exported(admin_url)


def wait_for(predicate: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise TimeoutError("condition not reached")


def test_raft_repair_and_scrub_metrics_follow_real_events(tmp_path: Path) -> None:
    cluster = ClusterProcesses(
        tmp_path, extra_cluster='repair_interval = "1s"\nscrub_interval = "1s"'
    ).start()
    try:
        s3 = cluster.client()
        s3.create_bucket(Bucket="dash")
        s3.put_object(Bucket="dash", Key="before", Body=b"b" * 300_000)
        leader = cluster.leader()
        survivors = [n for n in cluster.nodes if n is not leader]
        before = {n.node_id: scrape(n.admin_url) for n in survivors}
        for n in survivors:
            m = before[n.node_id]
            assert m["anode_raft_leader_changes_total"] >= 1 and m["anode_raft_is_leader"] == 0
            assert m["anode_raft_commit_index"] >= m["anode_raft_applied_index"] > 0
            assert m["anode_raft_members"] == 3 and m["anode_raft_healthy_members"] == 3
        # scrub rounds re-hash the chunk every second
        wait_for(lambda: scrape(survivors[0].admin_url)["anode_scrubbed_chunks_total"] >= 1)
        leader.kill()
        new = wait_for(
            lambda: [n for n in survivors if scrape(n.admin_url)["anode_raft_is_leader"]]
        )
        assert len(new) == 1
        for n in survivors:
            after = wait_for(
                lambda n=n: (
                    (m := scrape(n.admin_url))["anode_raft_leader_changes_total"]
                    > before[n.node_id]["anode_raft_leader_changes_total"]
                    and m
                )
            )
            assert after["anode_raft_term"] > before[n.node_id]["anode_raft_term"]
        s3 = cluster.client()
        s3.put_object(Bucket="dash", Key="while-down", Body=b"w" * 300_000)
        leader.start()  # it lacks the copy written while it was down: its repair fetches it
        wait_for(lambda: scrape(leader.admin_url)["anode_chunks_repaired_total"] >= 1, 90)
    finally:
        cluster.kill()


def test_every_panel_has_data_from_a_live_cluster_in_prometheus(tmp_path: Path) -> None:
    """Prometheus (Debian's `prometheus`, when installed) scrapes a 3-node cluster under some
    traffic, and every panel query of the dashboard evaluates, without error, to data."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("no prometheus binary (apt-get install prometheus)")
    cluster = ClusterProcesses(
        tmp_path / "c", extra_cluster='repair_interval = "1s"\nscrub_interval = "1s"'
    ).start()
    port = free_port()
    targets = ", ".join(f'"127.0.0.1:{n.admin_port}"' for n in cluster.nodes)
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"scrape_configs:\n  - job_name: anode\n    static_configs: [{{targets: [{targets}]}}]\n"
    )
    with open(tmp_path / "prometheus.log", "wb") as log:
        prometheus = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        s3 = cluster.client()
        s3.create_bucket(Bucket="panels")
        started = time.monotonic()
        i = 0
        while time.monotonic() - started < 20:  # traffic over several scrapes
            s3.put_object(Bucket="panels", Key=f"k{i % 5}", Body=b"p" * 100_000)
            s3.get_object(Bucket="panels", Key=f"k{i % 5}")["Body"].read()
            with contextlib.suppress(ClientError):
                s3.head_object(Bucket="panels", Key="missing")
            i += 1
            time.sleep(0.2)
        api = f"http://127.0.0.1:{port}/api/v1/query?query="
        empty, shown = [], []
        for title, expr in panel_queries():
            query = expr.replace("$__rate_interval", "15s").replace("$instance", ".*")
            with urllib.request.urlopen(api + urllib.parse.quote(query), timeout=10) as r:
                answer = json.loads(r.read())
            assert answer["status"] == "success", (title, answer)
            result = answer["data"]["result"]
            if not result:
                empty.append(title)
            shown.append(f"{title}: {len(result)} series, e.g. {result[:1]}")
        (tmp_path / "panels.txt").write_text("\n".join(shown) + "\n")
        assert not empty, empty
    finally:
        prometheus.terminate()
        prometheus.wait(timeout=30)
        cluster.stop()


def panel_queries() -> list[tuple[str, str]]:
    doc = json.loads(DASHBOARD.read_text())
    return [(p["title"], t["expr"]) for p in doc["panels"] for t in p.get("targets", [])]
