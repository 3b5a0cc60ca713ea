"""Bucket lifecycle: Put/Get/DeleteBucketLifecycleConfiguration through boto3 and raw requests
(single node and cluster), the worker expiring objects, versions, delete markers and uploads on
nodes whose lifecycle "day" is one second, and the worker's planning against a real store."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from anode_procs import ClusterFront, ClusterProcesses, NodeProcess
from botocore.exceptions import ClientError
from s3util import error_code, raw_request

from anode.lifecycle import LifecycleWorker, commands_for, plan_bucket
from anode.meta import commands as c
from anode.s3 import lifecycle as L

FAST = 'lifecycle_interval = "0.3s"\nlifecycle_day_seconds = 1'


def rule(rule_id: str = "r", prefix: str = "", **actions) -> dict:
    return {"ID": rule_id, "Status": "Enabled", "Filter": {"Prefix": prefix}, **actions}


def put_rules(s3, bucket: str, *rules: dict) -> None:
    s3.put_bucket_lifecycle_configuration(Bucket=bucket,
                                          LifecycleConfiguration={"Rules": list(rules)})


def xml_code(body: bytes) -> str:
    import xml.etree.ElementTree as ET

    return ET.fromstring(body).findtext("Code")


# ---- the configuration API -------------------------------------------------------------------


def test_no_configuration_is_no_such_lifecycle_configuration(s3, bucket):
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    assert error_code(exc) == ("NoSuchLifecycleConfiguration", 404)


def test_put_get_delete_round_trips_every_filter_form(s3, bucket):
    rules = [
        rule("prefix", "logs/", Expiration={"Days": 30}),
        {"ID": "tag", "Status": "Disabled", "Filter": {"Tag": {"Key": "t", "Value": "v"}},
         "Expiration": {"Date": datetime(2030, 1, 1, tzinfo=UTC)}},
        {"ID": "and", "Status": "Enabled",
         "Filter": {"And": {"Prefix": "a/", "Tags": [{"Key": "k", "Value": "1"}],
                            "ObjectSizeGreaterThan": 10, "ObjectSizeLessThan": 1000}},
         "NoncurrentVersionExpiration": {"NoncurrentDays": 5, "NewerNoncurrentVersions": 2}},
        {"ID": "size", "Status": "Enabled", "Filter": {"ObjectSizeGreaterThan": 100},
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}},
        {"ID": "markers", "Status": "Enabled", "Filter": {},
         "Expiration": {"ExpiredObjectDeleteMarker": True}},
    ]
    put_rules(s3, bucket, *rules)
    got = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert [r["ID"] for r in got] == ["prefix", "tag", "and", "size", "markers"]
    assert got[0]["Filter"] == {"Prefix": "logs/"} and got[0]["Expiration"] == {"Days": 30}
    assert got[1]["Status"] == "Disabled"
    assert got[1]["Filter"] == {"Tag": {"Key": "t", "Value": "v"}}
    assert got[1]["Expiration"]["Date"] == datetime(2030, 1, 1, tzinfo=UTC)
    assert got[2]["Filter"]["And"] == rules[2]["Filter"]["And"]
    assert got[2]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 5,
                                                     "NewerNoncurrentVersions": 2}
    assert got[3]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    assert got[4]["Expiration"] == {"ExpiredObjectDeleteMarker": True}
    s3.delete_bucket_lifecycle(Bucket=bucket)
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    assert error_code(exc) == ("NoSuchLifecycleConfiguration", 404)


def test_legacy_rule_prefix_is_answered_back_as_given(node, s3, bucket):
    body = (b"<LifecycleConfiguration><Rule><ID>old</ID><Prefix>tmp/</Prefix>"
            b"<Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>"
            b"</LifecycleConfiguration>")
    status, _ = raw_request(node, "PUT", f"/{bucket}?lifecycle", body=body)
    assert status == 200
    (got,) = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert got["Prefix"] == "tmp/" and "Filter" not in got


def test_a_rule_without_id_gets_one(s3, bucket):
    put_rules(s3, bucket, {"Status": "Enabled", "Filter": {"Prefix": ""},
                           "Expiration": {"Days": 1}})
    (got,) = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert got["ID"]


def test_object_answers_name_their_expiration(s3, bucket):
    from email.utils import parsedate_to_datetime

    put_rules(s3, bucket, rule("three-days", "exp/", Expiration={"Days": 3}),
              rule("later", "exp/", Expiration={"Days": 10}))
    put = s3.put_object(Bucket=bucket, Key="exp/a", Body=b"x")
    header = put["ResponseMetadata"]["HTTPHeaders"]["x-amz-expiration"]
    assert header == s3.head_object(Bucket=bucket, Key="exp/a")["Expiration"]
    assert s3.get_object(Bucket=bucket, Key="exp/a")["Expiration"] == header
    assert header.endswith('rule-id="three-days"')
    when = parsedate_to_datetime(header.split('"')[1])
    modified = s3.head_object(Bucket=bucket, Key="exp/a")["LastModified"]
    midnight = datetime(modified.year, modified.month, modified.day, tzinfo=UTC)
    assert (when - midnight).days == 4 and (when.hour, when.minute) == (0, 0)
    s3.put_object(Bucket=bucket, Key="other", Body=b"x")
    assert "Expiration" not in s3.head_object(Bucket=bucket, Key="other")


def _body(rule_xml: str) -> bytes:
    return f"<LifecycleConfiguration><Rule>{rule_xml}</Rule></LifecycleConfiguration>".encode()


@pytest.mark.parametrize("rule_xml, code", [
    ("<ID>x</ID><Filter/><Status>On</Status><Expiration><Days>1</Days></Expiration>",
     "MalformedXML"),
    ("<ID>x</ID><Filter/><Expiration><Days>1</Days></Expiration>", "MalformedXML"),
    ("<ID>x</ID><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>",
     "MalformedXML"),
    ("<ID>x</ID><Prefix/><Filter/><Status>Enabled</Status>"
     "<Expiration><Days>1</Days></Expiration>", "MalformedXML"),
    ("<ID>x</ID><Filter><Prefix>a</Prefix><Tag><Key>k</Key><Value>v</Value></Tag></Filter>"
     "<Status>Enabled</Status><Expiration><Days>1</Days></Expiration>", "MalformedXML"),
    ("<ID>x</ID><Filter/><Status>Enabled</Status>"
     "<Expiration><Days>1</Days><Date>2030-01-01T00:00:00Z</Date></Expiration>",
     "MalformedXML"),
    ("<ID>x</ID><Filter/><Status>Enabled</Status><Expiration><Days>one</Days></Expiration>",
     "MalformedXML"),
    ("<ID>x</ID><Filter/><Status>Enabled</Status><Expiration><Days>0</Days></Expiration>",
     "InvalidArgument"),
    ("<ID>x</ID><Filter/><Status>Enabled</Status>"
     "<Expiration><Date>2030-01-01T10:00:00Z</Date></Expiration>", "InvalidArgument"),
    ("<ID>x</ID><Filter/><Status>Enabled</Status>"
     "<Expiration><Date>20300101</Date></Expiration>", "MalformedXML"),
    (f"<ID>{'i' * 256}</ID><Filter/><Status>Enabled</Status>"
     "<Expiration><Days>1</Days></Expiration>", "InvalidArgument"),
    ("<ID>x</ID><Filter/><Status>Enabled</Status><NoncurrentVersionExpiration>"
     "<NoncurrentDays>0</NoncurrentDays></NoncurrentVersionExpiration>", "InvalidArgument"),
    ("<ID>x</ID><Filter/><Status>Enabled</Status><NoncurrentVersionExpiration>"
     "<NoncurrentDays>1</NoncurrentDays><NewerNoncurrentVersions>101</NewerNoncurrentVersions>"
     "</NoncurrentVersionExpiration>", "InvalidArgument"),
    ("<ID>x</ID><Filter/><Status>Enabled</Status><AbortIncompleteMultipartUpload>"
     "<DaysAfterInitiation>0</DaysAfterInitiation></AbortIncompleteMultipartUpload>",
     "InvalidArgument"),
    ("<ID>x</ID><Filter/><Status>Enabled</Status>", "InvalidRequest"),
    ("<ID>x</ID><Filter/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>"
     "<Colour>red</Colour>", "MalformedXML"),
    ("<ID>x</ID><Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter><Status>Enabled</Status>"
     "<AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation>"
     "</AbortIncompleteMultipartUpload>", "InvalidRequest"),
    ("<ID>x</ID><Filter><And><ObjectSizeGreaterThan>10</ObjectSizeGreaterThan>"
     "<ObjectSizeLessThan>5</ObjectSizeLessThan></And></Filter><Status>Enabled</Status>"
     "<Expiration><Days>1</Days></Expiration>", "InvalidRequest"),
])
def test_invalid_rules_are_refused_as_aws_refuses_them(node, bucket, rule_xml, code):
    status, answer = raw_request(node, "PUT", f"/{bucket}?lifecycle", body=_body(rule_xml))
    assert (status, xml_code(answer)) == (400, code)


def test_duplicate_ids_and_empty_configurations_are_refused(node, s3, bucket):
    one = "<Rule><ID>same</ID><Filter/><Status>Enabled</Status><Expiration><Days>1</Days>" \
          "</Expiration></Rule>"
    status, answer = raw_request(node, "PUT", f"/{bucket}?lifecycle",
                                 body=f"<LifecycleConfiguration>{one}{one}"
                                      "</LifecycleConfiguration>".encode())
    assert (status, xml_code(answer)) == (400, "InvalidArgument")
    status, answer = raw_request(node, "PUT", f"/{bucket}?lifecycle",
                                 body=b"<LifecycleConfiguration/>")
    assert (status, xml_code(answer)) == (400, "MalformedXML")
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_lifecycle_configuration(Bucket=bucket)  # nothing was stored
    assert error_code(exc) == ("NoSuchLifecycleConfiguration", 404)


def test_a_wrong_content_md5_is_bad_digest(node, bucket):
    import base64
    import hashlib

    body = _body("<ID>x</ID><Filter/><Status>Enabled</Status>"
                 "<Expiration><Days>1</Days></Expiration>")
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    status, answer = raw_request(node, "PUT", f"/{bucket}?lifecycle", body=body,
                                 headers={"Content-MD5": wrong})
    assert (status, xml_code(answer)) == (400, "BadDigest")
    right = base64.b64encode(hashlib.md5(body).digest()).decode()
    assert raw_request(node, "PUT", f"/{bucket}?lifecycle", body=body,
                       headers={"Content-MD5": right})[0] == 200


def test_lifecycle_of_a_missing_bucket_is_no_such_bucket(s3):
    with pytest.raises(ClientError) as exc:
        put_rules(s3, "no-such-bucket-lc", rule(Expiration={"Days": 1}))
    assert error_code(exc) == ("NoSuchBucket", 404)
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_lifecycle_configuration(Bucket="no-such-bucket-lc")
    assert error_code(exc) == ("NoSuchBucket", 404)


# ---- the worker, on nodes with one-second days ------------------------------------------------


@pytest.fixture(scope="module", params=["single", "cluster"])
def fast(request, tmp_path_factory):
    """A node (or 3-node cluster) that runs lifecycle rules every 0.3 s with 1-second days."""
    if request.param == "single":
        proc = NodeProcess(tmp_path_factory.mktemp("lc") / "data", storage_options=FAST).start()
        yield proc
        proc.stop()
    else:
        cluster = ClusterProcesses(tmp_path_factory.mktemp("lc-cluster"),
                                   storage_options=FAST).start()
        yield ClusterFront(cluster)
        cluster.stop()


_count = iter(range(10**6))


@pytest.fixture
def fs3(fast):
    return fast.client()


@pytest.fixture
def fbucket(fs3) -> str:
    name = f"lc-{next(_count)}-{int(time.time())}"
    fs3.create_bucket(Bucket=name)
    return name


def keys(s3, bucket: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def versions(s3, bucket: str) -> list[tuple[str, bool]]:
    """(key, is a delete marker) of every version, newest first per key."""
    answer = s3.list_object_versions(Bucket=bucket)
    entries = [(v["Key"], v["LastModified"], False, v["VersionId"])
               for v in answer.get("Versions", [])]
    entries += [(m["Key"], m["LastModified"], True, m["VersionId"])
                for m in answer.get("DeleteMarkers", [])]
    return entries


def wait_until(condition, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the lifecycle worker did not act in time"
        time.sleep(0.2)


def test_expiration_days_deletes_only_matching_objects(fs3, fbucket):
    for key in ("logs/a", "logs/b", "keep/c"):
        fs3.put_object(Bucket=fbucket, Key=key, Body=b"x")
    fs3.put_object(Bucket=fbucket, Key="sized/big", Body=b"x" * 100)
    fs3.put_object(Bucket=fbucket, Key="sized/small", Body=b"x")
    fs3.put_object(Bucket=fbucket, Key="tagged/yes", Body=b"x", Tagging="expire=yes")
    fs3.put_object(Bucket=fbucket, Key="tagged/no", Body=b"x", Tagging="expire=no")
    put_rules(fs3, fbucket,
              rule("logs", "logs/", Expiration={"Days": 1}),
              {"ID": "size", "Status": "Enabled", "Filter": {"ObjectSizeGreaterThan": 50},
               "Expiration": {"Days": 1}},
              {"ID": "tag", "Status": "Enabled",
               "Filter": {"Tag": {"Key": "expire", "Value": "yes"}}, "Expiration": {"Days": 1}},
              {"ID": "off", "Status": "Disabled", "Filter": {"Prefix": "keep/"},
               "Expiration": {"Days": 1}})
    wait_until(lambda: keys(fs3, fbucket) == ["keep/c", "sized/small", "tagged/no"])
    time.sleep(1.5)  # and nothing else goes later
    assert keys(fs3, fbucket) == ["keep/c", "sized/small", "tagged/no"]


def test_expiration_date_in_the_past_expires_at_once(fs3, fbucket):
    fs3.put_object(Bucket=fbucket, Key="old", Body=b"x")
    put_rules(fs3, fbucket, rule(Expiration={"Date": datetime(2020, 1, 1, tzinfo=UTC)}))
    wait_until(lambda: keys(fs3, fbucket) == [])


def test_versioned_expiration_leaves_a_marker_and_noncurrent_versions_expire(fs3, fbucket):
    fs3.put_bucket_versioning(Bucket=fbucket, VersioningConfiguration={"Status": "Enabled"})
    for body in (b"1", b"2", b"3", b"4"):
        fs3.put_object(Bucket=fbucket, Key="k", Body=body)
    put_rules(fs3, fbucket, rule(NoncurrentVersionExpiration={"NoncurrentDays": 1,
                                                               "NewerNoncurrentVersions": 2}))
    wait_until(lambda: len(versions(fs3, fbucket)) == 3)
    time.sleep(1.5)
    kept = fs3.list_object_versions(Bucket=fbucket)["Versions"]
    assert len(kept) == 3  # the current one and the two newest noncurrent ones
    assert fs3.get_object(Bucket=fbucket, Key="k")["Body"].read() == b"4"
    put_rules(fs3, fbucket, rule(Expiration={"Days": 1}))
    wait_until(lambda: "k" not in keys(fs3, fbucket))
    answer = fs3.list_object_versions(Bucket=fbucket)
    assert len(answer["DeleteMarkers"]) == 1 and len(answer["Versions"]) == 3


def test_lone_delete_markers_expire_after_their_versions(fs3, fbucket):
    fs3.put_bucket_versioning(Bucket=fbucket, VersioningConfiguration={"Status": "Enabled"})
    fs3.put_object(Bucket=fbucket, Key="gone", Body=b"x")
    fs3.delete_object(Bucket=fbucket, Key="gone")
    fs3.put_object(Bucket=fbucket, Key="live", Body=b"x")
    put_rules(fs3, fbucket,
              rule("markers", Expiration={"ExpiredObjectDeleteMarker": True},
                   NoncurrentVersionExpiration={"NoncurrentDays": 1}))
    wait_until(lambda: [k for k, *_ in versions(fs3, fbucket)] == ["live"])


def test_incomplete_multipart_uploads_are_aborted(fs3, fbucket):
    stale = fs3.create_multipart_upload(Bucket=fbucket, Key="tmp/upload")["UploadId"]
    fs3.upload_part(Bucket=fbucket, Key="tmp/upload", UploadId=stale, PartNumber=1, Body=b"x")
    fs3.create_multipart_upload(Bucket=fbucket, Key="other/upload")
    put_rules(fs3, fbucket, rule("abort", "tmp/",
                                 AbortIncompleteMultipartUpload={"DaysAfterInitiation": 1}))
    wait_until(lambda: [u["Key"] for u in fs3.list_multipart_uploads(Bucket=fbucket)
                        .get("Uploads", [])] == ["other/upload"])
    with pytest.raises(ClientError) as exc:
        fs3.list_parts(Bucket=fbucket, Key="tmp/upload", UploadId=stale)
    assert error_code(exc) == ("NoSuchUpload", 404)


# ---- planning, against a real store (no server) -----------------------------------------------


def _obj(mtime: float, size: int = 1, tags=None) -> dict:
    record = {"size": size, "etag": '"e"', "mtime": mtime, "chunks": [], "owner": "u"}
    if tags:
        record["tags"] = tags
    return record


def _rules(xml_rules: str) -> list[dict]:
    return L.parse_config(f"<LifecycleConfiguration>{xml_rules}</LifecycleConfiguration>"
                          .encode())


def test_plan_respects_days_rounded_to_the_day(meta):
    apply = meta.state_machine.apply
    apply(c.CreateBucket(bucket="b", owner="u", created=0))
    apply(c.PutObject(bucket="b", key="k", record=_obj(mtime=1000.5)))
    rules = _rules("<Rule><ID>r</ID><Filter/><Status>Enabled</Status>"
                   "<Expiration><Days>2</Days></Expiration></Rule>")
    apply(c.SetBucketConfig(bucket="b", name="lifecycle", value=rules))
    record = meta.bucket("b")
    day = 100.0  # 1000.5 rounds up to 1100; two days later is 1300
    assert plan_bucket(meta, "b", record, now=1299.9, day_seconds=day).deletes == []
    assert plan_bucket(meta, "b", record, now=1300, day_seconds=day).deletes == [
        ("k", None, 1000.5)]


def test_conditional_delete_spares_a_version_written_after_the_plan(meta):
    apply = meta.state_machine.apply
    apply(c.CreateBucket(bucket="b", owner="u", created=0))
    apply(c.PutObject(bucket="b", key="k", record=_obj(mtime=10)))
    apply(c.SetBucketConfig(bucket="b", name="lifecycle", value=_rules(
        "<Rule><ID>r</ID><Filter/><Status>Enabled</Status>"
        "<Expiration><Days>1</Days></Expiration></Rule>")))
    plan = plan_bucket(meta, "b", meta.bucket("b"), now=100, day_seconds=1)
    (command,) = commands_for("b", plan, now=100)
    apply(c.PutObject(bucket="b", key="k", record=_obj(mtime=99)))  # a new write meanwhile
    apply(command)
    assert meta.object("b", "k")["mtime"] == 99
    (command,) = commands_for("b", plan_bucket(meta, "b", meta.bucket("b"), now=200,
                                               day_seconds=1), now=200)
    apply(command)
    assert meta.object("b", "k") is None


def test_lone_delete_markers_expire_with_days_once_old_enough(meta):
    apply = meta.state_machine.apply
    apply(c.CreateBucket(bucket="b", owner="u", created=0))
    apply(c.SetBucketVersioning(bucket="b", status="Enabled"))
    apply(c.PutObject(bucket="b", key="lone", record=_obj(mtime=10), version_id="v" * 32))
    apply(c.DeleteObjects(bucket="b", keys=("lone",), version_ids=("v" * 32,)))
    apply(c.PutObject(bucket="b", key="lone", record=_obj(mtime=20), version_id="w" * 32))
    apply(c.DeleteObjects(bucket="b", keys=("lone",), marker_ids=("m" * 32,), mtime=30))
    apply(c.DeleteObjects(bucket="b", keys=("lone",), version_ids=("w" * 32,)))
    apply(c.SetBucketConfig(bucket="b", name="lifecycle", value=_rules(
        "<Rule><ID>r</ID><Filter/><Status>Enabled</Status>"
        "<Expiration><Days>5</Days></Expiration></Rule>")))
    record = meta.bucket("b")
    assert plan_bucket(meta, "b", record, now=34, day_seconds=1).deletes == []
    assert plan_bucket(meta, "b", record, now=35, day_seconds=1).deletes == [
        ("lone", "m" * 32, 30)]


async def test_only_the_leader_expires(meta):
    proposed = []

    async def propose(command):
        proposed.append(command)

    apply = meta.state_machine.apply
    apply(c.CreateBucket(bucket="b", owner="u", created=0))
    apply(c.PutObject(bucket="b", key="k", record=_obj(mtime=10)))
    apply(c.SetBucketConfig(bucket="b", name="lifecycle", value=_rules(
        "<Rule><ID>r</ID><Filter/><Status>Enabled</Status>"
        "<Expiration><Days>1</Days></Expiration></Rule>")))
    leader = False
    worker = LifecycleWorker(meta=meta, propose=propose, is_leader=lambda: leader,
                             day_seconds=1)
    assert await worker.run_once() == 0 and proposed == []
    leader = True
    assert await worker.run_once() == 1
    assert isinstance(proposed[0], c.DeleteObjects) and proposed[0].keys == ("k",)


# ---- rule matching (pure) ---------------------------------------------------------------------


def test_filters_select_by_prefix_tags_and_size():
    (and_rule,) = _rules(
        "<Rule><ID>r</ID><Filter><And><Prefix>a/</Prefix><Tag><Key>k</Key><Value>1</Value>"
        "</Tag><ObjectSizeGreaterThan>10</ObjectSizeGreaterThan>"
        "<ObjectSizeLessThan>100</ObjectSizeLessThan></And></Filter><Status>Enabled</Status>"
        "<Expiration><Days>1</Days></Expiration></Rule>")
    tags = [["k", "1"], ["other", "x"]]
    assert L.applies_to(and_rule, "a/x", size=50, tags=tags)
    assert not L.applies_to(and_rule, "b/x", size=50, tags=tags)
    assert not L.applies_to(and_rule, "a/x", size=10, tags=tags)  # strictly greater
    assert not L.applies_to(and_rule, "a/x", size=100, tags=tags)  # strictly less
    assert not L.applies_to(and_rule, "a/x", size=50, tags=[["k", "2"]])
    assert not L.applies_to(and_rule, "a/x")  # a delete marker has no size or tags
    (legacy,) = _rules("<Rule><ID>r</ID><Prefix>p</Prefix><Status>Disabled</Status>"
                       "<Expiration><Days>1</Days></Expiration></Rule>")
    assert not L.applies_to(legacy, "p1", size=1)  # disabled
    assert L.applies_to({**legacy, "status": "Enabled"}, "p1", size=1)


def test_after_days_rounds_up_to_the_next_day_boundary():
    day = 86400
    assert L.after_days(0, 1, day) == day  # exactly midnight stays
    assert L.after_days(1, 1, day) == 2 * day
    assert L.after_days(day - 1, 30, day) == 31 * day


def test_rules_answer_back_in_aws_element_order():
    rules = _rules("<Rule><Status>Enabled</Status><ID>r</ID><Filter><Prefix>x</Prefix></Filter>"
                   "<AbortIncompleteMultipartUpload><DaysAfterInitiation>2"
                   "</DaysAfterInitiation></AbortIncompleteMultipartUpload>"
                   "<Expiration><Days>1</Days></Expiration></Rule>")
    import xml.etree.ElementTree as ET

    (rule_element,) = ET.fromstring(L.to_xml(rules))
    assert [child.tag.split("}")[1] for child in rule_element] == [
        "Expiration", "ID", "Filter", "Status", "AbortIncompleteMultipartUpload"]


def test_status_counts_what_the_leader_expired(fast, fs3, fbucket):
    fs3.put_object(Bucket=fbucket, Key="gone", Body=b"x")
    put_rules(fs3, fbucket, rule(Expiration={"Days": 1}))
    wait_until(lambda: keys(fs3, fbucket) == [])
    nodes = fast.cluster.nodes if isinstance(fast, ClusterFront) else [fast]
    counts = {p.node_id: p.admin("/status")[1]["storage"]["lifecycle_expired"] for p in nodes}
    assert sum(counts.values()) >= 1
    if len(nodes) > 1:  # only the leader acts (a re-election may have made a second one act)
        assert sum(1 for n in counts.values() if n) < len(nodes)
