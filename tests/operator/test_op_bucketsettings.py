"""Bucket settings applied through the S3 API: what to send given what the node answers, and
that an unchanged Bucket sends nothing."""

from __future__ import annotations

import json

import pytest

from anode_operator import bucketsettings as bs
from anode_operator.model import LifecycleRule, parse_bucket

SID = bs.ANONYMOUS_READ_SID


def test_versioning_changes_only_when_different_and_never_back_to_disabled():
    assert bs.versioning_change(desired="Enabled", current="") == "Enabled"
    assert bs.versioning_change(desired="Enabled", current="Enabled") is bs.UNCHANGED
    assert bs.versioning_change(desired="Suspended", current="Enabled") == "Suspended"
    assert bs.versioning_change(desired="Disabled", current="") is bs.UNCHANGED
    assert bs.versioning_change(desired="Disabled", current="Suspended") is None


def test_anonymous_read_creates_a_policy_with_one_get_object_statement():
    change = bs.policy_change(current=None, bucket="pics", anonymous_read=True)
    assert isinstance(change, bs.Put)
    doc = json.loads(change.body)
    assert doc["Statement"] == [
        {
            "Sid": SID,
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::pics/*",
        }
    ]
    assert bs.policy_change(current=None, bucket="pics", anonymous_read=False) is bs.UNCHANGED


def test_anonymous_read_keeps_the_applications_statements():
    theirs = {"Sid": "App", "Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject",
              "Resource": "arn:aws:s3:::pics/*"}
    current = json.dumps({"Version": "2012-10-17", "Statement": theirs})
    added = bs.policy_change(current=current, bucket="pics", anonymous_read=True)
    assert isinstance(added, bs.Put)
    statements = json.loads(added.body)["Statement"]
    assert statements[0] == theirs and statements[1]["Sid"] == SID
    text = added.body.decode()
    assert bs.policy_change(current=text, bucket="pics", anonymous_read=True) is bs.UNCHANGED
    removed = bs.policy_change(current=text, bucket="pics", anonymous_read=False)
    assert isinstance(removed, bs.Put)
    assert json.loads(removed.body)["Statement"] == [theirs]


def test_turning_anonymous_read_off_deletes_a_policy_that_was_only_ours():
    ours = bs.policy_change(current=None, bucket="pics", anonymous_read=True)
    assert isinstance(ours, bs.Put)
    assert bs.policy_change(current=ours.body.decode(), bucket="pics", anonymous_read=False) == (
        bs.Delete()
    )


def test_a_tampered_statement_with_our_sid_is_put_back():
    tampered = {**bs.anonymous_read_statement("pics"), "Action": "s3:*"}
    current = json.dumps({"Version": "2012-10-17", "Statement": [tampered]})
    change = bs.policy_change(current=current, bucket="pics", anonymous_read=True)
    assert isinstance(change, bs.Put)
    assert json.loads(change.body)["Statement"] == [bs.anonymous_read_statement("pics")]


RULES = (
    LifecycleRule(id="logs", prefix="logs/", expiration_days=7),
    LifecycleRule(id="old <&> versions", noncurrent_version_expiration_days=30,
                  abort_incomplete_multipart_upload_days=2),
)

# what the node answers back for RULES (its element order, an empty prefix kept)
NODE_XML = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<LifecycleConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
    b"<Rule><Expiration><Days>7</Days></Expiration><ID>logs</ID>"
    b"<Filter><Prefix>logs/</Prefix></Filter><Status>Enabled</Status></Rule>"
    b"<Rule><ID>old &lt;&amp;&gt; versions</ID><Filter><Prefix></Prefix></Filter>"
    b"<Status>Enabled</Status><NoncurrentVersionExpiration><NoncurrentDays>30</NoncurrentDays>"
    b"</NoncurrentVersionExpiration><AbortIncompleteMultipartUpload><DaysAfterInitiation>2"
    b"</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule></LifecycleConfiguration>"
)


def test_lifecycle_xml_round_trips_through_the_parser():
    assert bs.lifecycle_rules_from_xml(bs.lifecycle_xml(RULES)) == RULES
    assert bs.lifecycle_rules_from_xml(NODE_XML) == RULES


def test_lifecycle_unchanged_when_the_node_already_has_the_rules():
    assert bs.lifecycle_change(current=NODE_XML, rules=RULES) is bs.UNCHANGED
    change = bs.lifecycle_change(current=NODE_XML, rules=RULES[:1])
    assert change == bs.Put(bs.lifecycle_xml(RULES[:1]))
    assert bs.lifecycle_change(current=None, rules=RULES) == bs.Put(bs.lifecycle_xml(RULES))


@pytest.mark.parametrize(
    "extra",
    [
        b"<Transition><Days>1</Days><StorageClass>GLACIER</StorageClass></Transition>",
        b"<Expiration><Date>2030-01-01T00:00:00.000Z</Date></Expiration>",
    ],
)
def test_lifecycle_rules_the_spec_cannot_express_are_replaced(extra):
    body = NODE_XML.replace(b"<ID>logs</ID>", b"<ID>logs</ID>" + extra)
    assert bs.lifecycle_rules_from_xml(body) is None
    assert isinstance(bs.lifecycle_change(current=body, rules=RULES), bs.Put)


def test_lifecycle_absent_from_the_spec_is_left_alone_and_empty_rules_delete():
    assert bs.lifecycle_change(current=NODE_XML, rules=None) is bs.UNCHANGED
    assert bs.lifecycle_change(current=NODE_XML, rules=()) == bs.Delete()
    assert bs.lifecycle_change(current=None, rules=()) is bs.UNCHANGED


def test_spec_lifecycle_absent_vs_empty():
    def parsed(spec):
        return parse_bucket({"metadata": {"name": "b"}, "spec": {"clusterRef": {"name": "c"},
                                                                 **spec}}).spec.lifecycle

    assert parsed({}) is None
    assert parsed({"lifecycle": {"rules": []}}) == ()
    assert parsed({"lifecycle": {"rules": [{"id": "a", "expirationDays": 1}]}}) == (
        LifecycleRule(id="a", expiration_days=1),
    )


def test_only_standard_storage_class_is_honoured():
    assert bs.storage_class_problem("STANDARD") is None
    assert "replicationFactor" in (bs.storage_class_problem("REDUCED_REDUNDANCY") or "")
    assert bs.storage_class_problem("ERASURE_CODED")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("500", 500), ("1Ki", 1024), ("10Gi", 10 * 2**30), ("1.5G", 1_500_000_000),
     ("2k", 2000), ("0.5Ki", 512), ("1.0001k", 1001)],  # rounded up, never down
)
def test_quota_sizes_are_kubernetes_quantities(text, expected):
    assert bs.parse_quantity(text) == expected


@pytest.mark.parametrize("bad", ["", "1.5.2", "10GB", "-1", "Gi"])
def test_invalid_quantities_are_refused(bad):
    with pytest.raises(ValueError):
        bs.parse_quantity(bad)


def test_quota_is_sent_only_when_it_differs_and_removed_when_absent():
    assert bs.quota_change(current=None, max_size=None, max_objects=None) is bs.UNCHANGED
    assert bs.quota_change(current=None, max_size="1Ki", max_objects=None) == {
        "max_bytes": 1024, "max_objects": None}
    current = {"max_bytes": 1024, "max_objects": None}
    assert bs.quota_change(current=current, max_size="1Ki", max_objects=None) is bs.UNCHANGED
    assert bs.quota_change(current=current, max_size="1Ki", max_objects=3) == {
        "max_bytes": 1024, "max_objects": 3}
    assert bs.quota_change(current=current, max_size=None, max_objects=None) == {
        "max_bytes": None, "max_objects": None}
