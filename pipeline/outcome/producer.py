"""The idempotent producer (acks=all) behind a typed surface."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any, Self

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner

from pipeline.errors import FatalError
from pipeline.kafka import KafkaTarget, bootstrap_of, client_options, connection_refusals

MAX_BATCH_BYTES = 512 * 1024
MAX_REQUEST_BYTES = 1024 * 1024
Headers = list[tuple[str, bytes]]
Message = tuple[bytes | None, bytes | None, Headers | None]


class KafkaSink:
    """Sends messages; each send returns a future that resolves when the broker has acknowledged it."""

    def __init__(
        self,
        *,
        bootstrap: KafkaTarget,
        client_id: str,
        max_batch_bytes: int = MAX_BATCH_BYTES,
        max_request_bytes: int = MAX_REQUEST_BYTES,
    ) -> None:
        self._bootstrap = bootstrap
        self._producer: Any = AIOKafkaProducer(
            **client_options(bootstrap),
            client_id=client_id,
            enable_idempotence=True,
            acks="all",
            linger_ms=5,
            max_batch_size=max_batch_bytes,  # a batch is what a topic's max.message.bytes limits
            max_request_size=max_request_bytes,
            request_timeout_ms=30_000,
        )
        self._partitioner = DefaultPartitioner()
        self._started = False

    async def __aenter__(self) -> Self:
        with connection_refusals() as refusals:
            try:
                await self._producer.start()
            except KafkaError as exc:
                await self._producer.stop()  # its connections and tasks, opened in part
                cause = refusals.last or str(exc)
                raise FatalError(f"cannot reach Kafka at {bootstrap_of(self._bootstrap)} to publish: {cause}") from exc
        self._started = True
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._started:
            self._started = False
            await self._producer.stop()

    @property
    def connected(self) -> bool:
        """True while the producer runs."""
        return self._started

    async def send(
        self, topic: str, key: bytes | None, value: bytes | None, headers: Headers | None = None
    ) -> asyncio.Future[Any]:
        """Queue one message; await the returned future for its acknowledgement."""
        try:
            future: asyncio.Future[Any] = await self._producer.send(topic, value=value, key=key, headers=headers)
        except KafkaError as exc:
            raise FatalError(f"cannot publish to {topic}: {exc}") from exc
        return future

    async def send_many(
        self, topic: str, messages: list[Message], *, read_from: list[tuple[str, int] | None] | None = None
    ) -> list[asyncio.Future[Any]]:
        """Queue `messages` in one batch per partition; await the futures for their acknowledgement.

        Much cheaper than one `send` per message. A message goes where Kafka's default partitioner puts its key,
        except that `read_from[i]`, when given, names the (topic, partition) message i's key was read from with
        the same bytes: when that topic has as many partitions, message i follows it there and the (pure Python)
        hash is skipped. A key's messages then follow its events' partition: exactly as consistent as upstream's
        keying, and the default partitioner's own answer when upstream used it.
        """
        if not messages:
            return []
        try:
            grouped = await self._by_partition(topic, messages, read_from)
            futures: list[asyncio.Future[Any]] = []
            for partition, items in grouped.items():
                batch = self._producer.create_batch()
                for key, value, headers in items:
                    if batch.append(key=key, value=value, timestamp=None, headers=headers or []) is None:
                        futures.append(await self._producer.send_batch(batch, topic, partition=partition))
                        batch = self._producer.create_batch()
                        if batch.append(key=key, value=value, timestamp=None, headers=headers or []) is None:
                            futures.append(await self._producer.send(topic, value=value, key=key, headers=headers))
                if batch.record_count():
                    futures.append(await self._producer.send_batch(batch, topic, partition=partition))
        except KafkaError as exc:
            raise FatalError(f"cannot publish to {topic}: {exc}") from exc
        return futures

    async def _by_partition(
        self, topic: str, messages: list[Message], read_from: list[tuple[str, int] | None] | None
    ) -> dict[int, list[Message]]:
        partitions = sorted(await self._producer.partitions_for(topic))
        counts: dict[str, int] = {}
        grouped: dict[int, list[Message]] = {}
        for index, message in enumerate(messages):
            origin = read_from[index] if read_from is not None else None
            if origin is not None and origin[0] not in counts:
                counts[origin[0]] = len(await self._producer.partitions_for(origin[0]))
            if origin is not None and counts[origin[0]] == len(partitions):
                partition = origin[1]
            else:
                partition = self._partitioner(message[0], partitions, partitions)
            grouped.setdefault(partition, []).append(message)
        return grouped

    async def flush(self) -> None:
        """Wait until everything sent is acknowledged."""
        await self._producer.flush()
