"""Request XML validation: options are read as AWS documents them, and invalid requests are
refused with the S3 Select error code before any object byte is read."""

from __future__ import annotations

import pytest
from select_helpers import request_xml

from anode.select import SelectError, parse_request


def test_defaults_and_csv_options_are_read():
    body = request_xml(
        "SELECT * FROM S3Object",
        "<CSV><FileHeaderInfo>use</FileHeaderInfo><FieldDelimiter>\t</FieldDelimiter>"
        "<RecordDelimiter>;</RecordDelimiter><QuoteCharacter>'</QuoteCharacter>"
        "<QuoteEscapeCharacter>\\</QuoteEscapeCharacter><Comments>#</Comments>"
        "<AllowQuotedRecordDelimiter>TRUE</AllowQuotedRecordDelimiter></CSV>",
        "<JSON><RecordDelimiter>,</RecordDelimiter></JSON>",
        compression="GZIP",
        extra="<RequestProgress><Enabled>true</Enabled></RequestProgress>",
    )
    req = parse_request(body)
    csv = req.csv_input
    assert (csv.file_header_info, csv.field_delimiter, csv.record_delimiter) == ("USE", "\t", ";")
    assert (csv.quote_character, csv.quote_escape_character, csv.comments) == ("'", "\\", "#")
    assert csv.allow_quoted_record_delimiter
    assert req.compression == "GZIP" and req.request_progress
    assert req.output_format == "JSON" and req.json_record_delimiter == ","


def test_csv_output_options_and_scan_range():
    req = parse_request(
        request_xml(
            "SELECT * FROM S3Object",
            output_xml="<CSV><QuoteFields>ALWAYS</QuoteFields><FieldDelimiter>|</FieldDelimiter>"
            "</CSV>",
            extra="<ScanRange><Start>10</Start><End>20</End></ScanRange>",
        )
    )
    assert req.csv_output.quote_fields == "ALWAYS" and req.csv_output.field_delimiter == "|"
    assert (req.scan_start, req.scan_end) == (10, 20)


def test_crlf_delimiters_sent_raw_by_sdks_survive_xml_parsing():
    """botocore puts a ``\r\n`` RecordDelimiter into the XML as raw bytes; XML parsers would
    normalize it to ``\n``."""
    body = request_xml(
        "SELECT * FROM S3Object",
        "<CSV><RecordDelimiter>\r\n</RecordDelimiter></CSV>",
        "<CSV><RecordDelimiter>\r\n</RecordDelimiter><FieldDelimiter>\t</FieldDelimiter></CSV>",
    )
    assert b"\r\n" in body
    req = parse_request(body)
    assert req.csv_input.record_delimiter == "\r\n"
    assert req.csv_output.record_delimiter == "\r\n" and req.csv_output.field_delimiter == "\t"


def _without(tag: str) -> bytes:
    body = request_xml("SELECT * FROM S3Object").decode()
    start, end = body.index(f"<{tag}>"), body.index(f"</{tag}>") + len(tag) + 3
    return (body[:start] + body[end:]).encode()


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"", "EmptyRequestBody"),
        (b"<SelectObjectContentRequest><Expression>", "MalformedXML"),
        (_without("Expression"), "MissingRequiredParameter"),
        (_without("InputSerialization"), "MissingRequiredParameter"),
        (_without("OutputSerialization"), "MissingRequiredParameter"),
        (
            request_xml("SELECT * FROM S3Object").replace(b">SQL<", b">XPATH<"),
            "InvalidExpressionType",
        ),
        (request_xml("SELECT * FROM S3Object", "<CSV/><JSON/>"), "ObjectSerializationConflict"),
        (request_xml("SELECT * FROM S3Object", "<ORC/>"), "MissingRequiredParameter"),
        (request_xml("SELECT * FROM S3Object", compression="ZSTD"), "InvalidCompressionFormat"),
        (
            request_xml("SELECT * FROM S3Object", "<Parquet/>", compression="GZIP"),
            "InvalidCompressionFormat",
        ),
        (
            request_xml("SELECT * FROM S3Object", "<CSV><FileHeaderInfo>X</FileHeaderInfo></CSV>"),
            "InvalidFileHeaderInfo",
        ),
        (request_xml("SELECT * FROM S3Object", "<JSON><Type>XML</Type></JSON>"), "InvalidJsonType"),
        (
            request_xml(
                "SELECT * FROM S3Object", output_xml="<CSV><QuoteFields>X</QuoteFields></CSV>"
            ),
            "InvalidQuoteFields",
        ),
        (
            request_xml(
                "SELECT * FROM S3Object",
                extra="<ScanRange><Start>9</Start><End>2</End></ScanRange>",
            ),
            "InvalidScanRange",
        ),
        (
            request_xml(
                "SELECT * FROM S3Object",
                "<Parquet/>",
                extra="<ScanRange><Start>1</Start></ScanRange>",
            ),
            "UnsupportedScanRangeInput",
        ),
        (
            request_xml(
                "SELECT * FROM S3Object",
                "<JSON><Type>DOCUMENT</Type></JSON>",
                extra="<ScanRange><End>5</End></ScanRange>",
            ),
            "UnsupportedScanRangeInput",
        ),
        (
            request_xml("SELECT * FROM S3Object", "<CSV><FieldDelimiter>ab</FieldDelimiter></CSV>"),
            "InvalidRequestParameter",
        ),
        (request_xml("SELECT * FROM S3Object WHERE"), "ParseExpectedExpression"),
    ],
)
def test_invalid_requests_are_refused_with_the_aws_code(body: bytes, code: str):
    with pytest.raises(SelectError) as info:
        parse_request(body)
    assert info.value.code == code
    assert info.value.status == 400
    assert info.value.message
