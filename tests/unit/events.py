"""Building input messages and events for unit tests."""

from __future__ import annotations

from typing import Any

import orjson

from pipeline.ingest.decode import decode_event
from pipeline.records import Event, InvalidEvent, RawMessage, Source

_offsets: dict[int, int] = {}


def message(body: Any, *, partition: int = 0, raw: bytes | None = None) -> RawMessage:
    offset = _offsets.get(partition, 0)
    _offsets[partition] = offset + 1
    value = raw if raw is not None else orjson.dumps(body)
    return RawMessage(Source("leads.changes", partition, offset), b"k", value)


def lead_event(event_id: str = "e1", partition: int = 0, **lead: Any) -> Event:
    extra = {k: lead.pop(k) for k in ("workspace", "return_lead") if k in lead}
    decoded = decode_event(message({"event_id": event_id, "lead": lead, **extra}, partition=partition))
    assert not isinstance(decoded, InvalidEvent), decoded.error
    return decoded


def mobject_event(event_id: str = "m1", operation: str = "UPSERT", **mobject: Any) -> Event:
    decoded = decode_event(
        message({"event_id": event_id, "kind": "mobject", "operation": operation, "mobject": mobject})
    )
    assert not isinstance(decoded, InvalidEvent), decoded.error
    return decoded
