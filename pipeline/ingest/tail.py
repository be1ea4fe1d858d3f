"""Reading topics from their current end: what watchers (the demo, operators' tools) need."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

from aiokafka import AIOKafkaConsumer

from pipeline.ingest.admin import topic_partitions
from pipeline.ingest.consumer import raw_message
from pipeline.records import RawMessage


class TopicTail:
    """Every message written to `topics` after the context was entered, without joining a group."""

    def __init__(self, bootstrap: str, topics: list[str]) -> None:
        self._bootstrap = bootstrap
        self._topics = topics
        self._consumer: Any = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        self._started = False

    async def __aenter__(self) -> Self:
        partitions = await topic_partitions(self._bootstrap, self._topics)
        await self._consumer.start()
        self._started = True
        self._consumer.assign(partitions)
        await self._consumer.seek_to_end(*partitions)
        for partition in partitions:  # pin the positions now, before anything new is written
            await self._consumer.position(partition)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._started:
            self._started = False
            await self._consumer.stop()

    async def read(self, timeout_ms: int = 500) -> list[RawMessage]:
        """What arrived since the last read."""
        batches = await self._consumer.getmany(timeout_ms=timeout_ms)
        return [raw_message(tp, record) for tp, records in batches.items() for record in records]
