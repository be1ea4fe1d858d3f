from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.ingest import decode
from pipeline.ingest.decode import _plain_lead_event, decode_event
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

    def explode(*_: object, **__: object) -> None:
        raise KeyError("boom")

    monkeypatch.setattr(decode, "lead_names", explode)  # on the plain path and in full
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


# --- the plain lead path reads exactly as the full decoder ---------------------------------------------------------

_LEAD_FIELDS = ["Id", "id", "Email", "email", "ForeignSysPersonId", "foreignSysPersonId", "ForeignSysType"]
_LEAD_FIELDS += ["foreignSysType", "MarketoCookie", "marketoCookie"]
_FIELD_VALUES = (
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.sampled_from([2**31 - 1, 2**31, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 10**30])
    | st.sampled_from([42.0, 1.5, -0.0, 1e300])
    | st.sampled_from(["", " ", "SFDC", "CUSTOM", "sfdc", "NETSUITE", "Ada@Example.com ", "id:1&token:x", "東京"])
    | st.text(max_size=4)
    | st.lists(st.integers(-5, 5), max_size=1)
    | st.dictionaries(st.text(max_size=2), st.integers(-5, 5), max_size=1)
)


@st.composite
def _lead_events(draw: st.DrawFn) -> bytes:
    lead: dict[str, Any] = draw(st.dictionaries(st.sampled_from(_LEAD_FIELDS), _FIELD_VALUES, max_size=5))
    if draw(st.booleans()):
        lead["attributes"] = draw(
            st.dictionaries(st.sampled_from(["", "Email", "FirstName", "Score", "x" * 3]), _FIELD_VALUES, max_size=4)
            | _FIELD_VALUES
        )
    body: dict[str, Any] = {"event_id": draw(st.sampled_from(["e-1", "", "x" * 128, "x" * 129]) | _FIELD_VALUES)}
    body["lead"] = lead if draw(st.integers(0, 9)) else draw(_FIELD_VALUES)
    for name, values in (
        ("kind", st.sampled_from(["lead", "mobject", "Lead"]) | _FIELD_VALUES),
        ("schema_version", st.sampled_from([1, 2, 1.0, True]) | _FIELD_VALUES),
        ("workspace", _FIELD_VALUES),
        ("return_lead", _FIELD_VALUES),
        ("Unexpected", _FIELD_VALUES),
    ):
        if draw(st.booleans()):
            body[name] = draw(values)
    return json.dumps(body, ensure_ascii=False).encode()  # integers past 64 bits too, spaced as people write


_TEXTS = st.sampled_from([None, "", " ", "a@x.com", " Ada@Example.com ", "東京", "SF-1", "id:1&token:x"])
_VALID_PARTS: dict[str, st.SearchStrategy[Any]] = {
    "Id": st.sampled_from([None, 1, 5, 2**31 - 1]),
    "id": st.sampled_from([None, 1, 6]),
    "ForeignSysType": st.sampled_from([None, "", "SFDC", "CUSTOM", "NETSUITE", "sfdc"]),
    "foreignSysType": st.sampled_from([None, "", "SFDC", "CUSTOM"]),
    **dict.fromkeys(("Email", "email", "ForeignSysPersonId", "foreignSysPersonId"), _TEXTS),
    **dict.fromkeys(("MarketoCookie", "marketoCookie"), _TEXTS),
}


@st.composite
def _valid_lead_events(draw: st.DrawFn) -> bytes:
    """Lead events most of which the plain path takes: every part of a type the contract allows, or null/empty."""
    lead = {name: draw(values) for name, values in _VALID_PARTS.items() if draw(st.booleans())}
    if draw(st.booleans()):
        lead["attributes"] = draw(
            st.none()
            | st.dictionaries(
                st.sampled_from(["Email", "FirstName", "Score"]),
                st.sampled_from([None, True, False, 0, 7, -3, "", "x", "ä", " B@x.com"])
                | st.sampled_from([2**63 - 1, 2**63, 2**64, -(2**63), -(2**63) - 1, 10**30]),
                max_size=3,
            )
        )
    body: dict[str, Any] = {"event_id": draw(st.sampled_from(["e-1", "x" * 128])), "lead": lead}
    for name, values in (
        ("kind", st.sampled_from([None, "lead"])),
        ("schema_version", st.sampled_from([None, 1])),
        ("workspace", st.sampled_from([None, "", "EMEA"])),
        ("return_lead", st.sampled_from([None, True, False])),
    ):
        if draw(st.booleans()):
            body[name] = draw(values)
    return json.dumps(body, ensure_ascii=False).encode()  # integers past 64 bits too, spaced as people write


@settings(max_examples=400)
@given(_valid_lead_events())
def test_a_valid_lead_event_reads_the_same_on_the_plain_path_as_in_full(raw: bytes) -> None:
    _read_alike(raw)


def _read_alike(raw: bytes) -> object:
    given = message(None, raw=raw)
    plain, full = decode_event(given), decode_event(given, plain_path=False)
    assert plain == full
    return plain


@given(_lead_events())
def test_a_lead_event_reads_the_same_on_the_plain_path_as_in_full(raw: bytes) -> None:
    _read_alike(raw)


@given(st.sampled_from(POSITIONS), any_json())
def test_any_json_value_in_any_field_reads_the_same_on_the_plain_path_as_in_full(
    position: tuple[dict[str, Any], tuple[str | int, ...]], value: bytes
) -> None:
    base, path = position
    _read_alike(with_value(base, path, value))


@pytest.mark.parametrize(
    "raw",
    [
        b'{"event_id":"e","lead":{"Email":"a@x.com"},"x":"\xff\xfe"}',  # bad UTF-8 in a field nobody reads
        b'{"event_id":"e","lead":{"Email":"a@x.com"},"x":1e400}',  # a number no double holds
        b'{"event_id":"e","lead":{"Email":"a@x.com"},"x":' + b"[" * 2000 + b"]" * 2000 + b"}",
        b'{"event_id":"e","lead":{"Email":"a@x.com","Email":"b@x.com","attributes":{"A":"1","B":2,"A":3}}}',
        b'{"event_id":"e","lead":{"Email":"","email":"b@x.com"}}',  # an empty WSDL name hides its spelling
        b'{"event_id":"e","lead":{"Id":5,"id":"x"}}',  # the spelling a WSDL name hides may hold anything
        b'{"event_id":"e","lead":{"Id":42.0}}',
        b'{"event_id":"e","lead":{"Email":"a@x.com","attributes":{"Score":2.5,"Big":123456789012345678901234567890}}}',
        b'{"event_id":"e","lead":{"Email":"a@x.com","attributes":{"Flag":true,"Gone":null}}}',
        # orjson reads an integer past 64 bits as a float, and one past a double as an error
        b'{"event_id":"e","lead":{"Email":"a@x.com","attributes":{"Big":123456789012345678901234567890}}}',
        b'{"event_id":"e","lead":{"Email":"a@x.com","attributes":{"Big":18446744073709551615}}}',
        b'{"event_id":"e","lead":{"Email":"a@x.com","attributes":{"Big":18446744073709551616}}}',
        b'{"event_id":"e","lead":{"Email":"a@x.com","attributes":{"Big":-9223372036854775808}}}',
        b'{"event_id":"e","lead":{"Email":"a@x.com","attributes":{"Big":-9223372036854775809}}}',
        b'{"event_id":"e","lead":{"Email":"a@x.com","attributes":{"Big":' + b"9" * 400 + b"}}}",
        b'{"event_id":"e","lead":{"Email":"a@x.com","attributes":{"Big":' + b"9" * 5000 + b"}}}",
        b'{"event_id":"e","lead":{"Id":' + b"9" * 40 + b',"Email":"a@x.com"}}',
        b'{"event_id":"e","lead":{"Email":"a@x.com"}} x',
        b"\x00\x00\x00\x00\x07" + b'{"event_id":"e","lead":{"Email":"a@x.com"}}',
        b'{"event_id":"' + b"e" * 129 + b'","lead":{"Email":"a@x.com"}}',
        b'{"event_id":"e","lead":{"Email":"' + "é".encode() * 65_536 + b'"}}',
        b'{"event_id":"e","lead":{"Email":"' + "é".encode() * 65_537 + b'"}}',
        b'{"event_id":"e","lead":{"Email":"a@x.com","attributes":{'
        + b",".join(b'"a%d":"v"' % i for i in range(1001))
        + b"}}}",
        b'{"event_id":"e","lead":{"Email":"a@x.com","attributes":{'
        + b",".join(b'"a%d":"v"' % i for i in range(1000))
        + b"}}}",
    ],
)
def test_edges_read_the_same_on_the_plain_path_as_in_full(raw: bytes) -> None:
    _read_alike(raw)


def test_a_plain_lead_event_takes_the_plain_path() -> None:
    raw = orjson.dumps(
        {"event_id": "e", "kind": "lead", "schema_version": 1, "lead": {"Email": "A@x.com", "attributes": {"N": 5}}}
    )
    given = message(None, raw=raw)
    taken = _plain_lead_event(raw, given)
    assert isinstance(taken, LeadChange)
    assert taken == decode_event(given, plain_path=False)
    assert taken.lead.attributes == (("N", "5"),)
    assert _plain_lead_event(raw.replace(b'"N":5', b'"N":5.5'), message(None, raw=raw)) is None


def test_waiting_events_share_their_attribute_names_on_either_path() -> None:
    raw = b'{"event_id":"e","lead":{"Email":"a@x.com","attributes":{"FirstName":"Ada","City":"Paris"}}}'
    for plain_path in (True, False):
        first, second = (decode_event(message(None, raw=raw), plain_path=plain_path) for _ in range(2))
        assert isinstance(first, LeadChange)
        assert isinstance(second, LeadChange)
        assert all(a[0] is b[0] for a, b in zip(first.lead.attributes, second.lead.attributes, strict=True))


def test_the_shared_attribute_names_are_bounded_in_number_and_length() -> None:
    many = ",".join(f'"n{i}":"v"' for i in range(1000)).encode()
    for start in range(6):
        raw = (
            b'{"event_id":"e","lead":{"Email":"a@x.com","attributes":{' + many.replace(b'"n', b'"%d-n' % start) + b"}}}"
        )
        assert isinstance(decode_event(message(None, raw=raw)), LeadChange)
    long_name = "L" * (decode.MAX_SHARED_NAME_CHARS + 1)
    decode_event(message({"event_id": "e", "lead": {"Email": "a@x.com", "attributes": {long_name: "v"}}}))
    assert len(decode._SHARED_NAMES) <= decode.MAX_SHARED_NAMES
    assert long_name not in decode._SHARED_NAMES
