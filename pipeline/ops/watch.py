"""What the results and dead-letter topics say about a run: which events are answered, how, and when.

The demo's summary, the bench and the tests read the outcome of a run through this one watcher.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Self

from pipeline.contract import DlqHeader, header, read_result
from pipeline.ingest.tail import TopicTail
from pipeline.kafka import KafkaTarget
from pipeline.records import DeadLetterReason, RawMessage

_SOURCE = (DlqHeader.SOURCE_TOPIC, DlqHeader.SOURCE_PARTITION, DlqHeader.SOURCE_OFFSET)
_INVALID = frozenset({DeadLetterReason.INVALID_JSON.value.encode(), DeadLetterReason.INVALID_EVENT.value.encode()})


@dataclass(slots=True)
class Tally:
    """Results and dead letters counted: by event, by status, by operation, by dead-letter reason.

    An input event is accounted for once a result names it or a dead letter carries it; both say where the event
    was read, so `events` counts input positions, whatever the event held. With `sent_at` (event id -> wall-clock
    time it was published), `latencies` collects publish-to-result times.
    """

    results_topic: str
    sent_at: dict[str, float] | None = None
    answered: Counter[str] = field(default_factory=Counter)  # event id -> results that name it
    statuses: Counter[str] = field(default_factory=Counter)
    operations: Counter[str] = field(default_factory=Counter)
    dead_letters: Counter[str] = field(default_factory=Counter)
    invalid: int = 0
    results: int = 0
    latencies: list[float] = field(default_factory=list)
    positions: set[tuple[str, int, int]] = field(default_factory=set)  # (topic, partition, offset) accounted for

    def add(self, message: RawMessage) -> None:
        """Count one result or dead letter."""
        if message.source.topic == self.results_topic:
            if message.value is not None:
                self._result(message.value)
            return
        headers = message.headers
        reason = header(headers, DlqHeader.REASON) or b"?"
        self.dead_letters[reason.decode(errors="replace")] += 1
        if reason in _INVALID:
            self.invalid += 1
        topic, partition, offset = (header(headers, name) for name in _SOURCE)
        if topic is not None and partition is not None and offset is not None:
            self.positions.add((topic.decode(errors="replace"), int(partition), int(offset)))

    def _result(self, value: bytes) -> None:
        result = read_result(value)
        self.results += 1
        self.answered.update(result["event_ids"])
        self.positions.update((s["topic"], s["partition"], s["offset"]) for s in result["sources"])
        self.statuses[result["status"]] += 1
        self.operations[result["operation"]] += 1
        if self.sent_at is not None:
            completed = datetime.fromisoformat(result["completed_at"]).timestamp()
            sent = self.sent_at
            self.latencies.extend(completed - sent[e] for e in result["event_ids"] if e in sent)

    @property
    def events(self) -> int:
        """Input events accounted for: named by a result, or carried by a dead letter."""
        return len(self.positions)

    @property
    def duplicated(self) -> int:
        """Results beyond the first for the same event (at-least-once delivery after a crash)."""
        return sum(n - 1 for n in self.answered.values() if n > 1)


class ResultsWatcher:
    """Tails the results and dead-letter topics into a Tally, from their end on entry or from their beginning."""

    def __init__(
        self,
        bootstrap: KafkaTarget,
        results_topic: str,
        dlq_topic: str,
        *,
        from_beginning: bool = False,
        sent_at: dict[str, float] | None = None,
    ) -> None:
        self._tail = TopicTail(bootstrap, [results_topic, dlq_topic], from_beginning=from_beginning)
        self.tally = Tally(results_topic, sent_at)

    async def __aenter__(self) -> Self:
        await self._tail.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._tail.__aexit__(exc_type, exc, tb)

    async def read(self, timeout_ms: int = 500) -> int:
        """Count what arrived since the last read; returns how many messages that was."""
        messages = await self._tail.read(timeout_ms)
        for message in messages:
            self.tally.add(message)
        return len(messages)

    async def caught_up(self) -> bool:
        """Whether everything the topics held on entry has been counted."""
        return await self._tail.caught_up()

    async def wait(self, events: int, timeout_s: float) -> float:
        """Until `events` input events are accounted for; returns the monotonic time of the last answer read.

        Raises TimeoutError naming how far it got.
        """
        deadline = time.monotonic() + timeout_s
        last = time.monotonic()
        while self.tally.events < events:
            if time.monotonic() > deadline:
                msg = f"only {self.tally.events} of {events} events answered in {timeout_s}s"
                raise TimeoutError(msg)
            if await self.read(200):
                last = time.monotonic()
        return last
