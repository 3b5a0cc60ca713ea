"""S3 XML in and out: small builders for responses, a strict parser for request bodies.

Responses are built as strings (faster than a DOM for the hot list paths) from nested tuples:
`element("ListBucketResult", [("Name", "b"), ("Contents", [("Key", "k")])])`.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as DefusedET

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
        out.append(f"<{name}>{escape_text(str(value))}</{name}>")


# Characters a key may hold that XML text cannot carry as they are: CR (a parser would read it
# as LF) and those outside XML 1.0's Char production (raw, they make the whole document
# ill-formed). AWS writes them as character references ("XML related object key constraints");
# clients that need every key verbatim ask for encoding-type=url, as the SDKs do.
_CHAR_REF = re.compile("[\x00-\x08\x0b\x0c\r\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _char_ref(match: re.Match[str]) -> str:
    return f"&#x{ord(match[0]):X};"


def escape_text(value: str) -> str:
    """`value` as XML character data: markup escaped, the characters above as references."""
    return _CHAR_REF.sub(_char_ref, escape(value))


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
    try:
        element = parse_untrusted(body)
    except DefusedXmlException:
        raise S3Error(ErrorCode.MalformedXML, "DTDs and entities are not allowed") from None
    except ET.ParseError:
        raise S3Error(ErrorCode.MalformedXML) from None
    if local(element.tag) != root:
        raise S3Error(ErrorCode.MalformedXML)
    return element


def parse_untrusted(body: bytes) -> ET.Element:
    """Parse XML from a client: any DTD is refused (DefusedXmlException), whatever the document's
    encoding, so no entity is ever declared, expanded or fetched. Malformed: ET.ParseError."""
    return DefusedET.fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def children(element: ET.Element, name: str) -> list[ET.Element]:
    return [child for child in element if local(child.tag) == name]


def text(element: ET.Element, name: str) -> str | None:
    found = children(element, name)
    return (found[0].text or "") if found else None
