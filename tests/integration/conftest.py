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
