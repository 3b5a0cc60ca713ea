"""Parses and validates the SelectObjectContent request XML into a `SelectRequest`.

Everything that can be checked without reading the object is checked here (including parsing the
SQL), so that the handler can still answer a plain XML error before the event stream starts.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as DefusedET

from . import ast
from .errors import SelectError
from .sql_parser import parse


@dataclass(frozen=True)
class CsvInput:
    file_header_info: str = "NONE"  # USE | IGNORE | NONE
    field_delimiter: str = ","
    record_delimiter: str = "\n"
    quote_character: str = '"'
    quote_escape_character: str = '"'
    comments: str | None = None
    allow_quoted_record_delimiter: bool = False


@dataclass(frozen=True)
class CsvOutput:
    field_delimiter: str = ","
    record_delimiter: str = "\n"
    quote_character: str = '"'
    quote_escape_character: str = '"'
    quote_fields: str = "ASNEEDED"  # ALWAYS | ASNEEDED


@dataclass(frozen=True)
class SelectRequest:
    expression: str
    query: ast.Query
    input_format: str  # CSV | JSON | PARQUET
    compression: str = "NONE"  # NONE | GZIP | BZIP2
    csv_input: CsvInput = field(default_factory=CsvInput)
    json_type: str = "DOCUMENT"  # DOCUMENT | LINES
    output_format: str = "CSV"  # CSV | JSON
    csv_output: CsvOutput = field(default_factory=CsvOutput)
    json_record_delimiter: str = "\n"
    request_progress: bool = False
    scan_start: int | None = None
    scan_end: int | None = None  # inclusive, as AWS documents


def parse_request(xml_body: bytes) -> SelectRequest:
    """Validate the request body; raises `SelectError` with the AWS code on any problem."""
    if not xml_body or not xml_body.strip():
        raise SelectError("EmptyRequestBody")
    try:  # defusedxml: a DTD (so any entity) is refused, in whatever encoding it is written
        root = DefusedET.fromstring(_protect_carriage_returns(xml_body), forbid_dtd=True)
    except DefusedXmlException:
        raise SelectError("MalformedXML", "DTDs and entities are not allowed") from None
    except ET.ParseError as exc:
        raise SelectError("MalformedXML", f"the request XML is not well formed: {exc}") from exc
    _strip_namespaces(root)
    if root.tag != "SelectObjectContentRequest":
        raise SelectError("MalformedXML", f"unexpected root element {root.tag}")

    expression = _text(root, "Expression")
    if expression is None or not expression.strip():
        raise SelectError("MissingRequiredParameter", "Expression is required")
    expression_type = _text(root, "ExpressionType")
    if expression_type is None:
        raise SelectError("MissingRequiredParameter", "ExpressionType is required")
    if expression_type.strip().upper() != "SQL":
        raise SelectError("InvalidExpressionType")

    inp = root.find("InputSerialization")
    out = root.find("OutputSerialization")
    if inp is None:
        raise SelectError("MissingRequiredParameter", "InputSerialization is required")
    if out is None:
        raise SelectError("MissingRequiredParameter", "OutputSerialization is required")

    formats = [child for child in inp if child.tag in ("CSV", "JSON", "Parquet")]
    if not formats:
        raise SelectError("MissingRequiredParameter", "InputSerialization needs CSV/JSON/Parquet")
    if len(formats) > 1:
        raise SelectError("ObjectSerializationConflict")
    fmt = formats[0]
    compression = (_text(inp, "CompressionType") or "NONE").strip().upper()
    if compression not in ("NONE", "GZIP", "BZIP2"):
        raise SelectError("InvalidCompressionFormat", f"unsupported CompressionType {compression}")

    kwargs: dict[str, object] = {}
    if fmt.tag == "CSV":
        kwargs["csv_input"] = _csv_input(fmt)
        input_format = "CSV"
    elif fmt.tag == "JSON":
        json_type = (_text(fmt, "Type") or "DOCUMENT").strip().upper()
        if json_type not in ("DOCUMENT", "LINES"):
            raise SelectError("InvalidJsonType")
        kwargs["json_type"] = json_type
        input_format = "JSON"
    else:
        if compression != "NONE":
            raise SelectError(
                "InvalidCompressionFormat", "Parquet objects cannot use CompressionType"
            )
        input_format = "PARQUET"

    out_formats = [child for child in out if child.tag in ("CSV", "JSON")]
    if len(out_formats) != 1:
        raise SelectError(
            "MissingRequiredParameter" if not out_formats else "ObjectSerializationConflict",
            "OutputSerialization needs exactly one of CSV or JSON",
        )
    out_fmt = out_formats[0]
    if out_fmt.tag == "CSV":
        kwargs["csv_output"] = _csv_output(out_fmt)
        output_format = "CSV"
    else:
        kwargs["json_record_delimiter"] = _delimiter(out_fmt, "RecordDelimiter", "\n", 2)
        output_format = "JSON"

    progress = root.find("RequestProgress")
    request_progress = False
    if progress is not None:
        request_progress = _bool(_text(progress, "Enabled") or "FALSE", "RequestProgress")

    scan_start = scan_end = None
    scan = root.find("ScanRange")
    if scan is not None:
        scan_start = _int(_text(scan, "Start"))
        scan_end = _int(_text(scan, "End"))
        if scan_start is not None and scan_end is not None and scan_start > scan_end:
            raise SelectError("InvalidScanRange", "ScanRange Start is after End")
        if scan_start is not None or scan_end is not None:
            if input_format == "PARQUET":
                raise SelectError("UnsupportedScanRangeInput", "ScanRange is not for Parquet")
            if input_format == "JSON" and kwargs["json_type"] != "LINES":
                raise SelectError("UnsupportedScanRangeInput", "ScanRange needs JSON LINES")
            if compression != "NONE":
                raise SelectError("UnsupportedScanRangeInput", "ScanRange needs uncompressed data")
            if input_format == "CSV" and kwargs["csv_input"].allow_quoted_record_delimiter:  # type: ignore[attr-defined]
                raise SelectError(
                    "UnsupportedScanRangeInput", "ScanRange cannot be used with quoted delimiters"
                )

    query = parse(expression)
    return SelectRequest(
        expression=expression,
        query=query,
        input_format=input_format,
        compression=compression,
        output_format=output_format,
        request_progress=request_progress,
        scan_start=scan_start,
        scan_end=scan_end,
        **kwargs,  # type: ignore[arg-type]
    )


def _protect_carriage_returns(body: bytes) -> bytes:
    """Keep CRs in text: XML parsers turn CR LF into LF, but SDKs send a ``\r\n`` delimiter raw.

    Splitting on ``>`` makes every piece start with text (up to the next ``<``), so only text is
    rewritten, never markup.
    """
    if b"\r" not in body:
        return body
    pieces = body.split(b">")
    out = [pieces[0]]
    for piece in pieces[1:]:
        text, lt, rest = piece.partition(b"<")
        out.append(text.replace(b"\r", b"&#13;") + lt + rest)
    return b">".join(out)


def _csv_input(el: ET.Element) -> CsvInput:
    header = (_text(el, "FileHeaderInfo") or "NONE").strip().upper()
    if header not in ("USE", "IGNORE", "NONE"):
        raise SelectError("InvalidFileHeaderInfo")
    comments = _text(el, "Comments")
    if comments is not None and len(comments) > 1:
        raise SelectError("InvalidRequestParameter", "Comments must be a single character")
    allow = _bool(_text(el, "AllowQuotedRecordDelimiter") or "FALSE", "AllowQuotedRecordDelimiter")
    return CsvInput(
        file_header_info=header,
        field_delimiter=_delimiter(el, "FieldDelimiter", ",", 1),
        record_delimiter=_delimiter(el, "RecordDelimiter", "\n", 2),
        quote_character=_delimiter(el, "QuoteCharacter", '"', 1),
        quote_escape_character=_delimiter(el, "QuoteEscapeCharacter", '"', 1),
        comments=comments or None,
        allow_quoted_record_delimiter=allow,
    )


def _csv_output(el: ET.Element) -> CsvOutput:
    quote_fields = (_text(el, "QuoteFields") or "ASNEEDED").strip().upper()
    if quote_fields not in ("ALWAYS", "ASNEEDED"):
        raise SelectError("InvalidQuoteFields")
    return CsvOutput(
        field_delimiter=_delimiter(el, "FieldDelimiter", ",", 1),
        record_delimiter=_delimiter(el, "RecordDelimiter", "\n", 2),
        quote_character=_delimiter(el, "QuoteCharacter", '"', 1),
        quote_escape_character=_delimiter(el, "QuoteEscapeCharacter", '"', 1),
        quote_fields=quote_fields,
    )


def _delimiter(el: ET.Element, tag: str, default: str, max_len: int) -> str:
    child = el.find(tag)
    if child is None:
        return default
    value = child.text or ""  # whitespace is significant here (e.g. a tab or a space)
    if not value or len(value) > max_len:
        raise SelectError("InvalidRequestParameter", f"{tag} must be 1..{max_len} characters")
    return value


def _strip_namespaces(root: ET.Element) -> None:
    for el in root.iter():
        if isinstance(el.tag, str) and "}" in el.tag:
            el.tag = el.tag.split("}", 1)[1]


def _text(el: ET.Element, tag: str) -> str | None:
    child = el.find(tag)
    return None if child is None else (child.text or "")


def _bool(value: str, what: str) -> bool:
    low = value.strip().lower()
    if low not in ("true", "false"):
        raise SelectError("InvalidRequestParameter", f"{what} must be TRUE or FALSE")
    return low == "true"


def _int(value: str | None) -> int | None:
    if value is None or not value.strip():
        return None
    try:
        result = int(value.strip())
    except ValueError as exc:
        raise SelectError("InvalidScanRange", f"invalid scan range value {value!r}") from exc
    if result < 0:
        raise SelectError("InvalidScanRange", "scan range values must be non-negative")
    return result
