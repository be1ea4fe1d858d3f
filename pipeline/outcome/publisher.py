"""Results and dead letters to Kafka, acknowledged, before the offsets they answer may be committed."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
import structlog
from aiokafka.errors import KafkaError

from pipeline.contract import DLQ_PREFIX, DlqHeader, ResultMessage
from pipeline.errors import FatalError, describe_exception
from pipeline.metrics import Metrics
from pipeline.offsets import OffsetBook
from pipeline.records import (
    DeadLetterReason,
    Event,
    InvalidEvent,
    Operation,
    RawMessage,
    RecordError,
    RecordResult,
    RecordStatus,
)

log = structlog.get_logger()


def _source_log(message: RawMessage) -> Any:  # noqa: ANN401 - structlog's BoundLogger
    """A logger bound to where the message was read."""
    source = message.source
    return log.bind(topic=source.topic, partition=source.partition, offset=source.offset)


Outgoing = tuple[bytes | None, bytes | None, list[tuple[str, bytes]] | None]


class Sink(Protocol):
    """Where messages go (KafkaSink)."""

    async def send_many(
        self, topic: str, messages: list[Outgoing], *, read_from: list[tuple[str, int] | None] | None = None
    ) -> list[asyncio.Future[Any]]:
        """Queue messages; the futures resolve on acknowledgement."""
        ...


def rfc3339(moment: datetime) -> str:
    """`2026-11-23T12:00:01.234Z`."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def result_json(result: RecordResult, operation: Operation, completed_at: str) -> bytes:
    """The result message of DESIGN 2.4.

    `operation` is the record's (a property worth computing once). The enums are strings: orjson writes them as
    such, in C.
    """
    record = result.record
    events = record.events
    message: ResultMessage = {
        "key": record.key,
        "kind": record.kind,
        "operation": operation,
        "status": result.status,
        "lead_id": result.lead_id,
        "mobject_id": result.mobject_id,
        "error": None if result.error is None else {"code": result.error.code, "message": result.error.message},
        "attempts": result.attempts,
        "lead": result.lead_data,
        "event_ids": [event.event_id for event in events],
        "sources": [
            {"topic": source.topic, "partition": source.partition, "offset": source.offset}
            for source in (event.message.source for event in events)
        ],
        "completed_at": completed_at,
    }
    return orjson.dumps(message)


def dead_letter_headers(
    message: RawMessage, reason: DeadLetterReason, error: str, attempts: int, failed_at: str
) -> list[tuple[str, bytes]]:
    """The original headers (less any old dlq.*) and DESIGN 2.5's context; dlq.replays carries over."""
    replays = b"0"
    kept = []
    for name, value in message.headers:
        if name == DlqHeader.REPLAYS:
            replays = value
        elif not name.startswith(DLQ_PREFIX):
            kept.append((name, value))
    source = message.source
    return [
        *kept,
        (DlqHeader.REASON, reason.value.encode()),
        (DlqHeader.ERROR, error.encode()[:4096]),
        (DlqHeader.SOURCE_TOPIC, source.topic.encode()),
        (DlqHeader.SOURCE_PARTITION, str(source.partition).encode()),
        (DlqHeader.SOURCE_OFFSET, str(source.offset).encode()),
        (DlqHeader.ATTEMPTS, str(attempts).encode()),
        (DlqHeader.FAILED_AT, failed_at.encode()),
        (DlqHeader.REPLAYS, replays),
    ]


def _rendered(result: RecordResult, operation: Operation, completed_at: str) -> tuple[RecordResult, bytes]:
    """The result and its message; a result that cannot be written becomes an `internal_error` FAILED one."""
    try:
        return result, result_json(result, operation, completed_at)
    except Exception as exc:
        log.error("result_internal_error", key=result.record.key, exc_info=exc)  # noqa: TRY400 - exc_info given
        failed = RecordResult(
            result.record,
            RecordStatus.FAILED,
            result.attempts,
            error=RecordError(None, describe_exception(exc)),
            dead_letter=DeadLetterReason.INTERNAL_ERROR,
        )
        return failed, result_json(failed, operation, completed_at)


class OutcomePublisher:
    """Publishes, waits for the broker's acknowledgement, then marks the events answered in the offset book."""

    def __init__(self, sink: Sink, book: OffsetBook, metrics: Metrics, *, results_topic: str, dlq_topic: str) -> None:
        self._sink = sink
        self._book = book
        self._metrics = metrics
        self._results_topic = results_topic
        self._dlq_topic = dlq_topic

    async def _await_all(self, futures: list[asyncio.Future[Any]]) -> None:
        try:
            await asyncio.gather(*futures)
        except KafkaError as exc:
            raise FatalError(f"the broker did not acknowledge results or dead letters: {exc}") from exc

    async def publish_invalid(self, invalid: list[InvalidEvent]) -> None:
        """Dead-letter events that never became records."""
        failed_at = rfc3339(datetime.now(UTC))
        letters: list[Outgoing] = [
            (e.message.key, e.message.value, dead_letter_headers(e.message, e.reason, e.error, 0, failed_at))
            for e in invalid
        ]
        await self._await_all(await self._sink.send_many(self._dlq_topic, letters))
        for event in invalid:
            self._metrics.events_invalid.labels(event.reason.value).inc()
            self._metrics.dlq.labels(event.reason.value).inc()
            self._book.completed(event.message.source)
            _source_log(event.message).warning("event_dead_lettered", reason=event.reason.value, error=event.error)

    async def publish_results(self, results: list[RecordResult]) -> None:
        """One result per record; each event of a FAILED record also dead-lettered.

        An abandoned record (its partition given up before it was sent) has neither: its events are the next
        owner's to answer.
        """
        results = [result for result in results if not result.abandoned]
        if not results:
            return
        completed_at = rfc3339(datetime.now(UTC))
        messages: list[Outgoing] = []
        origins: list[tuple[str, int] | None] = []
        letters: list[Outgoing] = []
        counts: Counter[tuple[str, str]] = Counter()
        published: list[RecordResult] = []
        for given in results:
            record = given.record
            operation = record.operation
            key = record.key.encode()
            result, value = _rendered(given, operation, completed_at)
            published.append(result)
            messages.append((key, value, None))
            # Keyed by the precedence key upstream too: the result's partition is the event's, no hashing needed.
            first = record.events[0].message
            origins.append((first.source.topic, first.source.partition) if first.key == key else None)
            counts[operation, result.status] += 1
            if result.dead_letter is not None:
                error = result.error.message if result.error else result.status.value
                for event in record.events:
                    headers = dead_letter_headers(
                        event.message, result.dead_letter, error, result.attempts, completed_at
                    )
                    letters.append((event.message.key, event.message.value, headers))
        futures = await self._sink.send_many(self._results_topic, messages, read_from=origins)
        futures += await self._sink.send_many(self._dlq_topic, letters)
        del messages, letters  # copied into the producer's batches: not held while the broker acknowledges
        await self._await_all(futures)
        self._published(published, counts)

    def _published(self, results: list[RecordResult], counts: Counter[tuple[str, str]]) -> None:
        for (operation_name, status), number in counts.items():
            self._metrics.results.labels(operation_name, status).inc(number)
        self._answered([event for result in results for event in result.record.events])
        for result in results:
            if result.dead_letter is not None:
                self._dead_lettered(result, result.dead_letter.value)

    def _dead_lettered(self, result: RecordResult, reason: str) -> None:
        self._metrics.dlq.labels(reason).inc(len(result.record.events))
        for event in result.record.events:
            _source_log(event.message).warning(
                "event_dead_lettered",
                reason=reason,
                event_id=event.event_id,
                key=result.record.key,
                operation=result.record.operation.value,
                attempts=result.attempts,
                error=result.error.message if result.error else None,
                code=result.error.code if result.error else None,
            )

    def _answered(self, events: list[Event]) -> None:
        """Mark `events` answered in the offset book; observe their time from the event's Kafka timestamp."""
        wall = time.time()
        completed = self._book.completed
        latencies = []
        for event in events:
            message = event.message
            completed(message.source)
            if message.timestamp_ms is not None:
                latencies.append(max(wall - message.timestamp_ms / 1000, 0.0))
        self._metrics.event_to_result.observe_many(latencies)
