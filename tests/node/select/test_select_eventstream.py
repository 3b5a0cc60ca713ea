"""The event-stream encoding, decoded by botocore itself: prelude/message CRCs, headers, and each
event type a select_object_content client understands."""

from __future__ import annotations

import zlib

import pytest
from botocore.eventstream import EventStreamBuffer
from botocore.exceptions import EventStreamError
from select_helpers import botocore_events

from anode.select import eventstream


def test_records_message_round_trips_through_botocore_buffer():
    raw = eventstream.records_event(b"a,b\n1,2\n")
    buf = EventStreamBuffer()
    buf.add_data(raw)
    (message,) = list(buf)
    assert message.payload == b"a,b\n1,2\n"
    assert message.headers == {
        ":event-type": "Records",
        ":content-type": "application/octet-stream",
        ":message-type": "event",
    }
    assert message.prelude.total_length == len(raw)
    assert message.crc == zlib.crc32(raw[:-4])


def test_corrupted_message_is_rejected_by_botocore():
    raw = bytearray(eventstream.records_event(b"payload"))
    raw[-6] ^= 0xFF
    buf = EventStreamBuffer()
    buf.add_data(bytes(raw))
    with pytest.raises(Exception, match=r"[Cc]hecksum|CRC"):
        list(buf)


def test_full_response_parses_as_select_object_content_events():
    raw = (
        eventstream.records_event(b"x\n")
        + eventstream.continuation_event()
        + eventstream.progress_event(10, 20, 2)
        + eventstream.stats_event(11, 21, 3)
        + eventstream.end_event()
    )
    events = botocore_events(raw)
    assert events == [
        {"Records": {"Payload": b"x\n"}},
        {"Cont": {}},
        {"Progress": {"Details": {"BytesScanned": 10, "BytesProcessed": 20, "BytesReturned": 2}}},
        {"Stats": {"Details": {"BytesScanned": 11, "BytesProcessed": 21, "BytesReturned": 3}}},
        {"End": {}},
    ]


def test_error_message_raises_the_code_in_botocore():
    raw = eventstream.records_event(b"x\n") + eventstream.error_event("CSVParsingError", "bad row")
    with pytest.raises(EventStreamError) as info:
        botocore_events(raw)
    assert info.value.response["Error"] == {"Code": "CSVParsingError", "Message": "bad row"}
