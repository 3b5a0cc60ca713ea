"""Request XML is parsed by defusedxml: a DTD is refused (400 MalformedXML) whatever the body's
encoding, so no entity is ever declared, expanded or fetched, on every endpoint that reads XML
(S3 Select's request included)."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from s3util import raw_request

from anode.s3 import xml
from anode.s3.errors import ErrorCode, S3Error
from anode.select import SelectError, parse_request

TAGGING = (
    '<?xml version="1.0" encoding="{enc}"?>'
    '<!DOCTYPE Tagging [<!ENTITY a "expanded">]>'
    "<Tagging><TagSet><Tag><Key>k</Key><Value>&a;</Value></Tag></TagSet></Tagging>"
)


def code_of(body: bytes) -> str | None:
    found = re.search(rb"<Code>(.*?)</Code>", body)
    return found[1].decode() if found else None


def md5_header(body: bytes) -> dict[str, str]:
    return {"Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode()}


@pytest.mark.parametrize("encoding", ["UTF-16", "UTF-16LE", "UTF-16BE", "UTF-8"])
def test_entities_in_any_encoding_are_refused(node, s3, bucket, encoding):
    codec = {"UTF-16": "utf-16"}.get(encoding, encoding.lower())
    body = TAGGING.format(enc=encoding).encode(codec)
    if codec == "utf-16be":
        body = b"\xfe\xff" + body  # a BOM, so the parser knows the byte order
    elif codec == "utf-16le":
        body = b"\xff\xfe" + body
    status, answer = raw_request(
        node, "PUT", f"/{bucket}?tagging", body=body, headers=md5_header(body)
    )
    assert (status, code_of(answer)) == (400, "MalformedXML"), answer
    tags = _tags_or_none(s3, bucket)
    assert tags is None, tags  # nothing was stored, let alone an expanded entity


def _tags_or_none(s3, bucket):
    from botocore.exceptions import ClientError

    try:
        return s3.get_bucket_tagging(Bucket=bucket)["TagSet"]
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "NoSuchTagSet"
        return None


def _utf16_dtd(root: str, inner: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE {root} [<!ENTITY a "x">]>'
        f"<{root}>{inner}</{root}>"
    ).encode("utf-16")


@pytest.mark.parametrize(
    "query,key,root,inner",
    [
        ("delete", None, "Delete", "<Object><Key>&a;</Key></Object>"),
        ("versioning", None, "VersioningConfiguration", "<Status>Enabled</Status>"),
        (
            "cors",
            None,
            "CORSConfiguration",
            "<CORSRule><AllowedMethod>GET</AllowedMethod><AllowedOrigin>&a;</AllowedOrigin></CORSRule>",
        ),
        (
            "lifecycle",
            None,
            "LifecycleConfiguration",
            "<Rule><ID>&a;</ID><Status>Enabled</Status><Filter/><Expiration><Days>1</Days>"
            "</Expiration></Rule>",
        ),
        (
            "encryption",
            None,
            "ServerSideEncryptionConfiguration",
            "<Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm>"
            "</ApplyServerSideEncryptionByDefault></Rule>",
        ),
        ("acl", "obj", "AccessControlPolicy", "<Owner><ID>&a;</ID></Owner>"),
        ("tagging", "obj", "Tagging", "<TagSet><Tag><Key>&a;</Key><Value>v</Value></Tag></TagSet>"),
    ],
)
def test_every_xml_endpoint_refuses_a_utf16_dtd(node, s3, bucket, query, key, root, inner):
    s3.put_object(Bucket=bucket, Key="obj", Body=b"x")
    body = _utf16_dtd(root, inner)
    method = "POST" if query == "delete" else "PUT"
    path = f"/{bucket}/{key}?{query}" if key else f"/{bucket}?{query}"
    status, answer = raw_request(node, method, path, body=body, headers=md5_header(body))
    expected = "MalformedACLError" if query == "acl" else "MalformedXML"  # AWS's code for ACLs
    assert (status, code_of(answer)) == (400, expected), answer
    assert s3.get_object(Bucket=bucket, Key="obj")["Body"].read() == b"x"


def test_select_request_refuses_a_dtd(node, s3, bucket):
    s3.put_object(Bucket=bucket, Key="data.csv", Body=b"a,b\n1,2\n")
    inner = (
        "<Expression>&a;</Expression><ExpressionType>SQL</ExpressionType>"
        "<InputSerialization><CSV/></InputSerialization>"
        "<OutputSerialization><CSV/></OutputSerialization>"
    )
    for body in (
        _utf16_dtd("SelectObjectContentRequest", inner),
        _utf16_dtd("SelectObjectContentRequest", inner)
        .decode("utf-16")
        .replace('encoding="UTF-16"', 'encoding="UTF-8"')
        .encode(),
    ):
        status, answer = raw_request(
            node, "POST", f"/{bucket}/data.csv?select&select-type=2", body=body
        )
        assert (status, code_of(answer)) == (400, "MalformedXML"), answer


# ---- the parsers themselves -----------------------------------------------------------------


BOMBS = [
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><r>&b;</r>',
    b'<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>',
    b'<!DOCTYPE r SYSTEM "http://127.0.0.1:9/dtd"><r/>',
    b"<!DOCTYPE r><r/>",
    '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r [<!ENTITY a "a">]><r>&a;</r>'.encode(
        "utf-16"
    ),
    '<?xml version="1.0" encoding="UTF-32"?><!DOCTYPE r><r/>'.encode("utf-32"),
]


@pytest.mark.parametrize("body", BOMBS)
def test_s3_parser_refuses_any_dtd(body):
    with pytest.raises(S3Error) as exc:
        xml.parse(body, "r")
    assert exc.value.code is ErrorCode.MalformedXML


SELECT = (
    "<SelectObjectContentRequest><Expression>&a;</Expression>"
    "<ExpressionType>SQL</ExpressionType><InputSerialization><CSV/></InputSerialization>"
    "<OutputSerialization><CSV/></OutputSerialization></SelectObjectContentRequest>"
)


@pytest.mark.parametrize("codec", ["utf-8", "utf-16"])  # expat reads no UTF-32
def test_select_parser_refuses_any_dtd(codec):
    body = (
        f'<?xml version="1.0" encoding="{codec.upper()}"?>'
        '<!DOCTYPE SelectObjectContentRequest [<!ENTITY a "SELECT * FROM S3Object">]>' + SELECT
    ).encode(codec)
    with pytest.raises(SelectError) as exc:
        parse_request(body)
    assert exc.value.code == "MalformedXML"
    plain = SELECT.replace("&a;", "SELECT * FROM S3Object").encode(codec)
    assert parse_request(plain).expression == "SELECT * FROM S3Object"


def test_plain_utf16_xml_without_dtd_is_still_read():
    body = '<?xml version="1.0" encoding="UTF-16"?><r><k>é</k></r>'.encode("utf-16")
    assert xml.text(xml.parse(body, "r"), "k") == "é"
