"""A real Kafka broker for tests and benchmarks, and the few things they do with it."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import trustme
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError
from cryptography.hazmat.primitives import serialization

from pipeline.deliver.budget import BUDGET_TOPIC_CONFIG
from pipeline.ingest.admin import topic_partitions
from pipeline.ingest.tail import TopicTail

ROOT = Path(__file__).resolve().parents[1]
KAFKA_SCRIPT = ROOT / "deploy" / "kafka" / "kafka.sh"
T = TypeVar("T")


def free_port() -> int:
    """A TCP port free on loopback now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True)
class SecureListener:
    """A broker's TLS + SCRAM-SHA-512 listener: where it is, the CA that signed its certificate, one user."""

    port: int
    cafile: Path
    keystore: Path
    username: str = "pipeline"
    password: str = "pipeline-scram-secret"  # noqa: S105 - a throwaway broker's user, made for one test run

    @property
    def bootstrap(self) -> str:
        """HOST:PORT of the secured listener."""
        return f"127.0.0.1:{self.port}"

    def kafka_settings(self, *, password: str | None = None) -> dict[str, Any]:
        """The `kafka` settings that reach this listener (with `password` instead of the right one, when given)."""
        return {
            "bootstrap": self.bootstrap,
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_username": self.username,
            "sasl_password": self.password if password is None else password,
            "ssl_cafile": str(self.cafile),
        }

    @classmethod
    def made_in(cls, directory: Path) -> SecureListener:
        """A listener with a CA and a broker certificate for 127.0.0.1 made here, now (the keys never leave it)."""
        directory.mkdir(parents=True, exist_ok=True)
        ca = trustme.CA()
        issued = ca.issue_cert("127.0.0.1", "localhost")
        key = serialization.load_pem_private_key(issued.private_key_pem.bytes(), password=None)
        pkcs8 = key.private_bytes(  # what a PEM keystore of Kafka's reads
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        keystore = directory / "broker.pem"
        keystore.write_bytes(pkcs8 + b"".join(blob.bytes() for blob in issued.cert_chain_pems))
        cafile = directory / "ca.pem"
        ca.cert_pem.write_to_path(str(cafile))
        return cls(free_port(), cafile, keystore)


class Broker:
    """A broker of its own on free ports, which a test may stop and start again (its data stays).

    With `secure`, a second listener with TLS and SCRAM-SHA-512 beside the plaintext one.
    """

    def __init__(self, run_dir: Path, secure: SecureListener | None = None) -> None:
        self.port = free_port()
        self.secure = secure
        self._env = {
            **os.environ,
            "KAFKA_PORT": str(self.port),
            "KAFKA_CONTROLLER_PORT": str(free_port()),
            "KAFKA_RUN_DIR": str(run_dir),
        }
        if secure is not None:
            self._env |= {
                "KAFKA_SECURE_PORT": str(secure.port),
                "KAFKA_TLS_KEYSTORE": str(secure.keystore),
                "KAFKA_SCRAM_USERS": f"{secure.username}={secure.password}",
            }

    @property
    def bootstrap(self) -> str:
        """HOST:PORT of its listener."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start it and wait until it answers."""
        subprocess.run([str(KAFKA_SCRIPT), "up"], env=self._env, check=True, timeout=900)

    def stop(self) -> None:
        """Stop it; its data stays for the next start."""
        subprocess.run([str(KAFKA_SCRIPT), "down"], env=self._env, check=False, timeout=120)


@contextmanager
def local_broker() -> Iterator[str]:
    """A broker for a session: the one KAFKA_BOOTSTRAP names, or a fresh one on free ports."""
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
    """One run's own topics and consumer group."""

    input: str
    results: str
    dlq: str
    group: str
    budget: str = "marketo.budget"

    @classmethod
    def unique(cls) -> Topics:
        """Names no other run uses (its Marketo budget too: each run has a simulator of its own)."""
        tag = uuid.uuid4().hex[:10]
        return cls(f"in-{tag}", f"results-{tag}", f"dlq-{tag}", f"group-{tag}", f"budget-{tag}")


async def create_topics(
    bootstrap: str, topics: Topics, partitions: int, configs: dict[str, dict[str, str]] | None = None
) -> None:
    """The input, results and dead-letter topics of `topics` (with `configs[name]`, when given), and its budget topic.

    The budget topic is made as the service makes it, so that a run starts as a deployment does: its topics there.
    """
    admin: Any = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        wanted = configs or {}
        await admin.create_topics(
            [
                *(
                    NewTopic(name, partitions, 1, topic_configs=wanted.get(name))
                    for name in (topics.input, topics.results, topics.dlq)
                ),
                NewTopic(topics.budget, 1, 1, topic_configs=wanted.get(topics.budget, BUDGET_TOPIC_CONFIG)),
            ]
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
    """`messages` (key, value) on `topic`, acknowledged."""
    producer: Any = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(topic, value=value, key=key, headers=headers) for key, value in messages]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


@dataclass(slots=True)
class Collected:
    """Everything read from a topic."""

    values: list[Any] = field(default_factory=list)
    headers: list[dict[str, bytes]] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    keys: list[bytes | None] = field(default_factory=list)


async def read_all(bootstrap: str, topic: str, *, json_values: bool = True) -> Collected:
    """Every message on `topic` now (from the beginning to the end offsets at the time of the call)."""
    import orjson  # noqa: PLC0415 - only the JSON readers need it

    collected = Collected()
    async with TopicTail(bootstrap, [topic], from_beginning=True) as tail:
        while not await tail.caught_up():
            for message in await tail.read(200):
                collected.raw.append(message.value or b"")
                collected.keys.append(message.key)
                collected.headers.append(dict(message.headers))
                if json_values:
                    collected.values.append(orjson.loads(message.value or b"null"))
    return collected


async def retry_kafka(action: Callable[[], Awaitable[T]], *, attempts: int = 60, pause_s: float = 0.5) -> T:
    """`action`, again while the broker answers with a retriable error (a coordinator moving, a leader elected)."""
    for _ in range(attempts - 1):
        try:
            return await action()
        except KafkaError as exc:
            if not getattr(exc, "retriable", False) and "Coordinator" not in type(exc).__name__:
                raise
            await asyncio.sleep(pause_s)
    return await action()


async def committed(bootstrap: str, group: str) -> dict[int, int]:
    """The group's committed offsets per partition (a moving coordinator is asked again)."""
    admin: Any = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await retry_kafka(lambda: admin.list_consumer_group_offsets(group))
        return {tp.partition: meta.offset for tp, meta in offsets.items()}
    finally:
        await admin.close()


async def wait_for(
    predicate: Callable[[], Awaitable[T | None]],
    *,
    timeout_s: float = 60.0,
    interval_s: float = 0.25,
    what: str = "condition",
) -> T:
    """Poll an async predicate until it returns something truthy; returns that."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; last: {value!r}")
        await asyncio.sleep(interval_s)


async def wait_all_committed(bootstrap: str, group: str, topic: str, timeout_s: float) -> None:
    """Until `group` has committed the end of every partition of `topic`: every event there is answered.

    The service commits an offset only when every event below it has its result or dead letter. Asking the
    broker twice a second costs the machine under measurement nothing, unlike reading every result as it comes.
    """
    admin: Any = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer: Any = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        partitions = await topic_partitions(bootstrap, [topic])
        ends = await retry_kafka(lambda: consumer.end_offsets(partitions))

        async def done() -> bool:
            try:
                offsets = await admin.list_consumer_group_offsets(group)
            except KafkaError:  # the group's coordinator moving or not there yet: ask again
                return False
            return all(tp in offsets and offsets[tp].offset >= end for tp, end in ends.items())

        await wait_for(done, timeout_s=timeout_s, interval_s=0.5, what=f"{group} to commit the end of {topic}")
    finally:
        await consumer.stop()
        await admin.close()


async def last_written(bootstrap: str, topics: list[str]) -> float:
    """The wall-clock time (s) of the newest message in `topics`: its producer's timestamp."""
    consumer: Any = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = await topic_partitions(bootstrap, topics)
        ends = await retry_kafka(lambda: consumer.end_offsets(partitions))
        newest = [tp for tp in partitions if ends[tp] > 0]
        consumer.assign(newest)
        latest = 0
        for tp in newest:
            consumer.seek(tp, ends[tp] - 1)

            async def last(tp: Any = tp) -> list[Any]:  # noqa: ANN401 - aiokafka's TopicPartition
                return (await consumer.getmany(tp, timeout_ms=1_000, max_records=1)).get(tp, [])  # type: ignore[no-any-return]

            records = await wait_for(last, timeout_s=60, interval_s=0, what=f"the last message of {tp}")
            latest = max(latest, records[0].timestamp)
        return latest / 1000
    finally:
        await consumer.stop()
