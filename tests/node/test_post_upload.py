"""Browser POST uploads (PostObject) through boto3's `generate_presigned_post` and `requests`-like
raw forms (single node and cluster): policy conditions, ${filename}, success_action_status and
redirect, expired or tampered policies, and who the upload is authorized as."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.error
import urllib.request
import uuid
import xml.etree.ElementTree as ET
import zlib
from datetime import UTC, datetime, timedelta

import pytest
from anode_procs import ACCESS_KEY, SECRET_KEY
from botocore.exceptions import ClientError
from s3util import error_code

from anode.s3 import postpolicy
from anode.s3.errors import S3Error


def encode_form(fields: list[tuple[str, str]], file: bytes, filename: str = "upload.bin",
                file_type: str = "application/octet-stream",
                after: list[tuple[str, str]] = ()) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    out = bytearray()
    for name, value in fields:
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n"
                f"{value}\r\n").encode()
    out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{filename}\"\r\nContent-Type: {file_type}\r\n\r\n").encode()
    out += file + b"\r\n"
    for name, value in after:
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n"
                f"{value}\r\n").encode()
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


def post(url: str, fields, file: bytes = b"hello", **kw) -> tuple[int, dict, bytes]:
    body, content_type = encode_form(list(fields.items()) if isinstance(fields, dict)
                                     else fields, file, **kw)
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": content_type})

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def code_of(body: bytes) -> str | None:
    return ET.fromstring(body).findtext("Code")


def presigned(s3, bucket: str, key: str, **kw) -> tuple[str, dict]:
    answer = s3.generate_presigned_post(Bucket=bucket, Key=key, **kw)
    return answer["url"], answer["fields"]


def sign_policy(doc: dict, *, secret: str = SECRET_KEY, access_key: str = ACCESS_KEY,
                when: datetime | None = None) -> dict[str, str]:
    """The SigV4 fields of a hand-made policy document (as a browser form would carry them)."""
    when = when or datetime.now(UTC)
    date = when.strftime("%Y%m%d")
    credential = f"{access_key}/{date}/us-east-1/s3/aws4_request"
    amz_date = when.strftime("%Y%m%dT%H%M%SZ")
    doc = {**doc, "conditions": [*doc["conditions"], {"x-amz-algorithm": "AWS4-HMAC-SHA256"},
                                 {"x-amz-credential": credential}, {"x-amz-date": amz_date}]}
    policy = base64.b64encode(json.dumps(doc).encode()).decode()
    key = f"AWS4{secret}".encode()
    for part in (date, "us-east-1", "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, policy.encode(), hashlib.sha256).hexdigest()
    return {"x-amz-algorithm": "AWS4-HMAC-SHA256", "x-amz-credential": credential,
            "x-amz-date": amz_date, "policy": policy, "x-amz-signature": signature}


def expiry(delta: timedelta = timedelta(minutes=10)) -> str:
    return (datetime.now(UTC) + delta).strftime("%Y-%m-%dT%H:%M:%S.000Z")


# ---- uploads that succeed ---------------------------------------------------------------------


def test_presigned_post_uploads_the_file_with_its_fields(s3, bucket):
    url, fields = presigned(s3, bucket, "photos/cat.jpg",
                            Fields={"Content-Type": "image/jpeg", "x-amz-meta-owner": "me"},
                            Conditions=[{"Content-Type": "image/jpeg"},
                                        {"x-amz-meta-owner": "me"}])
    status, headers, body = post(url, fields, b"\xff\xd8 jpeg bytes")
    assert status == 204 and body == b""
    etag = '"' + hashlib.md5(b"\xff\xd8 jpeg bytes").hexdigest() + '"'
    assert headers["ETag"] == etag
    assert headers["Location"].endswith(f"/{bucket}/photos/cat.jpg")
    got = s3.get_object(Bucket=bucket, Key="photos/cat.jpg")
    assert got["Body"].read() == b"\xff\xd8 jpeg bytes"
    assert got["ContentType"] == "image/jpeg" and got["Metadata"] == {"owner": "me"}
    assert got["ETag"] == etag


def test_filename_placeholder_and_starts_with(s3, bucket):
    url, fields = presigned(s3, bucket, "uploads/${filename}")
    assert any(c == ["starts-with", "$key", "uploads/"] for c in
               json.loads(base64.b64decode(fields["policy"]))["conditions"])
    status, _, _ = post(url, fields, b"data", filename="report.pdf")
    assert status == 204
    assert s3.get_object(Bucket=bucket, Key="uploads/report.pdf")["Body"].read() == b"data"


def test_key_conditions_apply_to_the_key_with_the_file_name_in_place(s3, bucket):
    url, fields = presigned(s3, bucket, "${filename}",
                            Conditions=[["starts-with", "$key", "report"]])
    status, _, _ = post(url, fields, b"data", filename="report.pdf")
    assert status == 204
    assert s3.get_object(Bucket=bucket, Key="report.pdf")["Body"].read() == b"data"
    status, _, body = post(url, fields, b"data", filename="other.pdf")
    assert status == 403 and code_of(body) == "AccessDenied"


def test_success_action_status_201_answers_post_response_xml(s3, bucket):
    url, fields = presigned(s3, bucket, "k201", Fields={"success_action_status": "201"},
                            Conditions=[{"success_action_status": "201"}])
    status, _, body = post(url, fields, b"x")
    assert status == 201
    doc = ET.fromstring(body)
    assert doc.tag == "PostResponse"
    assert [child.tag for child in doc] == ["Location", "Bucket", "Key", "ETag"]
    assert doc.findtext("Bucket") == bucket and doc.findtext("Key") == "k201"
    assert doc.findtext("ETag") == '"' + hashlib.md5(b"x").hexdigest() + '"'


def test_success_action_status_200_and_redirect(s3, bucket):
    url, fields = presigned(s3, bucket, "k200", Fields={"success_action_status": "200"},
                            Conditions=[{"success_action_status": "200"}])
    status, _, body = post(url, fields)
    assert (status, body) == (200, b"")
    target = "https://example.com/done?from=form"
    url, fields = presigned(s3, bucket, "kredir", Fields={"success_action_redirect": target},
                            Conditions=[{"success_action_redirect": target}])
    status, headers, _ = post(url, fields)
    assert status == 303
    assert headers["Location"].startswith(target + "&")
    assert f"bucket={bucket}" in headers["Location"] and "key=kredir" in headers["Location"]
    assert s3.head_object(Bucket=bucket, Key="kredir")["ContentLength"] == 5


def test_acl_and_tagging_fields(s3, bucket):
    tagging = ("<Tagging><TagSet><Tag><Key>team</Key><Value>web</Value></Tag></TagSet>"
               "</Tagging>")
    url, fields = presigned(s3, bucket, "public", Fields={"acl": "public-read",
                                                          "tagging": tagging},
                            Conditions=[{"acl": "public-read"}, {"tagging": tagging}])
    status, _, _ = post(url, fields)
    assert status == 204
    assert s3.get_object_tagging(Bucket=bucket, Key="public")["TagSet"] == [
        {"Key": "team", "Value": "web"}]
    grants = s3.get_object_acl(Bucket=bucket, Key="public")["Grants"]
    assert any(g["Grantee"].get("URI", "").endswith("AllUsers") for g in grants)


def test_fields_after_the_file_are_ignored(s3, bucket):
    url, fields = presigned(s3, bucket, "after")
    status, _, _ = post(url, fields, b"x", after=[("x-amz-meta-late", "1")])
    assert status == 204
    assert s3.head_object(Bucket=bucket, Key="after")["Metadata"] == {}


def test_large_file_streams_into_chunks(s3, bucket):
    data = bytes(range(256)) * (40 * 1024)  # 10 MiB: several chunks
    url, fields = presigned(s3, bucket, "big", Conditions=[["content-length-range", 1,
                                                            len(data)]])
    status, headers, _ = post(url, fields, data)
    assert status == 204
    assert headers["ETag"] == '"' + hashlib.md5(data).hexdigest() + '"'
    assert s3.get_object(Bucket=bucket, Key="big")["Body"].read() == data


def test_post_answers_the_lifecycle_expiration(s3, bucket):
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        {"ID": "tmp", "Status": "Enabled", "Filter": {"Prefix": "tmp/"},
         "Expiration": {"Days": 2}}]})
    url, fields = presigned(s3, bucket, "tmp/x")
    status, headers, _ = post(url, fields)
    assert status == 204 and headers["x-amz-expiration"].endswith('rule-id="tmp"')
    assert headers["x-amz-expiration"] == s3.head_object(Bucket=bucket, Key="tmp/x")["Expiration"]


def test_versioned_bucket_answers_the_version_id(s3, bucket):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    url, fields = presigned(s3, bucket, "v")
    status, headers, _ = post(url, fields, b"1")
    assert status == 204
    assert headers["x-amz-version-id"] == s3.head_object(Bucket=bucket, Key="v")["VersionId"]


# ---- refusals ---------------------------------------------------------------------------------


def test_expired_policy_is_access_denied(node, s3, bucket):
    fields = {"key": "late", **sign_policy({"expiration": expiry(-timedelta(minutes=1)),
                                            "conditions": [{"bucket": bucket},
                                                           ["starts-with", "$key", ""]]})}
    status, _, body = post(f"{node.s3_url}/{bucket}", fields)
    assert (status, code_of(body)) == (403, "AccessDenied")
    assert b"expired" in body
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="late")
    assert error_code(exc)[1] == 404


def test_a_policy_signed_with_the_wrong_secret_is_refused(node, bucket):
    fields = {"key": "k", **sign_policy({"expiration": expiry(),
                                         "conditions": [{"bucket": bucket}, {"key": "k"}]},
                                        secret="not-the-secret")}
    status, _, body = post(f"{node.s3_url}/{bucket}", fields)
    assert (status, code_of(body)) == (403, "SignatureDoesNotMatch")


def test_tampered_field_fails_its_condition(s3, bucket):
    url, fields = presigned(s3, bucket, "exact")
    status, _, body = post(url, {**fields, "key": "elsewhere"})
    assert (status, code_of(body)) == (403, "AccessDenied")
    assert b"Policy Condition failed" in body


def test_a_field_the_policy_does_not_mention_is_refused(s3, bucket):
    url, fields = presigned(s3, bucket, "extra")
    status, _, body = post(url, {**fields, "x-amz-meta-sneaky": "1"})
    assert (status, code_of(body)) == (403, "AccessDenied")
    assert b"Extra input fields" in body
    ignored = {**fields, "x-ignore-anything": "ok"}
    assert post(url, ignored)[0] == 204


@pytest.mark.parametrize("algorithm", ["CRC32", "SHA256"])
def test_a_checksum_field_is_verified_and_stored(s3, bucket, algorithm):
    url, fields = presigned(s3, bucket, f"ck-{algorithm}")
    data = b"checked form upload"
    digest = (hashlib.sha256(data).digest() if algorithm == "SHA256"
              else zlib.crc32(data).to_bytes(4, "big"))
    field = f"x-amz-checksum-{algorithm.lower()}"
    wrong = base64.b64encode(bytes(len(digest))).decode()
    status, _, body = post(url, {**fields, field: wrong}, data)
    assert (status, code_of(body)) == (400, "BadDigest")
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key=f"ck-{algorithm}")
    assert error_code(exc)[1] == 404
    right = base64.b64encode(digest).decode()
    assert post(url, {**fields, field: right}, data)[0] == 204
    head = s3.head_object(Bucket=bucket, Key=f"ck-{algorithm}", ChecksumMode="ENABLED")
    assert head[f"Checksum{algorithm}"] == right


def test_content_length_range_is_enforced(s3, bucket):
    url, fields = presigned(s3, bucket, "sized", Conditions=[["content-length-range", 3, 5]])
    status, _, body = post(url, fields, b"123456")
    assert (status, code_of(body)) == (400, "EntityTooLarge")
    status, _, body = post(url, fields, b"12")
    assert (status, code_of(body)) == (400, "EntityTooSmall")
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="sized")
    assert post(url, fields, b"1234")[0] == 204


def test_starts_with_and_eq_conditions(node, s3, bucket):
    doc = {"expiration": expiry(), "conditions": [
        {"bucket": bucket}, ["starts-with", "$key", "user/"],
        ["eq", "$Content-Type", "text/plain"]]}
    signed = sign_policy(doc)
    ok = {"key": "user/a", "Content-Type": "text/plain", **signed}
    assert post(f"{node.s3_url}/{bucket}", ok)[0] == 204
    assert s3.head_object(Bucket=bucket, Key="user/a")["ContentType"] == "text/plain"
    status, _, body = post(f"{node.s3_url}/{bucket}", {**ok, "key": "admin/a"})
    assert (status, code_of(body)) == (403, "AccessDenied")
    status, _, body = post(f"{node.s3_url}/{bucket}", {**ok, "Content-Type": "text/html"})
    assert (status, code_of(body)) == (403, "AccessDenied")


def test_policy_for_another_bucket_is_refused(node, s3, bucket):
    signed = sign_policy({"expiration": expiry(), "conditions": [
        {"bucket": "some-other-bucket"}, ["starts-with", "$key", ""]]})
    status, _, body = post(f"{node.s3_url}/{bucket}", {"key": "k", **signed})
    assert (status, code_of(body)) == (403, "AccessDenied")


def test_malformed_forms(node, bucket):
    signed = sign_policy({"expiration": expiry(), "conditions": [{"bucket": bucket}]})
    status, _, body = post(f"{node.s3_url}/{bucket}", signed)  # no key field
    assert (status, code_of(body)) == (400, "InvalidArgument")
    status, _, body = post(f"{node.s3_url}/{bucket}",
                           {"key": "k", **signed, "policy": "not base64 json!"})
    assert (status, code_of(body)) == (400, "InvalidPolicyDocument")
    request = urllib.request.Request(
        f"{node.s3_url}/{bucket}", data=b"key=k", method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(request, timeout=10)
    assert exc.value.code == 412 and code_of(exc.value.read()) == "PreconditionFailed"


def test_the_signer_must_be_allowed_to_write_the_bucket(node, s3, bucket):
    """The policy's credential names the user: one without write access is refused."""
    name = f"poster{uuid.uuid4().hex[:6]}"
    status, created = node.admin("/users", method="POST", body={"name": name})
    assert status in (200, 201), created
    other = {"access_key": created["access_key"], "secret_key": created["secret_key"]}
    doc = {"expiration": expiry(), "conditions": [{"bucket": bucket}, {"key": "k"}]}
    fields = {"key": "k", **sign_policy(doc, access_key=other["access_key"],
                                        secret=other["secret_key"])}
    status, _, body = post(f"{node.s3_url}/{bucket}", fields)
    assert (status, code_of(body)) == (403, "AccessDenied")
    owner = s3.get_bucket_acl(Bucket=bucket)["Owner"]["ID"]
    s3.put_bucket_acl(Bucket=bucket, GrantWrite=f"id={created['owner_id']}",
                      GrantFullControl=f"id={owner}")
    assert post(f"{node.s3_url}/{bucket}", fields)[0] == 204


def test_anonymous_post_without_policy_needs_a_public_bucket(node, s3, bucket):
    status, _, body = post(f"{node.s3_url}/{bucket}", {"key": "anon"})
    assert (status, code_of(body)) == (403, "AccessDenied")
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read-write")
    assert post(f"{node.s3_url}/{bucket}", {"key": "anon"})[0] == 204
    assert s3.get_object(Bucket=bucket, Key="anon")["Body"].read() == b"hello"


def sign_v2(doc: dict) -> dict[str, str]:
    policy = base64.b64encode(json.dumps(doc).encode()).decode()
    signature = base64.b64encode(hmac.new(SECRET_KEY.encode(), policy.encode(),
                                          hashlib.sha1).digest()).decode()
    return {"AWSAccessKeyId": ACCESS_KEY, "policy": policy, "signature": signature}


def test_sigv2_policy_with_case_insensitive_field_names(node, s3, bucket):
    doc = {"expiration": expiry(), "conditions": [
        {"bUcKeT": bucket}, ["StArTs-WiTh", "$KeY", "foo"], {"AcL": "private"},
        ["StArTs-WiTh", "$CoNtEnT-TyPe", "text/plain"], ["content-length-range", 0, 1024]]}
    signed = sign_v2(doc)
    fields = [("kEy", "foo.txt"), ("AWSAccessKeyId", signed["AWSAccessKeyId"]), ("aCl", "private"),
              ("sIgNaTuRe", signed["signature"]), ("pOLICy", signed["policy"]),
              ("Content-Type", "text/plain")]
    status, _, body = post(f"{node.s3_url}/{bucket}", fields, b"bar")
    assert status == 204, body
    assert s3.get_object(Bucket=bucket, Key="foo.txt")["Body"].read() == b"bar"
    bad = [(k, v + "x" if k == "sIgNaTuRe" else v) for k, v in fields]
    status, _, body = post(f"{node.s3_url}/{bucket}", bad, b"bar")
    assert (status, code_of(body)) == (403, "SignatureDoesNotMatch")


@pytest.mark.parametrize("doc, status", [
    ({"expiration": "2100-01-01 00:00:00", "conditions": []}, 400),  # not ISO 8601 with Z
    ({"EXPIRATION": "2100-01-01T00:00:00Z", "conditions": []}, 400),  # names are case-sensitive
    ({"expiration": "2100-01-01T00:00:00Z", "CONDITIONS": []}, 400),
    ({"expiration": "2100-01-01T00:00:00Z", "conditions": [{}]}, 400),
    ({"expiration": "2100-01-01T00:00:00Z",
      "conditions": ["BUCKET", ["content-length-range", 0]]}, 400),
    ({"expiration": "2100-01-01T00:00:00Z",
      "conditions": [["content-length-range", -1, 10], ["starts-with", "$key", ""]]}, 400),
    ({"expiration": "2100-01-01T00:00:00Z",  # no bucket condition
      "conditions": [["starts-with", "$key", ""]]}, 403),
])
def test_malformed_policies(node, bucket, doc, status):
    fields = {"key": "k", **sign_v2(doc)}
    got, _, body = post(f"{node.s3_url}/{bucket}", fields)
    assert got == status, body
    assert code_of(body) == ("InvalidPolicyDocument" if status == 400 else "AccessDenied")


# ---- policy checks (pure) ---------------------------------------------------------------------


def _policy(*conditions) -> postpolicy.Policy:
    doc = {"expiration": "2100-01-01T00:00:00.000Z", "conditions": list(conditions)}
    return postpolicy.decode(base64.b64encode(json.dumps(doc).encode()).decode())


NOW = datetime(2030, 1, 1, tzinfo=UTC)


def test_policy_conditions_eq_starts_with_and_extra_fields():
    policy = _policy({"bucket": "b"}, ["starts-with", "$key", "u/"], ["eq", "$acl", "private"],
                     ["starts-with", "$Content-Type", "image/"])
    fields = {"key": "u/1", "acl": "private", "content-type": "image/png, image/jpeg",
              "policy": "...", "x-amz-signature": "..."}
    postpolicy.check(policy, fields, bucket="b", now=NOW)
    for changed in ({"key": "v/1"}, {"acl": "public-read"},
                    {"content-type": "image/png, text/html"}, {"x-amz-meta-extra": "1"}):
        with pytest.raises(S3Error) as exc:
            postpolicy.check(policy, {**fields, **changed}, bucket="b", now=NOW)
        assert exc.value.code.name == "AccessDenied"
    with pytest.raises(S3Error):
        postpolicy.check(policy, fields, bucket="other", now=NOW)
    with pytest.raises(S3Error) as exc:
        postpolicy.check(policy, fields, bucket="b", now=datetime(2100, 1, 1, tzinfo=UTC))
    assert "expired" in exc.value.message


def test_content_length_range_is_read_from_the_policy():
    assert _policy({"bucket": "b"}, ["content-length-range", 1, 10]).length_range == (1, 10)
    assert _policy({"bucket": "b"}).length_range is None


def test_a_body_that_is_not_multipart_is_malformed_post_request(node, bucket):
    request = urllib.request.Request(
        f"{node.s3_url}/{bucket}", data=b"no boundary here at all", method="POST",
        headers={"Content-Type": "multipart/form-data; boundary=xyz"})
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(request, timeout=10)
    assert exc.value.code == 400 and code_of(exc.value.read()) == "MalformedPOSTRequest"
