"""Keys XML cannot carry as they are come back as character references, so one odd key never
makes a listing ill-formed, and a CR is not read back as LF.

AWS documents the references ("XML related object key constraints") and writes `&#x1;` and the
like; clients that need every key verbatim ask for `encoding-type=url` (the SDKs do). These tests
send raw signed requests without it, as curl, s3cmd-era tools and hand-written clients do.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from urllib.parse import quote

import pytest
import requests
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ODD = {"cr": "cr\rkey", "soh": "ctl\x01key", "vt": "vt\x0bkey", "nonchar": "nc\ufffekey"}
RAW_BYTES = [b"\r", b"\x01", b"\x0b", "\ufffe".encode()]
# References to characters XML 1.0 cannot hold at all: AWS writes them, strict parsers refuse
# them, so a test reads them back through a placeholder.
_INVALID_REF = re.compile(r"&#x(1|B|FFFE);")


def parse(body: bytes) -> ET.Element:
    """Parse a response; references to XML-1.0-invalid characters become their code point."""
    assert not any(raw in body.split(b"?>", 1)[1] for raw in RAW_BYTES), body
    text = _INVALID_REF.sub(lambda m: f"[U+{m[1]}]", body.decode())
    return ET.fromstring(text.encode())


def keys_in(root: ET.Element, tag: str = "Key") -> list[str]:
    return [el.text for el in root.iter() if el.tag.rsplit("}", 1)[-1] == tag]


EXPECTED = ["cr\rkey", "ctl[U+1]key", "nc[U+FFFE]key", "vt[U+B]key"]


@pytest.fixture
def odd_bucket(s3, bucket):
    for key in ODD.values():
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    return bucket


def raw_request(node, method: str, path: str, *, body: bytes = b"", headers=None):
    """A request signed by botocore's S3 signer (the path's %-escapes signed as sent)."""
    headers = {"x-amz-content-sha256": "UNSIGNED-PAYLOAD", **(headers or {})}
    request = AWSRequest(method=method, url=node.s3_url + path, data=body, headers=headers)
    S3SigV4Auth(Credentials(node.access_key, node.secret_key), "s3", "us-east-1").add_auth(request)
    answer = requests.request(
        method, request.url, data=body, timeout=30, headers=dict(request.headers.items())
    )
    return answer.status_code, answer.content


def get(node, path: str) -> bytes:
    status, body = raw_request(node, "GET", path)
    assert status == 200, body
    return body


def test_list_objects_v1_and_v2(node, odd_bucket):
    for path in (f"/{odd_bucket}", f"/{odd_bucket}?list-type=2"):
        body = get(node, path)
        assert b"&#xD;" in body and b"&#x1;" in body and b"&#xB;" in body
        assert b"&#xFFFE;" in body
        assert sorted(keys_in(parse(body))) == EXPECTED


def test_list_with_delimiter_and_prefix_echo(node, odd_bucket):
    body = get(node, f"/{odd_bucket}?list-type=2&delimiter=key&prefix={quote('ctl')}")
    root = parse(body)
    assert keys_in(root, "Prefix") == ["ctl", "ctl[U+1]key"]


def test_list_object_versions(node, s3, odd_bucket):
    s3.put_bucket_versioning(Bucket=odd_bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.delete_object(Bucket=odd_bucket, Key=ODD["soh"])  # a delete marker echoes the key too
    root = parse(get(node, f"/{odd_bucket}?versions"))
    assert sorted(set(keys_in(root))) == EXPECTED
    assert len(keys_in(root)) == 5


def test_multipart_listings_and_results(node, s3, bucket):
    upload_ids = {}
    for key in ODD.values():
        status, body = raw_request(node, "POST", f"/{bucket}/{quote(key)}?uploads")
        assert status == 200, body
        root = parse(body)
        assert (
            keys_in(root)[0]
            .replace("[U+1]", "\x01")
            .replace("[U+B]", "\x0b")
            .replace("[U+FFFE]", "\ufffe")
            == key
        )
        upload_ids[key] = keys_in(root, "UploadId")[0]
    assert sorted(keys_in(parse(get(node, f"/{bucket}?uploads")))) == EXPECTED
    for key, upload_id in upload_ids.items():
        s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=b"p")
        root = parse(get(node, f"/{bucket}/{quote(key)}?uploadId={upload_id}"))
        assert len(keys_in(root)) == 1


def test_delete_objects_result_keeps_the_carriage_return(node, s3, odd_bucket):
    body = b"<Delete><Object><Key>cr&#xD;key</Key></Object><Quiet>false</Quiet></Delete>"
    import base64
    import hashlib

    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
    status, answer = raw_request(
        node, "POST", f"/{odd_bucket}?delete", body=body, headers={"Content-MD5": md5}
    )
    assert status == 200, answer
    assert keys_in(parse(answer)) == ["cr\rkey"]
    assert ODD["cr"] not in [o["Key"] for o in s3.list_objects_v2(Bucket=odd_bucket)["Contents"]]


def test_an_error_naming_an_odd_key_is_well_formed(node, bucket):
    status, body = raw_request(node, "GET", f"/{bucket}/{quote('missing' + chr(1))}")
    assert status == 404
    assert parse(body).findtext("Code") == "NoSuchKey"


def test_boto3_still_gets_every_key_verbatim(s3, odd_bucket):
    """boto3 asks for encoding-type=url and decodes: the keys come back exactly."""
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=odd_bucket)["Contents"]]
    assert sorted(listed) == sorted(ODD.values())
    listed = [o["Key"] for o in s3.list_objects(Bucket=odd_bucket)["Contents"]]
    assert sorted(listed) == sorted(ODD.values())


def test_escape_text_units():
    from anode.s3.xml import escape_text

    assert escape_text("a&b<c>d") == "a&amp;b&lt;c&gt;d"
    assert escape_text("tab\there\nnewline") == "tab\there\nnewline"  # XML keeps these
    assert escape_text("cr\r\x00\x1f\ufffe\uffff") == "cr&#xD;&#x0;&#x1F;&#xFFFE;&#xFFFF;"
    assert escape_text("é€😀") == "é€😀"
