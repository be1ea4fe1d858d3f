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
from msgspec.structs import replace

from pipeline.contract import ResultMessage, ResultSource
from pipeline.errors import FatalError, describe_exception
from pipeline.metrics import Metrics
from pipeline.offsets import OffsetBook
from pipeline.outcome.letter import UNLIMITED, Outgoing, dead_letter
from pipeline.records import (
    CallName,
    DeadLetterReason,
    Event,
    InvalidEvent,
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


def result_json(result: RecordResult, operation: CallName, completed_at: str) -> bytes:
    """The result message of DESIGN 2.4.

    `operation` is the call that carried the record (computed once). The enums are strings: orjson writes them as
    such, in C. orjson, not msgspec: a value it cannot write (an integer past 64 bits from a reply) fails the
    record as `internal_error` rather than reaching the results topic.
    """
    record = result.record
    events = record.events
    if len(events) == 1:  # most records: no list to build by comprehension
        only = events[0]
        source = only.message.source
        event_ids = [only.event_id]
        sources: list[ResultSource] = [{"topic": source.topic, "partition": source.partition, "offset": source.offset}]
    else:
        event_ids = [event.event_id for event in events]
        sources = [
            {"topic": source.topic, "partition": source.partition, "offset": source.offset}
            for source in (event.message.source for event in events)
        ]
    message: ResultMessage = {
        "key": record.key,
        "kind": record.kind,
        "operation": operation,
        "status": result.status,
        "lead_id": result.lead_id,
        "mobject_id": result.mobject_id,
        "error": None if result.error is None else {"code": result.error.code, "message": result.error.message[:4096]},
        "attempts": result.attempts,
        "lead": result.lead_data,
        "event_ids": event_ids,
        "sources": sources,
        "completed_at": completed_at,
    }
    if result.guid is not None:
        message["marketo_guid"] = result.guid
    return orjson.dumps(message)


def _rendered(
    result: RecordResult, operation: CallName, completed_at: str, max_bytes: int
) -> tuple[RecordResult, bytes]:
    """The result and its message; a result that cannot be written becomes an `internal_error` FAILED one.

    A message larger than the results topic accepts goes without the returned lead record (`lead`), the one part
    whose size nothing here bounds.
    """
    try:
        value = result_json(result, operation, completed_at)
        if len(value) > max_bytes and result.lead_data is not None:
            log.warning("result_lead_left_out", key=result.record.key, bytes=len(value), limit=max_bytes)
            result = replace(result, lead_data=None)
            value = result_json(result, operation, completed_at)
    except Exception as exc:
        log.error("result_internal_error", key=result.record.key, exc_info=exc)  # noqa: TRY400 - exc_info given
        failed = RecordResult(
            result.record,
            RecordStatus.FAILED,
            result.attempts,
            error=RecordError(None, describe_exception(exc)),
            dead_letter=DeadLetterReason.INTERNAL_ERROR,
            operation=result.operation,
        )
        return failed, result_json(failed, operation, completed_at)
    return result, value


class OutcomePublisher:
    """Publishes, waits for the broker's acknowledgement, then marks the events answered in the offset book."""

    def __init__(
        self,
        sink: Sink,
        book: OffsetBook,
        metrics: Metrics,
        *,
        results_topic: str,
        dlq_topic: str,
        max_result_bytes: int = UNLIMITED,
        max_letter_bytes: int = UNLIMITED,
    ) -> None:
        self._sink = sink
        self._book = book
        self._metrics = metrics
        self._results_topic = results_topic
        self._dlq_topic = dlq_topic
        self._max_result_bytes = max_result_bytes  # what each topic accepts: no message published may be larger
        self._max_letter_bytes = max_letter_bytes

    async def _await_all(self, futures: list[asyncio.Future[Any]]) -> None:
        try:
            await asyncio.gather(*futures)
        except KafkaError as exc:
            raise FatalError(f"the broker did not acknowledge results or dead letters: {exc}") from exc

    async def publish_invalid(self, invalid: list[InvalidEvent]) -> None:
        """Dead-letter events that never became records."""
        failed_at = rfc3339(datetime.now(UTC))
        letters: list[Outgoing] = [
            dead_letter(e.message, e.reason, e.error, 0, failed_at, max_bytes=self._max_letter_bytes) for e in invalid
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
            operation = given.operation or record.operation
            key = record.key.encode()
            result, value = _rendered(given, operation, completed_at, self._max_result_bytes)
            published.append(result)
            messages.append((key, value, None))
            # Keyed by the precedence key upstream too: the result's partition is the event's, no hashing needed.
            first = record.events[0].message
            origins.append((first.source.topic, first.source.partition) if first.key == key else None)
            counts[operation, result.status] += 1
            if result.dead_letter is not None:
                letters += self._letters(result, result.dead_letter, completed_at)
        futures = await self._sink.send_many(self._results_topic, messages, read_from=origins)
        futures += await self._sink.send_many(self._dlq_topic, letters)
        del messages, letters  # copied into the producer's batches: not held while the broker acknowledges
        await self._await_all(futures)
        self._published(published, counts)

    def _letters(self, result: RecordResult, reason: DeadLetterReason, failed_at: str) -> list[Outgoing]:
        """A dead letter for each event of a FAILED record."""
        error = result.error.message if result.error else result.status.value
        code = result.error.code if result.error else None
        limit = self._max_letter_bytes
        return [
            dead_letter(event.message, reason, error, result.attempts, failed_at, max_bytes=limit, code=code)
            for event in result.record.events
        ]

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
                operation=(result.operation or result.record.operation).value,
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
