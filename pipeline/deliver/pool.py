"""The worker pool: `concurrency` workers, each taking one batch at a time to its end."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from pipeline.deliver.delivery import BatchDelivery, failed_result
from pipeline.errors import describe_exception
from pipeline.records import Batch, DeadLetterReason, RecordResult

log = structlog.get_logger()


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
                await self._sink(await self._deliver(batch))
            finally:
                self.busy -= 1

    async def _deliver(self, batch: Batch) -> list[RecordResult]:
        """The batch's results; an exception nobody foresaw fails its records as `internal_error`, never the pool."""
        try:
            return await self._delivery.deliver(batch)
        except Exception as exc:
            log.exception("batch_internal_error", operation=batch.operation.value, records=len(batch.records))
            message = describe_exception(exc)
            return [failed_result(r, DeadLetterReason.INTERNAL_ERROR, 0, None, message) for r in batch.records]
