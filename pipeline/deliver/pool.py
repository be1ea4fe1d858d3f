"""The worker pool: `concurrency` workers, each taking one batch at a time to its end."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from pipeline.deliver.delivery import BatchDelivery
from pipeline.records import Batch, RecordResult


class DeliveryPool:
    """`concurrency` workers taking batches from a bounded queue; each batch's results go to `sink`."""

    def __init__(
        self,
        delivery: BatchDelivery,
        concurrency: int,
        sink: Callable[[list[RecordResult]], Awaitable[None]],
    ) -> None:
        self._delivery = delivery
        self._concurrency = concurrency
        self._sink = sink
        self._queue: asyncio.Queue[Batch | None] = asyncio.Queue(maxsize=concurrency * 2)
        self.busy = 0

    @property
    def queued(self) -> int:
        """Batches waiting for a worker."""
        return self._queue.qsize()

    async def submit(self, batch: Batch) -> None:
        """Queue `batch`; waits while the queue is full (backpressure)."""
        await self._queue.put(batch)

    async def close(self) -> None:
        """Let the workers finish what is queued, then stop."""
        for _ in range(self._concurrency):
            await self._queue.put(None)

    async def run(self) -> None:
        """The workers, until `close`."""
        async with asyncio.TaskGroup() as group:
            for _ in range(self._concurrency):
                group.create_task(self._work())

    async def _work(self) -> None:
        while (batch := await self._queue.get()) is not None:
            self.busy += 1
            try:
                results = await self._delivery.deliver(batch)
                await self._sink(results)
            finally:
                self.busy -= 1
