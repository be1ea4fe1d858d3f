"""The service on a secured cluster: TLS and SCRAM-SHA-512 on a listener of a real broker, certificates made here."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from devkit.kafka import Broker, SecureListener, Topics, create_topics, publish, read_all, wait_for
from devkit.service import RunningService
from devkit.simulator import SimClient
from tests.integration.conftest import pipeline_settings
from tests.integration.helpers import events
from tests.integration.test_pipeline import _status, _text, lead, results_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Broker, SecureListener]]:
    directory: Path = tmp_path_factory.mktemp("secured-kafka")
    listener = SecureListener.made_in(directory / "tls")
    broker = Broker(directory / "broker", listener)
    broker.start()
    try:
        yield broker, listener
    finally:
        broker.stop()


async def test_the_service_reads_and_publishes_over_tls_and_scram(
    secured: tuple[Broker, SecureListener], sim: SimClient
) -> None:
    broker, listener = secured
    topics = Topics.unique()
    await create_topics(broker.bootstrap, topics, partitions=3)
    bodies = [lead(n) for n in range(50)]
    await publish(broker.bootstrap, topics.input, events(bodies))
    settings = pipeline_settings(broker.bootstrap, topics, sim, kafka=listener.kafka_settings())
    assert settings.kafka.bootstrap == listener.bootstrap  # every client of the service goes the secured way
    async with RunningService(settings) as running:
        results = await results_for(broker.bootstrap, topics, len(bodies))
        assert await _status(f"{running.ops_url}/readyz") == 200
    assert {e for r in results for e in r["event_ids"]} == {b["event_id"] for b in bodies}
    assert {r["status"] for r in results} == {"CREATED"}
    assert len((await sim.admin("leads"))["leads"]) == len(bodies)


async def test_a_wrong_password_is_said_clearly_and_the_service_stays_up_unready(
    secured: tuple[Broker, SecureListener], sim: SimClient
) -> None:
    broker, listener = secured
    topics = Topics.unique()
    await create_topics(broker.bootstrap, topics, partitions=1)
    await publish(broker.bootstrap, topics.input, events([lead(1)]))
    settings = pipeline_settings(broker.bootstrap, topics, sim, kafka=listener.kafka_settings(password="wrong"))
    service = RunningService(settings)
    stop = service.stop
    task = asyncio.create_task(service.service.run(stop))
    try:

        async def unready_with_reason() -> str | None:
            port = service.service.ops_port
            if port is None:
                return None
            said = await _text(f"http://127.0.0.1:{port}/readyz")
            return said if "Kafka" in said else None

        said = await wait_for(unready_with_reason, timeout_s=60, what="/readyz to say what Kafka refuses")
        assert "authentication" in said.lower() or "sasl" in said.lower(), said
        assert await _status(f"http://127.0.0.1:{service.service.ops_port}/readyz") == 503
        kafka_said = await _text(f"http://127.0.0.1:{service.service.ops_port}/readyz/kafka")
        assert await _status(f"http://127.0.0.1:{service.service.ops_port}/readyz/kafka") == 503
        assert "Kafka" in kafka_said, kafka_said
        await asyncio.sleep(3)  # tried again meanwhile, and still up: no crash, no loop of restarts
        assert not task.done()
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)  # stops cleanly, having sent nothing
    assert (await read_all(broker.bootstrap, topics.results)).values == []
