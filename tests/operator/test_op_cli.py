"""The ``anode-operator`` command line: defaults suit the Deployment (all namespaces, JSON logs,
leader election with a Lease in the pod's namespace) and a developer's local run
(``--standalone``, ``--log-format plain``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from anode_operator.cli import parse_args


def test_defaults_watch_all_namespaces_elect_a_leader_and_log_json(monkeypatch):
    monkeypatch.setenv("POD_NAMESPACE", "ops")
    args = parse_args([])
    assert args.namespace == [] and args.lease == "anode-operator"
    assert args.lease_namespace == "ops"
    assert not args.standalone and args.log_format == "json"


def test_namespaces_repeat_and_local_options(monkeypatch):
    monkeypatch.delenv("POD_NAMESPACE", raising=False)
    args = parse_args(["-n", "a", "--namespace", "b", "--standalone", "--log-format", "plain"])
    assert args.namespace == ["a", "b"] and args.standalone and args.log_format == "plain"
    assert parse_args(["--lease-namespace", "x"]).lease_namespace == "x"


def test_console_script_is_installed_and_answers_help():
    script = Path(sys.executable).parent / "anode-operator"
    out = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    assert "--standalone" in out.stdout and "--namespace" in out.stdout and "--lease" in out.stdout


def test_the_standby_answers_the_liveness_probe_and_frees_the_port_for_kopf():
    import socket
    import urllib.error
    import urllib.request

    from anode_operator.cli import standby_liveness

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/healthz"
    with standby_liveness(url):
        with urllib.request.urlopen(url, timeout=5) as answer:
            assert answer.status == 200
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/other", timeout=5)
        assert refused.value.code == 404
    with socket.socket() as again:  # kopf binds the same address next
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", port))
