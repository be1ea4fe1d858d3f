from __future__ import annotations

import pickle

import pytest
from msgspec.structs import replace

from pipeline.records import EventKind, Lead, RawMessage, Record, RecordResult, RecordStatus, Source


def test_the_records_built_for_every_event_keep_their_defaults_and_freezing() -> None:
    lead = Lead(email="a@x.com")
    record = Record("email:a@x.com", EventKind.LEAD, (), frozenset({"email:a@x.com"}), lead)
    result = RecordResult(record, RecordStatus.CREATED, 1)
    assert (record.references, record.workspace, result.abandoned, result.error) == (frozenset(), None, False, None)
    assert replace(result, attempts=2).attempts == 2
    assert result.attempts == 1
    with pytest.raises(AttributeError):
        record.key = "x"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        lead.extra = 1  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        Record()  # type: ignore[call-arg]


def test_records_compare_and_hash_by_their_fields_alone() -> None:
    first = RawMessage(Source("in", 1, 7), b"k", b"{}", (("h", b"v"),), 5)
    same = RawMessage(
        source=Source(topic="in", partition=1, offset=7), key=b"k", value=b"{}", headers=(("h", b"v"),), timestamp_ms=5
    )
    assert first == same
    assert hash(first) == hash(same)
    assert first != replace(first, timestamp_ms=6)
    assert {first: 1}[same] == 1
    assert repr(Source("in", 1, 7)) == "Source(topic='in', partition=1, offset=7)"
    assert pickle.loads(pickle.dumps(first)) == first  # noqa: S301 - our own bytes


def test_a_record_derives_its_call_from_its_fields() -> None:
    lead = Lead(email="a@x.com")
    bulk = Record("email:a@x.com", EventKind.LEAD, (), frozenset(), lead)
    assert bulk.operation == "syncMultipleLeads"
    assert replace(bulk, workspace="EMEA").operation == "syncLead"
    assert replace(bulk, lead=Lead(cookie="id:1")).operation == "syncLead"
    assert replace(bulk, kind=EventKind.MOBJECT).operation == "syncMObjects"
