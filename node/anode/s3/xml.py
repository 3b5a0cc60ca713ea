"""S3 XML in and out: small builders for responses, a strict parser for request bodies.

Responses are built as strings (faster than a DOM for the hot list paths) from nested tuples:
`element("ListBucketResult", [("Name", "b"), ("Contents", [("Key", "k")])])`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

from .errors import ErrorCode, S3Error

NS = "http://s3.amazonaws.com/doc/2006-03-01/"
HEADER = '<?xml version="1.0" encoding="UTF-8"?>\n'
MAX_BODY = (
    1024 * 1024
)  # request XML larger than this is refused (DeleteObjects of 1000 keys ~ 100 KiB)

Node = tuple[str, Any]


def _render(name: str, value: Any, out: list[str]) -> None:
    if value is None:
        return
    if isinstance(value, list | tuple) and (not value or isinstance(value[0], tuple)):
        out.append(f"<{name}>")
        for child_name, child_value in value:
            _render(child_name, child_value, out)
        out.append(f"</{name}>")
    elif isinstance(value, bool):
        out.append(f"<{name}>{'true' if value else 'false'}</{name}>")
    else:
        out.append(f"<{name}>{escape(str(value))}</{name}>")


def document(root: str, children: Iterable[Node], *, namespace: bool = True) -> bytes:
    out = [HEADER, f'<{root} xmlns="{NS}">' if namespace else f"<{root}>"]
    for name, value in children:
        _render(name, value, out)
    out.append(f"</{root}>")
    return "".join(out).encode()


def timestamp(seconds: float) -> str:
    """ISO 8601 with milliseconds, as S3 writes LastModified in XML."""
    dt = datetime.fromtimestamp(seconds, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse(body: bytes, root: str) -> ET.Element:
    """Parse a request body whose root element must be `root` (namespace optional)."""
    if not body.strip():
        raise S3Error(ErrorCode.MalformedXML)
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise S3Error(ErrorCode.MalformedXML, "DTDs are not allowed")
    try:
        element = ET.fromstring(body)
    except ET.ParseError:
        raise S3Error(ErrorCode.MalformedXML) from None
    if local(element.tag) != root:
        raise S3Error(ErrorCode.MalformedXML)
    return element


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def children(element: ET.Element, name: str) -> list[ET.Element]:
    return [child for child in element if local(child.tag) == name]


def text(element: ET.Element, name: str) -> str | None:
    found = children(element, name)
    return (found[0].text or "") if found else None
