"""The input topic through an aiokafka consumer in a group, behind a typed surface; manual commits only."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Self

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from aiokafka.errors import KafkaError

from pipeline.errors import FatalError
from pipeline.kafka import KafkaTarget, client_options
from pipeline.offsets import PartitionId
from pipeline.records import RawMessage, Source

log = structlog.get_logger()

PartitionsCallback = Callable[[list[PartitionId]], Awaitable[None]]


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, on_revoked: PartitionsCallback, on_assigned: PartitionsCallback) -> None:
        self._on_revoked = on_revoked
        self._on_assigned = on_assigned

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._on_revoked(sorted((tp.topic, tp.partition) for tp in revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._on_assigned(sorted((tp.topic, tp.partition) for tp in assigned))


MAX_PARTITION_FETCH_BYTES = 256 * 1024


def raw_message(tp: TopicPartition, record: Any) -> RawMessage:  # noqa: ANN401 - aiokafka's ConsumerRecord
    """An aiokafka record as the pipeline carries it: its bytes and headers unchanged, and where it was read."""
    headers = tuple(record.headers) if record.headers else ()
    return RawMessage(
        Source(tp.topic, tp.partition, record.offset), record.key, record.value, headers, record.timestamp
    )


class EventSource:
    """Reads the input topic in a consumer group; the caller commits what is done."""

    def __init__(
        self,
        *,
        bootstrap: KafkaTarget,
        topic: str,
        group_id: str,
        client_id: str,
        on_revoked: PartitionsCallback,
        on_assigned: PartitionsCallback,
        max_poll_records: int,
        assignors: tuple[Any, ...] = (),
    ) -> None:
        self._topic = topic
        self._listener = _Listener(self._forgetting(on_revoked), self._forgetting(on_assigned))
        self._max_poll_records = max_poll_records
        self._consumer: Any = AIOKafkaConsumer(
            **client_options(bootstrap),
            group_id=group_id,
            client_id=client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # Replay writes in transactions: an event of one that aborted was never replayed, and is not read.
            isolation_level="read_committed",
            max_poll_records=max_poll_records,
            # One assignor only: aiokafka 0.14 sends a JoinGroup per assignor listed, each a new rebalance.
            partition_assignment_strategy=assignors or (RoundRobinPartitionAssignor,),
            session_timeout_ms=10_000,
            heartbeat_interval_ms=3_000,
            max_poll_interval_ms=300_000,
            # aiokafka keeps a fetched response per partition until it is consumed; 1 MiB each (its default)
            # held 30 MiB under a backlog. A quarter of that still brings more than a poll takes.
            max_partition_fetch_bytes=MAX_PARTITION_FETCH_BYTES,
        )
        self._started = False
        self.paused = False
        self._next: dict[Any, int] = {}  # partition -> the offset after the last message poll handed over
        self._read_any = False  # whether the last telling poll handed over any message
        self._resumed = False  # the next poll is the first since fetching resumed

    async def __aenter__(self) -> Self:
        try:
            await self._consumer.start()
        except KafkaError as exc:
            raise FatalError(f"cannot reach Kafka to consume {self._topic}: {exc}") from exc
        self._started = True
        self._consumer.subscribe([self._topic], listener=self._listener)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._started:
            self._started = False
            await self._consumer.stop()

    def _forgetting(self, callback: PartitionsCallback) -> PartitionsCallback:
        """`callback`, after forgetting how far poll got: a partition's next ownership starts afresh."""

        async def forget_then(partitions: list[PartitionId]) -> None:
            self._next.clear()
            await callback(partitions)

        return forget_then

    @property
    def assignment(self) -> list[PartitionId]:
        """The partitions this instance owns now."""
        return sorted((tp.topic, tp.partition) for tp in self._consumer.assignment())

    async def poll(self, timeout_ms: int) -> list[RawMessage]:
        """The next messages of every owned partition, in offset order per partition."""
        # A poll while paused finds nothing by design, and so may the first after a resume, before the fetcher has
        # fetched again: neither is a sign that nothing is behind (which would send every partial batch at once).
        telling = not self.paused and not self._resumed
        self._resumed = False
        batches = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=self._max_poll_records)
        read = any(batches.values())
        if telling or read:
            self._read_any = read
        for tp, records in batches.items():
            if records:
                self._next[tp] = records[-1].offset + 1
        return [raw_message(tp, record) for tp, records in batches.items() for record in records]

    @property
    def behind(self) -> int:
        """Messages in the owned partitions past what poll has handed over, as of the last fetch (0 if unknown).

        0 as well when the last poll found nothing: the log end may count what is never handed over (transaction
        markers, aborted replays), and a poll that finds nothing is the sign that nothing is behind.
        """
        if not self._read_any:
            return 0
        total = 0
        for tp in self._consumer.assignment():
            handed = self._next.get(tp)
            highwater = self._consumer.highwater(tp)
            if handed is not None and highwater is not None:
                total += max(int(highwater) - handed, 0)
        return total

    def pause(self) -> None:
        """Stop fetching (backpressure): owned partitions stay owned, nothing more is read."""
        if not self.paused:
            self.paused = True
            self._consumer.pause(*self._consumer.assignment())
            log.info("consumption_paused")

    def resume(self) -> None:
        """Fetch again."""
        if self.paused:
            self.paused = False
            self._resumed = True
            self._consumer.resume(*self._consumer.assignment())
            log.info("consumption_resumed")

    def pause_new(self, partitions: list[PartitionId]) -> None:
        """Keep newly assigned partitions paused while backpressure holds."""
        if self.paused:
            self._consumer.pause(*(TopicPartition(t, p) for t, p in partitions))

    async def commit(self, offsets: dict[PartitionId, int]) -> None:
        """Commit `offsets` (the next offset to read per partition)."""
        if offsets:
            await self._consumer.commit({TopicPartition(t, p): offset for (t, p), offset in offsets.items()})

    def log_ends(self) -> dict[PartitionId, int]:
        """The log end of each owned partition, as of the last fetch (partitions not fetched yet left out)."""
        ends = {}
        for tp in list(self._consumer.assignment()):
            highwater = self._consumer.highwater(tp)
            if highwater is not None:
                ends[(tp.topic, tp.partition)] = int(highwater)
        return ends

    async def lag(self) -> dict[int, int]:
        """Messages between this instance's position and the log end, for every partition it owns.

        A partition taken away meanwhile (a rebalance under way) is left out, never an error.
        """
        found = {}
        for tp in list(self._consumer.assignment()):
            try:
                highwater = self._consumer.highwater(tp)
                if highwater is None:
                    continue  # nothing fetched from it yet: the log end is not known
                found[tp.partition] = max(int(highwater) - int(await self._consumer.position(tp)), 0)
            except (KafkaError, AssertionError):  # aiokafka asserts a partition is still assigned
                continue
        return found
