"""The Marketo simulator as tests and benchmarks use it: a client for its SOAP and admin faces, and a process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp

from devkit.kafka import free_port
from devkit.process import cpu_s
from pipeline.marketo.soap.envelope import SoapRequest, build_envelope
from pipeline.marketo.soap.namespace import CONTENT_TYPE, soap_action
from pipeline.marketo.soap.schema import WSDL_VERSION
from pipeline.marketo.soap.signing import Credentials
from pipeline.sim.catalog import FSP_FIELD
from pipeline.sim.settings import SimSettings

EXECUTABLE = str(Path(sys.executable).with_name("marketo-pipeline"))


def rest_marketo_settings(base_url: str) -> dict[str, Any]:
    """The `marketo` settings that point the service's REST transport at the simulator at `base_url`."""
    defaults = SimSettings()
    return {
        "api": "rest",
        "rest_endpoint": base_url,
        "client_id": defaults.client_id,
        "client_secret": defaults.client_secret,
        "fsp_field": FSP_FIELD,
    }


class SimClient:
    """Talks to a running simulator the way the pipeline does: signed envelopes, and admin JSON."""

    def __init__(self, base_url: str, session: aiohttp.ClientSession, credentials: Credentials) -> None:
        self.base_url = base_url
        self.endpoint = f"{base_url}/soap/mktows/{WSDL_VERSION}"
        self.session = session
        self.credentials = credentials

    async def call(
        self, request: SoapRequest, credentials: Credentials | None = None, timeout_s: float = 30.0
    ) -> tuple[int, bytes]:
        """One signed call; its HTTP status and body."""
        headers = {"Content-Type": CONTENT_TYPE, "SOAPAction": soap_action(request.operation.value)}
        async with self.session.post(
            self.endpoint,
            data=build_envelope(request, credentials or self.credentials),
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout_s),
        ) as response:
            return response.status, await response.read()

    async def post_raw(self, body: bytes) -> tuple[int, bytes]:
        """`body` posted to the SOAP endpoint as it is."""
        async with self.session.post(self.endpoint, data=body, headers={"Content-Type": CONTENT_TYPE}) as response:
            return response.status, await response.read()

    async def admin(self, path: str, payload: dict[str, Any] | None = None) -> Any:  # noqa: ANN401 - JSON
        """GET `/_sim/<path>`, or POST `payload` to it (and always POST for `reset`)."""
        url = f"{self.base_url}/_sim/{path}"
        if payload is None and path != "reset":
            async with self.session.get(url) as response:
                return await response.json()
        async with self.session.post(url, json=payload or {}) as response:
            return await response.json()

    async def configure(self, **patch: Any) -> dict[str, Any]:  # noqa: ANN401 - JSON
        """POST `patch` to /_sim/config; raises AssertionError when the simulator refuses it."""
        result: dict[str, Any] = await self.admin("config", patch)
        if "error" in result:
            raise AssertionError(result)
        return result

    async def wait_up(self, timeout_s: float = 30.0) -> None:
        """Until the simulator answers its admin face."""
        for _ in range(int(timeout_s * 10)):
            try:
                await self.admin("stats")
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
            else:
                return
        msg = f"the simulator at {self.base_url} does not answer"
        raise RuntimeError(msg)


class SimulatorProcess:
    """`marketo-pipeline simulate` in its own process, as a user starts it, optionally alone on one core."""

    def __init__(self, credentials: Credentials, *flags: str, core: int | None = None) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.endpoint = f"{self.base_url}/soap/mktows/{WSDL_VERSION}"
        self.credentials = credentials
        command = [EXECUTABLE, "simulate", "--port", str(self.port), "--log-level", "warning"]
        command += ["--user-id", credentials.user_id, "--secret-key", credentials.secret_key, *flags]
        if core is not None:
            command = ["taskset", "-c", str(core), *command]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    async def admin(self, path: str) -> Any:  # noqa: ANN401 - JSON
        """GET `/_sim/<path>`, once the simulator answers."""
        async with aiohttp.ClientSession() as session:
            client = SimClient(self.base_url, session, self.credentials)
            await client.wait_up()
            return await client.admin(path)

    def cpu_s(self) -> float:
        """CPU seconds the simulator has used."""
        return cpu_s(self._process.pid)

    def stop(self) -> None:
        """SIGTERM, and wait for it to end."""
        if self._process.poll() is None:
            os.kill(self._process.pid, signal.SIGTERM)
        self._process.wait(timeout=30)


def full_windows(starts: list[float], window_s: float = 20.0) -> list[int]:
    """Calls started in each complete 20 s window from the first call (the last, partial window left out)."""
    if not starts:
        return []
    first, last = min(starts), max(starts)
    windows = int((last - first) // window_s)
    return [sum(1 for t in starts if first + n * window_s <= t < first + (n + 1) * window_s) for n in range(windows)]
