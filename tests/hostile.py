"""What upstream producers may send: any JSON value in any field of an event, and worse.

Shared by the decoder's property tests and the failure suite's hostile load.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import orjson
from hypothesis import strategies as st

LEAD_BASE: dict[str, Any] = {
    "event_id": "e-1",
    "kind": "lead",
    "lead": {
        "Id": 5,
        "Email": "ada@example.com",
        "ForeignSysPersonId": "SF-1",
        "ForeignSysType": "SFDC",
        "MarketoCookie": "id:1&token:x",
        "attributes": {"FirstName": "Ada"},
    },
    "workspace": "EMEA",
    "return_lead": False,
}
PROGRAM_BASE: dict[str, Any] = {
    "event_id": "m-1",
    "kind": "mobject",
    "operation": "UPDATE",
    "mobject": {
        "type": "Program",
        "id": 1970,
        "attribs": {"Name": "x"},
        "typeAttribs": [{"attrType": "Cost", "attribs": {"Month": "2026-01", "Amount": 5}}],
    },
}
OPPORTUNITY_BASE: dict[str, Any] = {
    "event_id": "m-2",
    "kind": "mobject",
    "operation": "UPSERT",
    "mobject": {
        "type": "OpportunityPersonRole",
        "externalKey": {"name": "ExtId", "value": "R-1"},
        "attribs": {"Role": "Buyer"},
        "associations": [{"mObjType": "Opportunity", "id": 7, "externalKey": {"name": "ExtId", "value": "O-1"}}],
    },
}
_HOLE = "\\u0000HOLE\\u0000"

Path = tuple[str | int, ...]


def _paths(value: object, prefix: Path = ()) -> list[Path]:
    """Every position in `value`, and a new key beside every object's keys."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        found.append((*prefix, "Unexpected"))
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


POSITIONS: list[tuple[dict[str, Any], Path]] = [
    (base, path) for base in (LEAD_BASE, PROGRAM_BASE, OPPORTUNITY_BASE) for path in _paths(base)
]


def with_value(base: dict[str, Any], path: Path, value: bytes, *, event_id: str | None = None) -> bytes:
    """`base` as JSON with `value` (raw JSON bytes) at `path`, and `event_id` when given."""
    body = copy.deepcopy(base)
    if event_id is not None:
        body["event_id"] = event_id
    target: Any = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = _HOLE
    return orjson.dumps(body).replace(orjson.dumps(_HOLE), value)


def any_json() -> st.SearchStrategy[bytes]:
    """Any JSON value as bytes: scalars of every kind, containers, and nesting from 900 to 1,100 levels."""
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(-(2**70), 2**70)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=12)
        | st.sampled_from(["", "lead", "mobject", "Cost", "Tag", "UPDATE", "Program", "\\u0007", "a\\\\b"])
    )
    tree = st.recursive(
        scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ).map(lambda value: json.dumps(value).encode())
    deep = st.tuples(st.integers(900, 1100), st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")])).map(
        lambda d: d[1][0] * d[0] + b'"\\u0041"' + d[1][1] * d[0]
    )
    return tree | deep


def hostile_event(event_id: str) -> st.SearchStrategy[bytes]:
    """One event as a careless or hostile producer sends it: any JSON value in any field, or not JSON at all."""
    in_a_field = st.tuples(st.sampled_from(POSITIONS), any_json()).map(
        lambda drawn: with_value(drawn[0][0], drawn[0][1], drawn[1], event_id=event_id)
    )
    bad_json = st.binary(min_size=1, max_size=60).map(lambda b: b"{" + b)
    non_utf8 = st.binary(min_size=1, max_size=40).map(lambda b: b'{"event_id": "\\xff' + b + b'\\xfe"}')
    huge = st.integers(65_537, 400_000).map(
        lambda n: b'{"event_id": "h", "lead": {"Email": "h@example.com", "attributes": {"Notes": "' + b"a" * n + b'"}}}'
    )
    return in_a_field | bad_json | non_utf8 | huge
