from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.ingest.decode import decode_event
from pipeline.records import DeadLetterReason, ForeignSysType, InvalidEvent, LeadChange, MObjectChange, SyncOperation
from tests.hostile import POSITIONS, any_json, with_value
from tests.unit.events import message


def test_the_design_lead_example_decodes() -> None:
    event = decode_event(
        message(
            {
                "event_id": "evt-000123",
                "kind": "lead",
                "lead": {
                    "Id": None,
                    "Email": "Ada@Example.com ",
                    "ForeignSysPersonId": "SF-42",
                    "ForeignSysType": "SFDC",
                    "MarketoCookie": None,
                    "attributes": {"FirstName": "Ada", "Company": "Analytical Engines"},
                },
                "workspace": None,
                "return_lead": False,
            }
        )
    )
    assert isinstance(event, LeadChange)
    assert event.key == "fsp:SFDC:SF-42"
    assert event.lead.foreign_sys_type is ForeignSysType.SFDC
    assert event.lead.attributes == (("FirstName", "Ada"), ("Company", "Analytical Engines"))


def test_the_design_mobject_example_decodes() -> None:
    event = decode_event(
        message(
            {
                "event_id": "evt-000124",
                "kind": "mobject",
                "operation": "UPSERT",
                "mobject": {
                    "type": "Opportunity",
                    "id": None,
                    "externalKey": {"name": "ExtId", "value": "OPP-9"},
                    "attribs": {"Name": "Q1 renewal", "Amount": "2000"},
                    "typeAttribs": [],
                    "associations": [
                        {"mObjType": "Company", "id": None, "externalKey": {"name": "ExtCo", "value": "C-1"}}
                    ],
                },
            }
        )
    )
    assert isinstance(event, MObjectChange)
    assert event.key == "mobj:Opportunity:ExtId=OPP-9"
    assert event.operation is SyncOperation.UPSERT
    assert event.mobject.associations[0].external_key is not None


@pytest.mark.parametrize(
    ("lead", "workspace", "key"),
    [
        ({"Id": 7, "Email": "a@x.com", "ForeignSysPersonId": "S", "ForeignSysType": "SFDC"}, None, "id:7"),
        ({"foreignSysPersonId": "N-1", "foreignSysType": "NETSUITE", "email": "a@x.com"}, None, "fsp:NETSUITE:N-1"),
        ({"marketoCookie": "c-1", "Email": "a@x.com"}, None, "cookie:c-1"),
        ({"email": "  Ada@Example.COM "}, None, "email:ada@example.com"),
        ({"Email": "a@x.com"}, "EMEA", "email:a@x.com|ws:EMEA"),
    ],
)
def test_precedence_key(lead: dict[str, Any], workspace: str | None, key: str) -> None:
    event = decode_event(message({"event_id": "e", "lead": lead, "workspace": workspace}))
    assert isinstance(event, LeadChange)
    assert event.key == key


def test_attribute_values_become_marketo_text() -> None:
    event = decode_event(
        message({"event_id": "e", "lead": {"Email": "a@x.com", "attributes": {"N": 3, "F": 2.5, "B": True, "Z": None}}})
    )
    assert isinstance(event, LeadChange)
    assert event.lead.attributes == (("N", "3"), ("F", "2.5"), ("B", "true"), ("Z", ""))


@pytest.mark.parametrize(
    ("raw", "reason", "text"),
    [
        (b"{not json", DeadLetterReason.INVALID_JSON, "not UTF-8 JSON"),
        (b"\xff\xfe{}", DeadLetterReason.INVALID_JSON, "not UTF-8 JSON"),
        (b"[" * 5000 + b"]" * 5000, DeadLetterReason.INVALID_JSON, "not UTF-8 JSON"),
        (b"[1, 2]", DeadLetterReason.INVALID_EVENT, "JSON object"),
        (b'{"lead": {"Email": "a@x.com"}}', DeadLetterReason.INVALID_EVENT, "event_id is required"),
        (b'{"event_id": "", "lead": {"Email": "a@x.com"}}', DeadLetterReason.INVALID_EVENT, "1 to 128"),
        (b'{"event_id": "e", "kind": "contact", "lead": {}}', DeadLetterReason.INVALID_EVENT, "kind must be"),
        (b'{"event_id": "e", "lead": {"attributes": {"A": "b"}}}', DeadLetterReason.INVALID_EVENT, "lead needs one of"),
        (b'{"event_id": "e", "lead": {"Id": "7"}}', DeadLetterReason.INVALID_EVENT, "lead.Id must be a positive"),
        (b'{"event_id": "e", "lead": {"Id": true}}', DeadLetterReason.INVALID_EVENT, "lead.Id must be a positive"),
        (b'{"event_id": "e", "lead": {"Id": 4294967296}}', DeadLetterReason.INVALID_EVENT, "32-bit"),
        (b'{"event_id": "e", "lead": {"ForeignSysPersonId": "S"}}', DeadLetterReason.INVALID_EVENT, "ForeignSysType"),
        (
            b'{"event_id": "e", "lead": {"ForeignSysPersonId": "S", "ForeignSysType": "HUBSPOT"}}',
            DeadLetterReason.INVALID_EVENT,
            "ForeignSysType",
        ),
        (b'{"event_id": "e", "lead": {"Email": 5}}', DeadLetterReason.INVALID_EVENT, "lead.Email must be a string"),
        (
            b'{"event_id": "e", "lead": {"Email": "a@x.com", "attributes": {"A": [1]}}}',
            DeadLetterReason.INVALID_EVENT,
            "lead.attributes.A",
        ),
        (
            b'{"event_id": "e", "lead": {"Email": "a@x.com", "attributes": {"A": "\\u0000"}}}',
            DeadLetterReason.INVALID_EVENT,
            "U+0000",
        ),
        (
            b'{"event_id": "e", "lead": {"Email": "a@x.com"}, "return_lead": "yes"}',
            DeadLetterReason.INVALID_EVENT,
            "return_lead",
        ),
        (
            b'{"event_id": "e", "kind": "mobject", "mobject": {"type": "Program", "id": 1}}',
            DeadLetterReason.INVALID_EVENT,
            "only be updated",
        ),
        (
            b'{"event_id": "e", "kind": "mobject", "operation": "UPDATE", "mobject": {"type": "Program"}}',
            DeadLetterReason.INVALID_EVENT,
            "mobject.id is required",
        ),
        (
            b'{"event_id": "e", "kind": "mobject", "mobject": {"type": "Company"}}',
            DeadLetterReason.INVALID_EVENT,
            "mobject.type",
        ),
        (
            b'{"event_id": "e", "kind": "mobject", "operation": "MERGE", "mobject": {"type": "Opportunity"}}',
            DeadLetterReason.INVALID_EVENT,
            "operation",
        ),
        (
            b'{"event_id": "e", "kind": "mobject", "operation": "UPDATE", "mobject": {"type": "Program", "id": 1, "typeAttribs": [{"attrType": "Cost", "attribs": {"Month": "2026-01"}}]}}',
            DeadLetterReason.INVALID_EVENT,
            "needs Amount",
        ),
    ],
)
def test_bad_events_get_a_reason_and_a_clear_error(raw: bytes, reason: DeadLetterReason, text: str) -> None:
    result = decode_event(message(None, raw=raw))
    assert isinstance(result, InvalidEvent)
    assert result.reason is reason
    assert text in result.error


@pytest.mark.parametrize(
    "raw",
    [
        '{"event_id": "e", "lead": {"Email": "a@x.com", "attributes": {"Notes": "\uffff"}}}'.encode(),
        b'{"event_id": "e", "lead": {"Email": "a@x.com", "attributes": {"N\\u0001": "name with a control"}}}',
        b'{"event_id": "e\\u001b", "lead": {"Email": "a@x.com"}}',
        b'{"event_id": "e", "kind": "mobject", "mobject": {"type": "Opportunity", "attribs": {"Name": "\\u0000"}}}',
    ],
)
def test_characters_xml_cannot_carry_are_found_in_every_field_used(raw: bytes) -> None:
    result = decode_event(message(None, raw=raw))
    assert isinstance(result, InvalidEvent)
    assert "cannot be carried by XML" in result.error


def test_a_lone_surrogate_is_not_json() -> None:
    result = decode_event(message(None, raw=b'{"event_id": "e", "lead": {"Email": "a\\ud800@x.com"}}'))
    assert isinstance(result, InvalidEvent)
    assert result.reason is DeadLetterReason.INVALID_JSON


def test_escaped_characters_xml_can_carry_are_fine() -> None:
    event = decode_event(
        message(None, raw=b'{"event_id": "e", "lead": {"Email": "a@x.com", "attributes": {"City": "K\\u00f6ln"}}}')
    )
    assert isinstance(event, LeadChange)
    assert event.lead.attributes == (("City", "K\u00f6ln"),)


def test_a_huge_value_is_refused_without_decoding() -> None:
    result = decode_event(message(None, raw=b'{"event_id": "e", "x": "' + b"a" * (2 * 1024 * 1024) + b'"}'))
    assert isinstance(result, InvalidEvent)
    assert "exceeds" in result.error


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    result = decode_event(message(None, raw=raw))
    assert isinstance(result, InvalidEvent | LeadChange | MObjectChange)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False) | st.text(max_size=5),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(
                st.sampled_from(
                    ["event_id", "kind", "lead", "mobject", "Email", "Id", "attributes", "type", "operation"]
                ),
                inner,
                max_size=4,
            )
        ),
        max_leaves=20,
    )
)
def test_arbitrary_json_never_raises(body: object) -> None:

    result = decode_event(message(None, raw=orjson.dumps(body)))
    assert isinstance(result, InvalidEvent | LeadChange | MObjectChange)


# --- every field position, any JSON value ----------------------------------------------------------------


@given(st.sampled_from(POSITIONS), any_json(), st.booleans())
def test_any_json_value_in_any_field_is_an_event_or_a_clear_invalid_event(
    position: tuple[dict[str, Any], tuple[str | int, ...]],
    value: bytes,
    escaped_event_id: bool,  # noqa: FBT001 - hypothesis passes it positionally
) -> None:
    base, path = position
    raw = with_value(base, path, value)
    if escaped_event_id:  # a backslash anywhere makes every string of the event be checked for XML's characters
        raw = raw.replace(b'"event_id":"', b'"event_id":"\\u0045', 1)
    result = decode_event(message(None, raw=raw))
    if isinstance(result, InvalidEvent):
        assert result.reason in {DeadLetterReason.INVALID_JSON, DeadLetterReason.INVALID_EVENT}, result.error
        assert 0 < len(result.error) <= 1000
    else:
        assert isinstance(result, LeadChange | MObjectChange)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"event_id":"e","kind":"mobject","mobject":{"type":[]}}',
        b'{"event_id":"e","kind":"mobject","operation":["UPSERT"],"mobject":{"type":"Opportunity","id":1}}',
        (
            b'{"event_id":"e","kind":"mobject","operation":"UPDATE","mobject":{"type":"Program","id":1,'
            b'"typeAttribs":[{"attrType":{"a":1},"attribs":{}}]}}'
        ),
        b'{"event_id":"e","lead":{"Id":' + b"[" * 1000 + b"]" * 1000 + b"}}",
    ],
)
def test_shapes_that_once_crashed_the_decoder_are_invalid_events_naming_the_field(raw: bytes) -> None:
    result = decode_event(message(None, raw=raw))
    assert isinstance(result, InvalidEvent)
    assert result.reason is DeadLetterReason.INVALID_EVENT
    assert any(name in result.error for name in ("mobject.type", "operation", "attrType", "lead", "Id"))
    assert len(result.error) < 300


@pytest.mark.parametrize("inner", [b"", b'"\\u0007"'])
def test_a_deep_field_the_pipeline_does_not_use_is_ignored_whatever_it_holds(inner: bytes) -> None:
    # unknown fields are ignored (schemas/v1), even deep ones holding characters XML cannot carry
    raw = b'{"event_id":"e\\u0041","lead":{"Email":"a@x.com","x":' + b"[" * 1020 + inner + b"]" * 1020 + b"}}"
    result = decode_event(message(None, raw=raw))
    assert isinstance(result, LeadChange)
    assert result.event_id == "eA"


def test_an_unforeseen_exception_is_an_internal_error_dead_letter(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.ingest import decode  # noqa: PLC0415

    def explode(*_: object) -> None:
        raise KeyError("boom")

    monkeypatch.setattr(decode, "_lead", explode)
    result = decode_event(message({"event_id": "e", "lead": {"Email": "a@x.com"}}))
    assert isinstance(result, InvalidEvent)
    assert result.reason is DeadLetterReason.INTERNAL_ERROR
    assert result.error == "KeyError: 'boom'"


def test_an_event_written_by_a_schema_registry_serializer_is_read_as_the_same_event() -> None:
    body = {"event_id": "e-sr", "lead": {"Email": "sr@example.com", "attributes": {"FirstName": "Ada"}}}
    framed = b"\x00" + (42).to_bytes(4, "big") + orjson.dumps(body)
    plain = decode_event(message(body))
    from_registry = decode_event(message(None, raw=framed))
    assert isinstance(plain, LeadChange)
    assert isinstance(from_registry, LeadChange)
    assert (from_registry.key, from_registry.lead) == (plain.key, plain.lead)


def test_a_zero_byte_before_something_that_is_not_json_is_still_invalid_json() -> None:
    decoded = decode_event(message(None, raw=b"\x00\x00\x00\x00\x07not json"))
    assert isinstance(decoded, InvalidEvent)
    assert decoded.reason is DeadLetterReason.INVALID_JSON
