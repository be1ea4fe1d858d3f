from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from pipeline.contract import DlqHeader
from pipeline.dedupe.window import DedupeWindow
from pipeline.ingest.decode import decode_event
from pipeline.metrics import Metrics
from pipeline.offsets import OffsetBook
from pipeline.outcome.publisher import OutcomePublisher
from pipeline.records import (
    DeadLetterReason,
    InvalidEvent,
    RawMessage,
    Record,
    RecordError,
    RecordResult,
    RecordStatus,
    Source,
)


class RecordingSink:
    """Records what is sent, after passing it through the Kafka client's own record builder, which is strict
    about types (a header name must be a `str` exactly), as the real producer is."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None, dict[str, bytes]]] = []
        self._builder = DefaultRecordBatchBuilder(
            magic=2,
            compression_type=0,
            is_transactional=0,
            producer_id=-1,
            producer_epoch=-1,
            base_sequence=-1,
            batch_size=1 << 24,
        )

    async def send_many(
        self,
        topic: str,
        messages: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]] | None]],
        *,
        read_from: list[tuple[str, int] | None] | None = None,
    ) -> list[asyncio.Future[Any]]:
        del read_from
        futures = []
        for key, value, headers in messages:
            self._builder.append(len(self.sent), timestamp=None, key=key, value=value, headers=headers or [])
            self.sent.append((topic, key, value, dict(headers or [])))
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            future.set_result(None)
            futures.append(future)
        return futures


def _record(*offsets: int) -> tuple[Record, OffsetBook]:
    book = OffsetBook()
    window = DedupeWindow(1.0)
    for offset in offsets:
        value = orjson.dumps(
            {"event_id": f"evt-{offset}", "lead": {"Email": "ada@example.com", "attributes": {"N": offset}}}
        )
        message = RawMessage(
            Source("in", 2, offset),
            b"email:ada@example.com",
            value,
            ((DlqHeader.REPLAYS, b"1"), ("trace", b"t")),
            1_000,
        )
        book.consumed(message.source)
        event = decode_event(message)
        assert not isinstance(event, InvalidEvent)
        window.add(event, now=0)
    [record] = window.drain()
    return record, book


async def test_a_result_has_the_contract_shape_and_answers_every_event() -> None:
    record, book = _record(41, 57)
    sink = RecordingSink()
    publisher = OutcomePublisher(sink, book, Metrics(), results_topic="results", dlq_topic="dlq")
    await publisher.publish_results([RecordResult(record, RecordStatus.CREATED, attempts=1, lead_id=1090240)])
    [(topic, key, value, _headers)] = sink.sent
    assert (topic, key) == ("results", b"email:ada@example.com")
    result = orjson.loads(value or b"")
    assert set(result) == {
        "key",
        "kind",
        "operation",
        "status",
        "lead_id",
        "mobject_id",
        "error",
        "attempts",
        "lead",
        "event_ids",
        "sources",
        "completed_at",
    }
    assert result["event_ids"] == ["evt-41", "evt-57"]
    assert result["sources"] == [
        {"topic": "in", "partition": 2, "offset": 41},
        {"topic": "in", "partition": 2, "offset": 57},
    ]
    assert (result["status"], result["lead_id"], result["operation"], result["error"]) == (
        "CREATED",
        1090240,
        "syncMultipleLeads",
        None,
    )
    assert result["completed_at"].endswith("Z")
    assert book.pending == 0


async def test_a_failed_record_dead_letters_each_event_with_its_context() -> None:
    record, book = _record(5, 6)
    sink = RecordingSink()
    publisher = OutcomePublisher(sink, book, Metrics(), results_topic="results", dlq_topic="dlq")
    failed = RecordResult(
        record,
        RecordStatus.FAILED,
        attempts=3,
        error=RecordError("20105", "unknown field"),
        dead_letter=DeadLetterReason.MARKETO_REJECTED,
    )
    await publisher.publish_results([failed])
    result = orjson.loads(sink.sent[0][2] or b"")
    assert result["error"] == {"code": "20105", "message": "unknown field"}
    letters = [s for s in sink.sent if s[0] == "dlq"]
    assert [orjson.loads(v or b"")["event_id"] for _, _, v, _ in letters] == ["evt-5", "evt-6"]
    headers = letters[1][3]
    assert headers[DlqHeader.REASON] == b"marketo_rejected"
    assert headers[DlqHeader.ERROR] == b"unknown field"
    assert (headers[DlqHeader.SOURCE_TOPIC], headers[DlqHeader.SOURCE_PARTITION], headers[DlqHeader.SOURCE_OFFSET]) == (
        b"in",
        b"2",
        b"6",
    )
    assert headers[DlqHeader.ATTEMPTS] == b"3"
    assert headers[DlqHeader.REPLAYS] == b"1"  # carried over from a replayed event
    assert headers["trace"] == b"t"
    assert book.pending == 0


async def test_a_result_that_cannot_be_written_becomes_an_internal_error_and_the_others_go_on() -> None:
    record, book = _record(7)
    other, other_book = _record(8)
    sink = RecordingSink()
    publisher = OutcomePublisher(sink, book, Metrics(), results_topic="results", dlq_topic="dlq")
    unwritable = RecordResult(record, RecordStatus.UPDATED, attempts=1, lead_id=5, lead_data={"odd": {1, 2}})
    await publisher.publish_results([unwritable, RecordResult(other, RecordStatus.CREATED, attempts=1, lead_id=6)])
    results = [orjson.loads(v or b"") for topic, _, v, _ in sink.sent if topic == "results"]
    assert [(r["status"], r["lead"]) for r in results] == [("FAILED", None), ("CREATED", None)]
    assert results[0]["error"]["message"].startswith("TypeError")
    letters = [headers for topic, _, _, headers in sink.sent if topic == "dlq"]
    assert [h[DlqHeader.REASON] for h in letters] == [b"internal_error"]
    assert book.pending == 0
    del other_book


async def test_an_id_past_64_bits_from_a_reply_fails_the_record_instead_of_reaching_the_results() -> None:
    record, book = _record(10)
    sink = RecordingSink()
    publisher = OutcomePublisher(sink, book, Metrics(), results_topic="results", dlq_topic="dlq")
    await publisher.publish_results([RecordResult(record, RecordStatus.UPDATED, attempts=1, lead_id=10**20)])
    (result,) = [orjson.loads(v or b"") for topic, _, v, _ in sink.sent if topic == "results"]
    assert (result["status"], result["lead_id"]) == ("FAILED", None)
    assert result["error"]["message"].startswith("TypeError")
    assert [h[DlqHeader.REASON] for topic, _, _, h in sink.sent if topic == "dlq"] == [b"internal_error"]


async def test_an_abandoned_record_publishes_nothing_and_answers_nothing() -> None:
    record, book = _record(9)
    sink = RecordingSink()
    publisher = OutcomePublisher(sink, book, Metrics(), results_topic="results", dlq_topic="dlq")
    await publisher.publish_results([RecordResult(record, RecordStatus.FAILED, 0, abandoned=True)])
    assert sink.sent == []
    assert book.pending == 1  # its event is the next owner's to answer
