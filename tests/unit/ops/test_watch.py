from __future__ import annotations

import orjson

from pipeline.contract import DlqHeader
from pipeline.ops.watch import Tally
from pipeline.records import RawMessage, Source


def _result(offset: int, *event_ids: str, status: str = "CREATED") -> RawMessage:
    value = {
        "key": "email:a@x.com",
        "kind": "lead",
        "operation": "syncMultipleLeads",
        "status": status,
        "lead_id": 1,
        "mobject_id": None,
        "error": None,
        "attempts": 1,
        "lead": None,
        "event_ids": list(event_ids),
        "sources": [{"topic": "in", "partition": 0, "offset": offset + n} for n in range(len(event_ids))],
        "completed_at": "2026-12-01T00:00:00.000Z",
    }
    return RawMessage(Source("results", 0, offset), b"k", orjson.dumps(value))


def _letter(offset: int, reason: bytes) -> RawMessage:
    headers = (
        (DlqHeader.REASON, reason),
        (DlqHeader.SOURCE_TOPIC, b"in"),
        (DlqHeader.SOURCE_PARTITION, b"0"),
        (DlqHeader.SOURCE_OFFSET, str(offset).encode()),
    )
    return RawMessage(Source("dlq", 0, offset), b"k", b"\xff not json", headers)


def test_every_input_position_is_counted_once_whatever_answered_it() -> None:
    tally = Tally("results")
    tally.add(_result(0, "e0", "e1"))  # two events merged into one record
    tally.add(_result(2, "e2", status="FAILED"))
    tally.add(_letter(2, b"marketo_rejected"))  # the FAILED record's event: a result and a dead letter
    tally.add(_letter(3, b"invalid_json"))
    tally.add(_letter(4, b"internal_error"))  # an event the service could not handle: no result
    tally.add(_result(0, "e0", "e1"))  # read again after a crash: at least once
    assert tally.events == 5
    assert tally.duplicated == 2
    assert tally.invalid == 1
    assert tally.dead_letters == {"marketo_rejected": 1, "invalid_json": 1, "internal_error": 1}
    assert tally.statuses == {"CREATED": 2, "FAILED": 1}
