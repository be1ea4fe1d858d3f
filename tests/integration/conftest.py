"""Integration fixtures: the simulator served over real HTTP on a free loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from pipeline.marketo.envelope import SoapRequest, build_envelope
from pipeline.marketo.namespace import CONTENT_TYPE, soap_action
from pipeline.marketo.signing import Credentials
from pipeline.sim.server import Simulator, SimulatorServer
from pipeline.sim.settings import SimSettings

CREDENTIALS = Credentials("it_user", "it-secret")


class SimClient:
    """Talks to a running simulator the way the pipeline will: signed envelopes and admin JSON."""

    def __init__(self, server: SimulatorServer, session: aiohttp.ClientSession) -> None:
        self.server = server
        self.session = session

    async def call(
        self, request: SoapRequest, credentials: Credentials = CREDENTIALS, timeout_s: float = 30.0
    ) -> tuple[int, bytes]:
        headers = {"Content-Type": CONTENT_TYPE, "SOAPAction": soap_action(request.operation.value)}
        async with self.session.post(
            self.server.endpoint,
            data=build_envelope(request, credentials),
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout_s),
        ) as response:
            return response.status, await response.read()

    async def post_raw(self, body: bytes) -> tuple[int, bytes]:
        async with self.session.post(
            self.server.endpoint, data=body, headers={"Content-Type": CONTENT_TYPE}
        ) as response:
            return response.status, await response.read()

    async def admin(self, path: str, payload: dict[str, Any] | None = None) -> Any:
        url = f"{self.server.base_url}/_sim/{path}"
        if payload is None and path != "reset":
            async with self.session.get(url) as response:
                return await response.json()
        async with self.session.post(url, json=payload or {}) as response:
            return await response.json()

    async def configure(self, **patch: Any) -> dict[str, Any]:
        result: dict[str, Any] = await self.admin("config", patch)
        assert "error" not in result, result
        return result


@pytest.fixture
async def sim() -> AsyncIterator[SimClient]:
    settings = SimSettings(user_id=CREDENTIALS.user_id, secret_key=CREDENTIALS.secret_key)
    async with (
        SimulatorServer(Simulator(settings, seed=7)) as server,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session,
    ):
        yield SimClient(server, session)


# --- the pipeline on the real broker ---------------------------------------------------------------

import asyncio  # noqa: E402
import contextlib  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from types import TracebackType  # noqa: E402
from typing import Self  # noqa: E402

from pipeline.app import Service  # noqa: E402
from pipeline.config import Settings  # noqa: E402
from tests.integration.kafka import Topics, create_topics, local_broker  # noqa: E402


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    with local_broker() as bootstrap:
        yield bootstrap


@pytest.fixture
async def topics(kafka_bootstrap: str) -> Topics:
    names = Topics.unique()
    await create_topics(kafka_bootstrap, names, partitions=3)
    return names


def pipeline_settings(bootstrap: str, topics: Topics, sim: SimClient, **sections: dict[str, Any]) -> Settings:
    """Settings for a test: its own topics and group, the simulator, short windows and backoffs."""
    base: dict[str, dict[str, Any]] = {
        "kafka": {
            "bootstrap": bootstrap,
            "input_topic": topics.input,
            "results_topic": topics.results,
            "dlq_topic": topics.dlq,
            "group_id": topics.group,
        },
        "marketo": {
            "endpoint": sim.server.endpoint,
            "user_id": CREDENTIALS.user_id,
            "secret_key": CREDENTIALS.secret_key,
            "timeout_s": 5.0,
        },
        "dedupe": {"window_ms": 200},
        "batch": {"max_wait_ms": 200},
        "deliver": {"backoff_base_ms": 20, "backoff_max_ms": 300, "access_retry_s": 0.5, "max_attempts": 10},
        "http": {"port": 0},
        "service": {"commit_interval_ms": 200, "drain_deadline_s": 20.0, "rebalance_drain_s": 5.0},
    }
    for section, values in sections.items():
        base.setdefault(section, {}).update(values)
    return Settings(**base)  # type: ignore[arg-type]


class RunningService:
    """A Service running in this event loop until the context ends (then it drains and stops)."""

    def __init__(self, settings: Settings) -> None:
        self.service = Service(settings, ops_host="127.0.0.1")
        self.stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self.service.run(self.stop))
        started = asyncio.create_task(self.service.started.wait())
        done, _ = await asyncio.wait({self._task, started}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
        if self._task in done:
            started.cancel()
            await self._task  # raises what stopped it
        assert started in done, "the service did not start"
        return self

    @property
    def ops_url(self) -> str:
        return f"http://127.0.0.1:{self.service.ops_port}"

    async def shutdown(self) -> None:
        self.stop.set()
        if self._task is not None:
            await asyncio.wait_for(self._task, timeout=60)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await self.shutdown()


import os  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from pydantic import SecretStr  # noqa: E402


def service_env(settings: Settings) -> dict[str, str]:
    """`settings` as the PIPELINE_<SECTION>__<KEY> variables a deployment would set."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("PIPELINE_")}
    for section, values in settings.model_dump(mode="python").items():
        for key, value in values.items():
            text = value.get_secret_value() if isinstance(value, SecretStr) else value
            env[f"PIPELINE_{section.upper()}__{key.upper()}"] = (
                str(text).lower() if isinstance(text, bool) else str(text)
            )
    return env


class ServiceProcess:
    """`marketo-pipeline run` as an operator starts it: its own process, configured by the environment."""

    def __init__(self, settings: Settings, workdir: Path, name: str) -> None:
        self._env = service_env(settings)
        self._workdir = workdir
        self.log = workdir / f"{name}.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        executable = Path(sys.executable).with_name("marketo-pipeline")
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(  # noqa: S603
                [str(executable), "run"], env=self._env, cwd=self._workdir, stdout=log, stderr=subprocess.STDOUT
            )

    def signal(self, number: signal.Signals) -> None:
        assert self._process is not None
        self._process.send_signal(number)

    async def wait(self, timeout_s: float = 60.0) -> int:
        """The exit code; waits in a thread, so the simulator (in this event loop) keeps answering meanwhile."""
        assert self._process is not None
        return await asyncio.to_thread(self._process.wait, timeout_s)

    def exited(self) -> bool:
        """True once the process has ended, whatever the cause."""
        return self._process is not None and self._process.poll() is not None

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=30)
