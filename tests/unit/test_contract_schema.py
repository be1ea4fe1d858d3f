"""The published contract (schemas/v1) and the service agree: the decoder, the schema and the key vectors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from pipeline.ingest.decode import decode_event
from pipeline.records import Event, InvalidEvent, RawMessage, Source

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "v1"
EVENT_SCHEMA = json.loads((SCHEMAS / "lead-event.schema.json").read_text())
VALIDATOR = Draft202012Validator(EVENT_SCHEMA)


def _decoded(body: object) -> Event | InvalidEvent:
    return decode_event(RawMessage(Source("leads.changes", 0, 0), None, orjson.dumps(body), (), 0))


def test_the_schemas_are_valid_json_schemas() -> None:
    for path in SCHEMAS.glob("*.schema.json"):
        Draft202012Validator.check_schema(json.loads(path.read_text()))


# Any character JSON carries as text (a lone surrogate is not JSON: orjson refuses it, the decoder says invalid_json),
# control characters and U+FFFE/U+FFFF, which XML cannot carry, among them.
TEXT = st.text(st.characters(max_codepoint=0xFFFF).filter(lambda c: not 0xD800 <= ord(c) <= 0xDFFF), max_size=6)
NAME = st.one_of(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=4), TEXT)
SCALAR = st.one_of(
    st.none(), st.just(""), TEXT, st.booleans(), st.integers(-3, 2**31 + 3), st.sampled_from([2**31 - 1, 2**31]),
    st.floats(allow_nan=False, allow_infinity=False, width=32), st.sampled_from([1.0, 7.0, 2.5]),
)  # fmt: skip
SMALL = st.integers(-(2**40), 2**40)
ANY = st.one_of(SCALAR, st.lists(SMALL, max_size=2), st.dictionaries(NAME, SMALL, max_size=2))


def _optional(required: dict[str, Any] | None = None, **fields: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries(required or {}, optional=fields)


# Events near the contract's edges: well-formed ones with every optional part, which mutations then break.
ID = st.one_of(st.integers(1, 2**31 - 1), st.sampled_from([1.0, 42.0, 2**31 - 1]), st.none())
OPTIONAL_TEXT = st.one_of(TEXT, st.none())
FST = st.one_of(st.sampled_from(["SFDC", "CUSTOM", "NETSUITE"]), st.just(""), st.none())
VALUES = st.dictionaries(
    NAME, st.one_of(TEXT, st.none(), st.booleans(), st.integers(-9, 9), st.floats(-1, 1)), max_size=3
)
LEAD = _optional(
    Id=ID, id=ID, Email=OPTIONAL_TEXT, email=OPTIONAL_TEXT, ForeignSysPersonId=OPTIONAL_TEXT,
    foreignSysPersonId=OPTIONAL_TEXT, ForeignSysType=FST, foreignSysType=FST, MarketoCookie=OPTIONAL_TEXT,
    marketoCookie=OPTIONAL_TEXT, attributes=st.one_of(VALUES, st.none()), Other=ANY,
)  # fmt: skip
EXTERNAL_KEY = st.one_of(_optional({"name": TEXT}, value=st.one_of(TEXT, SMALL, st.none())), st.none())
TYPE_ATTRIB = st.one_of(
    st.fixed_dictionaries({"attrType": st.just("Cost"), "attribs": _optional({"Month": TEXT, "Amount": SMALL})}),
    st.fixed_dictionaries({"attrType": st.just("Tag"), "attribs": _optional({"Type": TEXT, "Value": TEXT})}),
)
ASSOCIATION = _optional(
    {"mObjType": st.sampled_from(["Company", "Lead", "Opportunity"])}, id=ID, externalKey=EXTERNAL_KEY
)
MOBJECT = _optional(
    {"type": st.sampled_from(["Program", "Opportunity", "OpportunityPersonRole"])},
    id=ID, externalKey=EXTERNAL_KEY, attribs=st.one_of(VALUES, st.none()),
    typeAttribs=st.one_of(st.lists(TYPE_ATTRIB, max_size=2), st.none()),
    associations=st.one_of(st.lists(ASSOCIATION, max_size=2), st.none()),
)  # fmt: skip
EVENT = st.one_of(
    _optional(
        {"event_id": st.text("ab", min_size=1, max_size=128), "lead": LEAD},
        kind=st.sampled_from(["lead", None]), schema_version=st.sampled_from([1, 1.0, None]),
        workspace=OPTIONAL_TEXT, return_lead=st.sampled_from([True, False, None]), operation=ANY,
    ),
    _optional(
        {"event_id": st.text("ab", min_size=1, max_size=128), "kind": st.just("mobject"), "mobject": MOBJECT},
        operation=st.sampled_from(["INSERT", "UPDATE", "UPSERT", None]), schema_version=st.sampled_from([1, None]),
        lead=ANY,
    ),
)  # fmt: skip
# What a mutation puts in place of a part, beside removing it.
WRONG = st.one_of(
    ANY, st.sampled_from(["", "other", "mobject", "lead", "Program", "Cost", "Tag", "sfdc", 0, -1, 2**31, 1.5, True]),
    st.text("ab", min_size=129, max_size=130),
)  # fmt: skip


def _paths(value: object, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path] if path else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*path, index))
    return found


def _mutated(body: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    """`body` with one part replaced by a wrong value or removed, or a new field of the contract added."""
    body = orjson.loads(orjson.dumps(body))
    paths = _paths(body) + [(name,) for name in ("kind", "schema_version", "workspace", "return_lead", "operation")]
    path = data.draw(st.sampled_from(paths))
    parent: Any = body
    for step in path[:-1]:
        parent = parent[step]
    if isinstance(parent, dict) and path[-1] in parent and data.draw(st.booleans()):
        del parent[path[-1]]
    elif isinstance(parent, dict | list):
        parent[path[-1]] = data.draw(WRONG)
    return body


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(EVENT, st.integers(0, 3), st.data())
def test_the_schema_and_the_decoder_agree_on_random_events(
    body: dict[str, Any], mutations: int, data: st.DataObject
) -> None:
    for _ in range(mutations):
        body = _mutated(body, data)
    parsed = orjson.loads(orjson.dumps(body))  # what a consumer of the topic sees
    decoded = _decoded(body)
    said = "rejects" if isinstance(decoded, InvalidEvent) else "accepts"
    errors = [e.message for e in VALIDATOR.iter_errors(parsed)]
    assert (not errors) == (said == "accepts"), (
        f"the decoder {said} {parsed!r} ({getattr(decoded, 'error', '')}); the schema says {errors[:2]}"
    )


@pytest.mark.parametrize(
    "body",
    [
        {"event_id": "evt-000123", "kind": "lead",
         "lead": {"Id": None, "Email": "ada@example.com", "ForeignSysPersonId": "SF-42", "ForeignSysType": "SFDC",
                  "MarketoCookie": None, "attributes": {"FirstName": "Ada", "Company": "Analytical Engines"}},
         "workspace": None, "return_lead": False},
        {"event_id": "evt-000124", "kind": "mobject", "operation": "UPSERT",
         "mobject": {"type": "Opportunity", "id": None, "externalKey": {"name": "ExtId", "value": "OPP-9"},
                     "attribs": {"Name": "Q1 renewal", "Amount": "2000"}, "typeAttribs": [],
                     "associations": [{"mObjType": "Company", "id": None, "externalKey": {"name": "ExtCo", "value": "C-1"}}]}},
        {"event_id": "evt-1", "schema_version": 1, "lead": {"Email": "v@example.com"}},
    ],
)  # fmt: skip
def test_the_documented_events_are_valid_for_both(body: dict[str, Any]) -> None:
    VALIDATOR.validate(body)
    assert not isinstance(_decoded(body), InvalidEvent)


def test_an_unknown_schema_version_is_a_dead_letter_that_says_so() -> None:
    decoded = _decoded({"event_id": "e", "schema_version": 2, "lead": {"Email": "v@example.com"}})
    assert isinstance(decoded, InvalidEvent)
    assert "schema_version must be 1" in decoded.error


VECTORS = json.loads((SCHEMAS / "precedence-keys.json").read_text())["vectors"]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["description"] for v in VECTORS])
def test_the_precedence_key_vectors_hold(vector: dict[str, Any]) -> None:
    VALIDATOR.validate(vector["event"])
    decoded = _decoded(vector["event"])
    assert not isinstance(decoded, InvalidEvent)
    assert decoded.key == vector["key"]
