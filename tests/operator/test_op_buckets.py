"""Bucket decisions: user names, the Secret, status, and deletion that never wedges."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import kubernetes_validate
import pytest

from anode_operator.buckets import (
    DeleteBucket,
    Release,
    RetainBucket,
    RetryLater,
    compute_status,
    plan_deletion,
    render_secret,
    settings_condition,
    settings_warning,
    user_name,
)
from anode_operator.model import parse_bucket

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def bucket(**spec):
    return parse_bucket(
        {
            "metadata": {"name": "logs", "namespace": "team-a", "uid": "u1", "generation": 2},
            "spec": {"clusterRef": {"name": "demo"}, **spec},
        }
    )


def test_user_name_is_stable_unique_and_short():
    assert user_name(namespace="team-a", name="logs") == "bucket-team-a-logs"
    long_a = user_name(namespace="n" * 60, name="a")
    long_b = user_name(namespace="n" * 60, name="b")
    assert len(long_a) <= 63 and len(long_b) <= 63 and long_a != long_b


def test_secret_has_the_five_keys_and_is_owned_by_the_bucket():
    secret = render_secret(
        bucket(bucketName="team-logs"),
        access_key="AK1",
        secret_key="SK1",
        endpoint="http://demo.team-a.svc:8080",
        region="us-east-1",
    )
    kubernetes_validate.validate(secret, "1.25", strict=True)
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data == {
        "AWS_ACCESS_KEY_ID": "AK1",
        "AWS_SECRET_ACCESS_KEY": "SK1",
        "AWS_ENDPOINT_URL": "http://demo.team-a.svc:8080",
        "AWS_REGION": "us-east-1",
        "BUCKET_NAME": "team-logs",
    }
    assert secret["metadata"]["name"] == "logs-bucket"
    assert secret["metadata"]["ownerReferences"][0]["uid"] == "u1"


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({"policy": "Retain"}, RetainBucket()),
        (
            {"cluster_exists": False},
            Release("ClusterGone", "the AnodeCluster is gone; nothing to delete"),
        ),
        (
            {"cluster_deleting": True},
            Release("ClusterGone", "the AnodeCluster is gone; nothing to delete"),
        ),
        (
            {"cluster_reachable": False},
            RetryLater("ClusterUnreachable", "no node of the cluster answers; retrying"),
        ),
        ({}, DeleteBucket()),
    ],
)
def test_plan_deletion(kw, expected):
    args = dict(
        policy="Delete",
        cluster_exists=True,
        cluster_deleting=False,
        cluster_reachable=True,
        seconds_since_deletion=5,
        give_up_after=600,
    )
    args.update(kw)
    assert plan_deletion(**args) == expected


def test_deletion_gives_up_on_an_unreachable_cluster_after_the_grace_period():
    step = plan_deletion(
        policy="Delete",
        cluster_exists=True,
        cluster_deleting=False,
        cluster_reachable=False,
        seconds_since_deletion=601,
        give_up_after=600,
    )
    assert isinstance(step, Release) and step.reason == "ClusterUnreachable"


def test_retain_never_touches_the_cluster_even_if_it_is_gone():
    step = plan_deletion(
        policy="Retain",
        cluster_exists=False,
        cluster_deleting=False,
        cluster_reachable=False,
        seconds_since_deletion=0,
        give_up_after=600,
    )
    assert step == RetainBucket()


def test_status_ready_and_pending_and_stalled():
    ready = compute_status(
        bucket(),
        ready=True,
        reason="BucketReady",
        message="ok",
        endpoint="http://e",
        previous=None,
        now=NOW,
        problems={},
    )
    c = {x["type"]: x["status"] for x in ready["conditions"]}
    assert ready["phase"] == "Ready"
    assert c == {
        "Ready": "True",
        "Reconciling": "False",
        "Stalled": "False",
        "SettingsApplied": "True",
    }
    pending = compute_status(
        bucket(),
        ready=False,
        reason="ClusterNotReady",
        message="x",
        endpoint="",
        previous=ready,
        now=NOW,
    )
    assert pending["phase"] == "Pending"
    assert {x["type"]: x["status"] for x in pending["conditions"]}["Reconciling"] == "True"
    stalled = compute_status(
        bucket(),
        ready=False,
        reason="ClusterNotFound",
        message="x",
        endpoint="",
        previous=None,
        now=NOW,
    )
    assert stalled["phase"] == "Failed"
    assert {x["type"]: x["status"] for x in stalled["conditions"]}["Stalled"] == "True"


def settings_condition_of(status):
    return next(x for x in status["conditions"] if x["type"] == "SettingsApplied")


def test_settings_not_applied_are_listed_with_why():
    s = compute_status(
        bucket(storageClass="ERASURE_CODED", anonymousRead=True),
        ready=True,
        reason="BucketReady",
        message="ok",
        endpoint="",
        previous=None,
        now=NOW,
        problems={"storageClass": "not supported", "anonymousRead": "AccessDenied: no"},
    )
    cond = settings_condition_of(s)
    assert cond["status"] == "False" and cond["reason"] == "NotApplied"
    assert cond["message"] == (
        "not applied: anonymousRead: AccessDenied: no; storageClass: not supported"
    )


def test_settings_are_unknown_until_attempted_and_true_when_all_applied():
    assert settings_condition(None)[0] == "Unknown"
    assert settings_condition({}) == ("True", "Applied", "all settings applied")
    pending = compute_status(
        bucket(), ready=False, reason="ClusterNotReady", message="x", endpoint="",
        previous=None, now=NOW,
    )
    assert settings_condition_of(pending)["status"] == "Unknown"


def test_status_reports_the_quota_asked_for_and_the_usage_the_node_counts():
    s = compute_status(
        bucket(quota={"maxSize": "10Gi", "maxObjects": 5}),
        ready=True, reason="BucketReady", message="ok", endpoint="", previous=None, now=NOW,
        problems={}, usage={"objects": 2, "bytes": 300, "extra": 1},
    )
    assert s["quota"] == {"maxSize": "10Gi", "maxObjects": 5}
    assert s["usage"] == {"objects": 2, "bytes": 300}
    plain = compute_status(
        bucket(), ready=False, reason="ClusterNotReady", message="x", endpoint="",
        previous=None, now=NOW,
    )
    assert plain["quota"] is None and plain["usage"] is None  # a merge patch removes them


def test_a_warning_event_only_when_settings_turn_unapplied_or_say_something_new():
    def status(problems):
        return compute_status(
            bucket(), ready=True, reason="BucketReady", message="ok", endpoint="",
            previous=None, now=NOW, problems=problems,
        )

    fine, bad = status({}), status({"storageClass": "not supported"})
    assert settings_warning(fine, bad) == (
        "SettingsNotApplied", "not applied: storageClass: not supported")
    assert settings_warning(None, bad) is not None
    assert settings_warning(bad, bad) is None  # every timer tick recomputes the same status
    assert settings_warning(bad, status({"quota": "x"})) is not None
    assert settings_warning(bad, fine) is None
    assert settings_warning(None, status(None)) is None  # Unknown is no failure
