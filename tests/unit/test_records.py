from __future__ import annotations

import dataclasses

import pytest

from pipeline.records import EventKind, Lead, Record, RecordResult, RecordStatus, quick


@quick
@dataclasses.dataclass(frozen=True, slots=True)
class _Pair:
    first: int
    second: str = "b"
    third: tuple[int, ...] = ()


def test_a_quick_record_is_built_as_the_plain_frozen_dataclass_would_be() -> None:
    plain = dataclasses.make_dataclass("Plain", [("first", int), ("second", str, "b")], frozen=True, slots=True)
    assert (_Pair(1).first, _Pair(1).second, _Pair(1).third) == (1, "b", ())
    assert _Pair(1, "x") == _Pair(first=1, second="x")
    assert hash(_Pair(1, "x", (2,))) == hash(_Pair(1, "x", (2,)))
    assert repr(_Pair(1)) == "_Pair(first=1, second='b', third=())"
    assert plain(1).second == _Pair(1).second
    with pytest.raises(dataclasses.FrozenInstanceError):
        _Pair(1).first = 2  # type: ignore[misc]
    with pytest.raises(TypeError):
        _Pair()  # type: ignore[call-arg]
    assert dataclasses.replace(_Pair(1), second="c") == _Pair(1, "c")


def test_the_records_built_for_every_event_keep_their_defaults_and_freezing() -> None:
    lead = Lead(email="a@x.com")
    record = Record("email:a@x.com", EventKind.LEAD, (), frozenset({"email:a@x.com"}), lead)
    result = RecordResult(record, RecordStatus.CREATED, 1)
    assert (record.references, record.workspace, result.abandoned, result.error) == (frozenset(), None, False, None)
    assert dataclasses.replace(result, attempts=2).attempts == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.key = "x"  # type: ignore[misc]
