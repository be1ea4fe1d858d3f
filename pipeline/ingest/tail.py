"""Reading topics without joining a group: from their current end (watchers), their beginning, or a moment."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, Final, Self

from aiokafka import AIOKafkaConsumer, TopicPartition

from pipeline.ingest.admin import topic_partitions
from pipeline.ingest.consumer import raw_message
from pipeline.kafka import KafkaTarget, client_options
from pipeline.records import RawMessage

_METADATA_TRIES: Final = 50


class TopicTail:
    """Every message written to `topics` after the context was entered, or since the beginning, or since `since_ms`.

    Messages come in order per partition; `caught_up` says whether it has read up to the end each partition had
    on entry, and `to_end` reads just that far. With `committed_only`, messages of aborted transactions are never
    seen (read_committed).
    """

    def __init__(
        self,
        bootstrap: KafkaTarget,
        topics: list[str],
        *,
        from_beginning: bool = False,
        since_ms: int | None = None,
        committed_only: bool = False,
    ) -> None:
        self._bootstrap = bootstrap
        self._topics = topics
        self._from_beginning = from_beginning or since_ms is not None
        self._since_ms = since_ms
        self._consumer: Any = AIOKafkaConsumer(
            **client_options(bootstrap),
            enable_auto_commit=False,
            auto_offset_reset="earliest" if self._from_beginning else "latest",
            isolation_level="read_committed" if committed_only else "read_uncommitted",
        )
        self._ends: dict[TopicPartition, int] = {}
        self._started = False

    async def __aenter__(self) -> Self:
        partitions = await topic_partitions(self._bootstrap, self._topics)
        for _ in range(_METADATA_TRIES):  # a topic created a moment ago may not show its partitions yet
            if {tp.topic for tp in partitions} == set(self._topics):
                break
            await asyncio.sleep(0.1)
            partitions = await topic_partitions(self._bootstrap, self._topics)
        await self._consumer.start()
        self._started = True
        self._consumer.assign(partitions)
        await self._seek(partitions)
        for partition in partitions:  # pin the positions now, before anything new is written
            await self._consumer.position(partition)
        self._ends = await self._consumer.end_offsets(partitions)
        return self

    async def _seek(self, partitions: list[TopicPartition]) -> None:
        if self._since_ms is not None:
            found = await self._consumer.offsets_for_times(dict.fromkeys(partitions, self._since_ms))
            ends = await self._consumer.end_offsets(partitions)
            for tp in partitions:
                at = found.get(tp)
                self._consumer.seek(tp, at.offset if at is not None else ends[tp])
        elif self._from_beginning:
            await self._consumer.seek_to_beginning(*partitions)
        else:
            await self._consumer.seek_to_end(*partitions)

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

    async def caught_up(self) -> bool:
        """Whether every partition has been read up to the end it had when the context was entered."""
        for tp, end in self._ends.items():
            if await self._consumer.position(tp) < end:
                return False
        return True

    async def to_end(self) -> AsyncIterator[RawMessage]:
        """Every message up to the end each partition had on entry (nothing written since)."""
        ends = {(tp.topic, tp.partition): end for tp, end in self._ends.items()}
        while not await self.caught_up():
            for message in await self.read(200):
                if message.source.offset < ends[message.source.topic, message.source.partition]:
                    yield message
