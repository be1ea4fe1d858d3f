"""Integration fixtures: the real broker, and the simulator served over real HTTP on a free loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest

from devkit.kafka import Topics, create_topics, local_broker
from devkit.service import service_settings
from devkit.simulator import SimClient, rest_marketo_settings
from pipeline.config import Settings
from pipeline.marketo.soap.signing import Credentials
from pipeline.sim.server import Simulator, SimulatorServer
from pipeline.sim.settings import SimSettings

CREDENTIALS = Credentials("it_user", "it-secret")


@pytest.fixture
async def sim() -> AsyncIterator[SimClient]:
    # The test instance has one custom field, Seq, that the failure suite's events carry (over REST a field must
    # exist to be written; over SOAP the simulator takes any name unless told otherwise).
    settings = SimSettings(user_id=CREDENTIALS.user_id, secret_key=CREDENTIALS.secret_key, custom_fields=("Seq",))
    async with (
        SimulatorServer(Simulator(settings, seed=7)) as server,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session,
    ):
        yield SimClient(server.base_url, session, CREDENTIALS)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    with local_broker() as bootstrap:
        yield bootstrap


@pytest.fixture
async def topics(kafka_bootstrap: str) -> Topics:
    names = Topics.unique()
    await create_topics(kafka_bootstrap, names, partitions=3)
    return names


APIS = pytest.mark.parametrize("api", ["soap", "rest"])


def pipeline_settings(
    bootstrap: str, topics: Topics, sim: SimClient, api: str = "soap", **sections: dict[str, Any]
) -> Settings:
    """Settings for a test: its own topics and group, the simulator over `api`, short windows and backoffs."""
    marketo = {"timeout_s": 5.0, **(rest_marketo_settings(sim.base_url) if api == "rest" else {})}
    base: dict[str, dict[str, Any]] = {
        "marketo": marketo,
        "dedupe": {"window_ms": 200},
        "batch": {"max_wait_ms": 200},
        "deliver": {"backoff_base_ms": 20, "backoff_max_ms": 300, "access_retry_s": 0.5, "max_attempts": 10},
        "service": {"commit_interval_ms": 200, "drain_deadline_s": 20.0, "rebalance_drain_s": 5.0},
    }
    for section, values in sections.items():
        base.setdefault(section, {}).update(values)
    return service_settings(bootstrap, topics, sim.endpoint, sim.credentials, **base)
