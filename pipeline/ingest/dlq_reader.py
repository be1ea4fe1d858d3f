"""Reading the dead-letter topic from a consumer group's own position, up to where it ended at the start."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, Self

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from pipeline.errors import FatalError
from pipeline.ingest.admin import topic_partitions
from pipeline.ingest.consumer import raw_message
from pipeline.offsets import PartitionId
from pipeline.records import RawMessage


class DeadLetterReader:
    """Everything between the group's committed position and the end offsets seen on entry; commit is explicit.

    Stopping at the end seen on entry means a replay never chases dead letters written while it runs.
    """

    def __init__(self, *, bootstrap: str, topic: str, group_id: str) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._consumer: Any = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False, auto_offset_reset="earliest"
        )
        self._ends: dict[TopicPartition, int] = {}
        self._started = False

    async def __aenter__(self) -> Self:
        partitions = await topic_partitions(self._bootstrap, [self._topic])
        try:
            await self._consumer.start()
        except KafkaError as exc:
            raise FatalError(f"cannot read {self._topic}: {exc}") from exc
        self._started = True
        self._consumer.assign(partitions)
        self._ends = await self._consumer.end_offsets(partitions)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._started:
            self._started = False
            await self._consumer.stop()

    async def backlog(self) -> int:
        """Dead letters between the group's position and the end seen on entry."""
        total = 0
        for tp, end in self._ends.items():
            total += max(end - int(await self._consumer.position(tp)), 0)
        return total

    async def messages(self) -> AsyncIterator[RawMessage]:
        """The dead letters up to the end seen on entry, per partition in offset order."""
        remaining = {tp for tp, end in self._ends.items() if await self._consumer.position(tp) < end}
        while remaining:
            batches = await self._consumer.getmany(*remaining, timeout_ms=1000)
            for tp, records in batches.items():
                for record in records:
                    if record.offset >= self._ends[tp]:
                        remaining.discard(tp)
                        break
                    yield raw_message(tp, record)
                if await self._consumer.position(tp) >= self._ends[tp]:
                    remaining.discard(tp)

    async def commit(self, offsets: dict[PartitionId, int]) -> None:
        """Move the group's position: `offsets` are the next offsets to read."""
        if offsets:
            await self._consumer.commit({TopicPartition(t, p): o for (t, p), o in offsets.items()})
