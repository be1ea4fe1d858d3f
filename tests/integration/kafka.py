"""The real Kafka broker for integration tests, and helpers to drive the pipeline through it."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

ROOT = Path(__file__).resolve().parents[2]
KAFKA_SCRIPT = ROOT / "deploy" / "kafka" / "kafka.sh"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Broker:
    """A broker of its own on free ports, which a test may stop and start again (its data stays)."""

    def __init__(self, run_dir: Path) -> None:
        self.port = free_port()
        self._env = {
            **os.environ,
            "KAFKA_PORT": str(self.port),
            "KAFKA_CONTROLLER_PORT": str(free_port()),
            "KAFKA_RUN_DIR": str(run_dir),
        }

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        subprocess.run([str(KAFKA_SCRIPT), "up"], env=self._env, check=True, timeout=900)  # noqa: S603

    def stop(self) -> None:
        subprocess.run([str(KAFKA_SCRIPT), "down"], env=self._env, check=False, timeout=120)  # noqa: S603


@contextmanager
def local_broker() -> Iterator[str]:
    """A broker for this test session: the one KAFKA_BOOTSTRAP names, or a fresh one on free ports."""
    named = os.environ.get("KAFKA_BOOTSTRAP")
    if named:
        yield named
        return
    with tempfile.TemporaryDirectory(prefix="pipeline-kafka-") as run_dir:
        broker = Broker(Path(run_dir))
        broker.start()
        try:
            yield broker.bootstrap
        finally:
            broker.stop()


@dataclass(frozen=True, slots=True)
class Topics:
    """One test's own topics and consumer group."""

    input: str
    results: str
    dlq: str
    group: str

    @classmethod
    def unique(cls) -> Topics:
        tag = uuid.uuid4().hex[:10]
        return cls(f"in-{tag}", f"results-{tag}", f"dlq-{tag}", f"group-{tag}")


async def create_topics(bootstrap: str, topics: Topics, partitions: int) -> None:
    admin: Any = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name, partitions, 1) for name in (topics.input, topics.results, topics.dlq)]
        )
    finally:
        await admin.close()


async def publish(
    bootstrap: str,
    topic: str,
    messages: list[tuple[bytes | None, bytes]],
    *,
    headers: list[tuple[str, bytes]] | None = None,
) -> None:
    producer: Any = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(topic, value=value, key=key, headers=headers) for key, value in messages]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def events(bodies: list[dict[str, Any]]) -> list[tuple[bytes | None, bytes]]:
    """Input messages for `bodies`, keyed as a producer should (the precedence key is computed by the test)."""
    return [
        (str(body.get("_key", body["event_id"])).encode(), orjson.dumps({k: v for k, v in body.items() if k != "_key"}))
        for body in bodies
    ]


@dataclass(slots=True)
class Collected:
    """Everything read from a topic."""

    values: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, bytes]] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    keys: list[bytes | None] = field(default_factory=list)


async def read_all(bootstrap: str, topic: str, *, json_values: bool = True) -> Collected:
    """Every message on `topic` now (from the beginning to the end offsets at the time of the call)."""
    consumer: Any = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    collected = Collected()
    try:
        partitions = [
            TopicPartition(topic, p)
            for p in (consumer.partitions_for_topic(topic) or await _partitions(consumer, topic))
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        remaining = {tp for tp in partitions if ends[tp] > 0}
        while remaining:
            batch = await consumer.getmany(timeout_ms=500)
            for tp, records in batch.items():
                for record in records:
                    collected.raw.append(record.value)
                    collected.keys.append(record.key)
                    collected.headers.append(dict(record.headers))
                    if json_values:
                        collected.values.append(orjson.loads(record.value))
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    return collected


async def _partitions(consumer: Any, topic: str) -> set[int]:
    for _ in range(50):
        await consumer._client.force_metadata_update()
        found = consumer.partitions_for_topic(topic)
        if found:
            return set(found)
        await asyncio.sleep(0.1)
    raise AssertionError(f"topic {topic} has no partitions")


async def wait_for(
    predicate: Any, *, timeout_s: float = 60.0, interval_s: float = 0.25, what: str = "condition"
) -> Any:
    """Poll an async predicate until it returns something truthy."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; last: {value!r}")
        await asyncio.sleep(interval_s)


async def committed(bootstrap: str, group: str) -> dict[int, int]:
    """The group's committed offsets per partition."""
    admin: Any = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
        return {tp.partition: meta.offset for tp, meta in offsets.items()}
    finally:
        await admin.close()
