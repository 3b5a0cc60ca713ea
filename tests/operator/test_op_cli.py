"""The ``anode-operator`` command line: defaults suit the Deployment (all namespaces, JSON logs,
leader election with a Lease in the pod's namespace) and a developer's local run
(``--standalone``, ``--log-format plain``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
