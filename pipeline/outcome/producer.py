"""The idempotent producer (acks=all) behind a typed surface."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any, Self

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from pipeline.errors import FatalError

Headers = list[tuple[str, bytes]]


class KafkaSink:
    """Sends messages; each send returns a future that resolves when the broker has acknowledged it."""

    def __init__(self, *, bootstrap: str, client_id: str) -> None:
        self._bootstrap = bootstrap
        self._producer: Any = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            client_id=client_id,
            enable_idempotence=True,
            acks="all",
            linger_ms=5,
            max_batch_size=512 * 1024,
            request_timeout_ms=30_000,
        )
        self._started = False

    async def __aenter__(self) -> Self:
        try:
            await self._producer.start()
        except KafkaError as exc:
            raise FatalError(f"cannot reach Kafka at {self._bootstrap} to publish: {exc}") from exc
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

    async def flush(self) -> None:
        """Wait until everything sent is acknowledged."""
        await self._producer.flush()
