"""Signed means signed: what a signature does not cover is refused, not obeyed.

Attacks as a holder of someone's presigned URL would try them, against real nodes: headers the
signer never signed (SigV4 and SigV2 URLs), a credential scope for another region, sub-resources
a SigV2 URL did not sign, and expiry values out of range. Requests are signed by botocore's own
signers and sent raw with `requests`, so exactly what we choose is signed.
"""

from __future__ import annotations

import http.client
import itertools
import os
import re
from urllib.parse import urlsplit

import boto3
import pytest
import requests
from anode_procs import NodeProcess
from botocore.auth import HmacV1QueryAuth, S3SigV4QueryAuth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

_names = itertools.count()


def xml_field(body: bytes | str, name: str) -> str | None:
    text = body.decode() if isinstance(body, bytes) else body
    found = re.search(f"<{name}>(.*?)</{name}>", text, re.S)
    return found[1] if found else None


def make_user(node, name: str) -> tuple[str, str]:
    keys = {"name": name, "access_key": f"{name.upper()}KEY", "secret_key": f"{name}-secret"}
    status, doc = node.admin("/users", method="POST", body=keys)
    assert status in (200, 201), doc
    return keys["access_key"], keys["secret_key"]


@pytest.fixture
def alice(node):
    """A user with a private bucket holding a secret, and an empty drop bucket."""
    access, secret = make_user(node, "sig-alice")
    client = node.client(access, secret)
    suffix = f"{os.getpid()}-{next(_names)}"
    private, drop = f"sig-private-{suffix}", f"sig-drop-{suffix}"
    client.create_bucket(Bucket=private)
    client.create_bucket(Bucket=drop)
    client.put_object(Bucket=private, Key="payroll.csv", Body=b"alice,1000000\n")
    return client, private, drop


def assert_absent(client, bucket: str, key: str) -> None:
    listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    assert key not in [o["Key"] for o in listed]


# ---- SigV4 presigned URLs: every x-amz-* header present must be signed ----------------


def test_presigned_put_cannot_be_turned_into_a_copy_of_private_data(node, alice):
    client, private, drop = alice
    url = client.generate_presigned_url("put_object", {"Bucket": drop, "Key": "upload.bin"})
    assert "X-Amz-Signature=" in url
    answer = requests.put(
        url,
        headers={"x-amz-copy-source": f"/{private}/payroll.csv", "x-amz-acl": "public-read"},
        timeout=30,
    )
    assert answer.status_code == 403, answer.text
    assert xml_field(answer.content, "Code") == "AccessDenied"
    assert "not signed" in xml_field(answer.content, "Message")
    assert xml_field(answer.content, "HeadersNotSigned") == "x-amz-acl, x-amz-copy-source"
    assert requests.get(f"{node.s3_url}/{drop}/upload.bin", timeout=30).status_code in (403, 404)
    assert_absent(client, drop, "upload.bin")


@pytest.mark.parametrize(
    "header,value",
    [
        ("x-amz-meta-owner", "mallory"),
        ("x-amz-tagging", "public=yes"),
        ("x-amz-acl", "public-read"),
        ("x-amz-grant-read", 'uri="http://acs.amazonaws.com/groups/global/AllUsers"'),
        ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        ("X-Amz-Server-Side-Encryption", "AES256"),
    ],
)
def test_presigned_put_refuses_any_unsigned_amz_header(node, alice, header, value):
    client, _, drop = alice
    url = client.generate_presigned_url("put_object", {"Bucket": drop, "Key": "u.bin"})
    answer = requests.put(url, data=b"body", headers={header: value}, timeout=30)
    assert answer.status_code == 403, answer.text
    assert xml_field(answer.content, "Code") == "AccessDenied"
    assert xml_field(answer.content, "HeadersNotSigned") == header.lower()
    assert_absent(client, drop, "u.bin")


def test_presigned_put_with_signed_amz_headers_still_works(node, alice):
    """What the signer did sign (metadata, ACL, tagging as botocore presigns them) is honoured,
    and x-amz-content-sha256 may ride along unsigned: it is the canonical request's payload
    hash, so a changed value fails the signature instead."""
    client, _, drop = alice
    url = client.generate_presigned_url(
        "put_object",
        {
            "Bucket": drop,
            "Key": "signed.bin",
            "Metadata": {"owner": "alice"},
            "ACL": "private",
            "Tagging": "team=pay",
        },
    )
    signed = {"x-amz-meta-owner": "alice", "x-amz-acl": "private", "x-amz-tagging": "team=pay"}
    answer = requests.put(url, data=b"hello", headers=signed, timeout=30)
    assert answer.status_code == 200, answer.text
    head = client.head_object(Bucket=drop, Key="signed.bin")
    assert head["Metadata"] == {"owner": "alice"}

    plain = client.generate_presigned_url("put_object", {"Bucket": drop, "Key": "plain.bin"})
    answer = requests.put(
        plain, data=b"x", timeout=30, headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD"}
    )
    assert answer.status_code == 200, answer.text
    answer = requests.put(
        plain,
        data=b"x",
        timeout=30,
        headers={"x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER"},
    )
    assert answer.status_code == 403
    assert xml_field(answer.content, "Code") == "SignatureDoesNotMatch"


def test_presigned_get_refuses_unsigned_amz_header(node, alice):
    client, private, _ = alice
    url = client.generate_presigned_url("get_object", {"Bucket": private, "Key": "payroll.csv"})
    assert requests.get(url, timeout=30).content == b"alice,1000000\n"
    answer = requests.get(url, headers={"x-amz-request-payer": "requester"}, timeout=30)
    assert answer.status_code == 403
    assert xml_field(answer.content, "Code") == "AccessDenied"


# ---- SigV2 presigned URLs: x-amz-* headers are in the string to sign --------------------


def v2_client(node, access: str, secret: str):
    return boto3.client(
        "s3",
        endpoint_url=node.s3_url,
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(signature_version="s3", s3={"addressing_style": "path"}),
    )


def test_sigv2_presigned_put_refuses_unsigned_amz_headers(node, alice):
    client, private, drop = alice
    creds = client._request_signer._credentials
    v2 = v2_client(node, creds.access_key, creds.secret_key)
    url = v2.generate_presigned_url("put_object", {"Bucket": drop, "Key": "v2.bin"})
    assert "AWSAccessKeyId=" in url
    for headers in (
        {"x-amz-copy-source": f"/{private}/payroll.csv"},
        {"x-amz-acl": "public-read"},
        {"x-amz-meta-a": "b"},
    ):
        answer = requests.put(url, data=b"x", headers=headers, timeout=30)
        assert answer.status_code == 403, (headers, answer.text)
    assert_absent(client, drop, "v2.bin")
    assert requests.put(url, data=b"x", timeout=30).status_code == 200


# ---- the credential scope's region must be the node's --------------------------------


def header_signed(node, method: str, path: str, region: str) -> requests.Response:
    request = AWSRequest(
        method=method,
        url=node.s3_url + path,
        headers={
            "x-amz-content-sha256": "e3b0c44298fc1c149afbf4c8996fb924"
            "27ae41e4649b934ca495991b7852b855"
        },
    )
    SigV4Auth(Credentials(node.access_key, node.secret_key), "s3", region).add_auth(request)
    return requests.request(method, request.url, headers=dict(request.headers.items()), timeout=30)


def presigned(node, method: str, path: str, region: str, expires: int = 60) -> str:
    request = AWSRequest(method=method, url=node.s3_url + path)
    S3SigV4QueryAuth(
        Credentials(node.access_key, node.secret_key), "s3", region, expires=expires
    ).add_auth(request)
    return request.url


@pytest.mark.parametrize("region", ["eu-west-1", "nowhere-42"])
def test_credential_scope_for_another_region_is_refused(node, s3, bucket, region):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert header_signed(node, "GET", f"/{bucket}/k", "us-east-1").status_code == 200
    answer = header_signed(node, "GET", f"/{bucket}/k", region)
    assert answer.status_code == 400
    assert xml_field(answer.content, "Code") == "AuthorizationHeaderMalformed"
    assert xml_field(answer.content, "Region") == "us-east-1"
    assert f"the region '{region}' is wrong; expecting 'us-east-1'" in answer.text

    assert (
        requests.get(presigned(node, "GET", f"/{bucket}/k", "us-east-1"), timeout=30).status_code
        == 200
    )
    answer = requests.get(presigned(node, "GET", f"/{bucket}/k", region), timeout=30)
    assert answer.status_code == 400
    assert xml_field(answer.content, "Code") == "AuthorizationQueryParametersError"
    assert xml_field(answer.content, "Region") == "us-east-1"


def test_the_expected_region_is_the_configured_one(tmp_path):
    """A node configured for eu-central-1 wants that region; boto3 clients configured for
    another follow the error's <Region> and re-sign, as they do on AWS."""
    proc = NodeProcess(tmp_path / "data", env={"ANODE_NODE_REGION": "eu-central-1"}).start()
    try:
        answer = header_signed(proc, "GET", "/", "us-east-1")
        assert answer.status_code == 400
        assert xml_field(answer.content, "Region") == "eu-central-1"
        assert header_signed(proc, "GET", "/", "eu-central-1").status_code == 200
        right = boto3.client(
            "s3",
            endpoint_url=proc.s3_url,
            region_name="eu-central-1",
            aws_access_key_id=proc.access_key,
            aws_secret_access_key=proc.secret_key,
        )
        right.create_bucket(
            Bucket="regional", CreateBucketConfiguration={"LocationConstraint": "eu-central-1"}
        )
        right.put_object(Bucket="regional", Key="k", Body=b"here")
        assert right.get_object(Bucket="regional", Key="k")["Body"].read() == b"here"
    finally:
        proc.stop()


# ---- presigned expiry -------------------------------------------------------------------


def test_presigned_expiry_values(node, s3, bucket):
    """Elapsed: 403 AccessDenied "Request has expired". Negative or over a week: 400
    AuthorizationQueryParametersError, which is what AWS answers (not 403, whatever some
    suites expect: ceph/s3-tests#462)."""
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    answer = requests.get(
        presigned(node, "GET", f"/{bucket}/k", "us-east-1", expires=0), timeout=30
    )
    assert answer.status_code == 403
    assert xml_field(answer.content, "Code") == "AccessDenied"
    assert xml_field(answer.content, "Message") == "Request has expired"
    for expires, message in (
        (-7, "X-Amz-Expires must be non-negative"),
        (604801, "X-Amz-Expires must be less than a week"),
    ):
        answer = requests.get(
            presigned(node, "GET", f"/{bucket}/k", "us-east-1", expires=expires), timeout=30
        )
        assert answer.status_code == 400
        assert xml_field(answer.content, "Code") == "AuthorizationQueryParametersError"
        assert xml_field(answer.content, "Message").startswith(message)
    request = AWSRequest(method="GET", url=f"{node.s3_url}/{bucket}/k")
    HmacV1QueryAuth(Credentials(node.access_key, node.secret_key), expires=-7).add_auth(request)
    answer = requests.get(request.url, timeout=30)
    assert answer.status_code == 403
    assert xml_field(answer.content, "Message") == "Request has expired"


def test_post_policy_signed_for_another_region_is_refused(node, s3, bucket):
    def form(region: str) -> tuple[str, dict]:
        client = boto3.client(
            "s3",
            endpoint_url=node.s3_url,
            region_name=region,
            aws_access_key_id=node.access_key,
            aws_secret_access_key=node.secret_key,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )
        answer = client.generate_presigned_post(Bucket=bucket, Key="form.bin")
        return answer["url"], answer["fields"]

    url, fields = form("eu-west-1")
    answer = requests.post(url, data=fields, files={"file": b"x"}, timeout=30)
    assert answer.status_code == 400, answer.text
    assert xml_field(answer.content, "Code") == "InvalidArgument"
    assert xml_field(answer.content, "Region") == "us-east-1"
    url, fields = form("us-east-1")
    assert requests.post(url, data=fields, files={"file": b"x"}, timeout=30).status_code == 204
    assert s3.get_object(Bucket=bucket, Key="form.bin")["Body"].read() == b"x"


def test_cli_presigned_urls_still_work(node, s3, bucket):
    """The aws CLI's and s5cmd's presigned GETs (their own signers) pass every check above."""
    import subprocess
    import sys
    from pathlib import Path

    from test_clients import client_env

    s3.put_object(Bucket=bucket, Key="shared file.txt", Body=b"shared")
    binaries = Path(sys.executable).parent
    commands = [
        [str(binaries / "aws"), "--endpoint-url", node.s3_url, "s3", "presign"],
        [str(binaries / "s5cmd"), "--endpoint-url", node.s3_url, "presign"],
    ]
    for command in commands:
        result = subprocess.run(
            [*command, f"s3://{bucket}/shared file.txt"],
            env=client_env(node),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        url = result.stdout.strip()
        answer = requests.get(url, timeout=30)
        assert (answer.status_code, answer.content) == (200, b"shared"), (command, answer.text)
        answer = requests.get(url, headers={"x-amz-acl": "public-read"}, timeout=30)
        assert answer.status_code == 403, (command, answer.text)


# ---- SigV2: sub-resources its string to sign leaves out are refused ---------------------


def raw_get(url: str) -> tuple[int, bytes]:
    """GET exactly this URL (requests would decode %6C to l before sending)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request("GET", f"{parts.path}?{parts.query}")
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def test_sigv2_url_cannot_be_replayed_as_an_unsigned_subresource(node, s3):
    """A SigV2 PutObject URL replayed as `?retention` or `?legal-hold` (which SigV2's string to
    sign leaves out) would set a lock as the signer: SigV2 is refused for such sub-resources
    (400 InvalidRequest, use SigV4), and a sub-resource written %-encoded is still signed."""
    name = f"sig-lock-{os.getpid()}-{next(_names)}"
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    s3.put_object(Bucket=name, Key="doc", Body=b"mine")
    v2 = v2_client(node, node.access_key, node.secret_key)
    url = v2.generate_presigned_url("put_object", {"Bucket": name, "Key": "doc"})
    retention = (
        b"<Retention><Mode>GOVERNANCE</Mode>"
        b"<RetainUntilDate>2030-01-01T00:00:00Z</RetainUntilDate></Retention>"
    )
    for sub, body in (
        ("retention", retention),
        ("legal-hold", b"<LegalHold><Status>ON</Status></LegalHold>"),
    ):
        answer = requests.put(f"{url}&{sub}", data=body, timeout=30)
        assert answer.status_code == 400, answer.text
        assert xml_field(answer.content, "Code") == "InvalidRequest"
        assert "AWS4-HMAC-SHA256" in xml_field(answer.content, "Message")
    head = s3.head_object(Bucket=name, Key="doc")
    assert "ObjectLockMode" not in head and "ObjectLockLegalHoldStatus" not in head
    # what SigV2 does sign stays signed, however it is spelled
    get_url = v2.generate_presigned_url("get_object", {"Bucket": name, "Key": "doc"})
    assert requests.get(get_url, timeout=30).content == b"mine"
    status, body = raw_get(get_url.replace("?", "?ac%6C&", 1))  # would be GetObjectAcl
    assert status == 403
    assert xml_field(body, "Code") == "SignatureDoesNotMatch"
    # and SigV4 clients still reach the sub-resources
    s3.put_object_legal_hold(Bucket=name, Key="doc", LegalHold={"Status": "OFF"})
