"""The service as tests and benchmarks run it: in this event loop, or as its own process, from Settings."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from pydantic import SecretStr

from devkit.kafka import Topics
from devkit.process import cpu_s, peak_rss_mb
from pipeline.app import Service
from pipeline.config import Settings
from pipeline.marketo.soap.signing import Credentials

EXECUTABLE = str(Path(sys.executable).with_name("marketo-pipeline"))
PY_SPY = str(Path(sys.executable).with_name("py-spy"))
PROFILE_RATE = 250  # samples a second


def service_settings(
    bootstrap: str, topics: Topics, endpoint: str, credentials: Credentials, **sections: dict[str, Any]
) -> Settings:
    """Settings for one run: its own topics and group, the simulator at `endpoint`, `sections` on top."""
    base: dict[str, dict[str, Any]] = {
        "kafka": {
            "bootstrap": bootstrap,
            "input_topic": topics.input,
            "results_topic": topics.results,
            "dlq_topic": topics.dlq,
            "group_id": topics.group,
            "budget_topic": topics.budget,
        },
        "marketo": {"endpoint": endpoint, "user_id": credentials.user_id, "secret_key": credentials.secret_key},
        "http": {"port": 0},
    }
    for section, values in sections.items():
        base.setdefault(section, {}).update(values)
    return Settings(**base)  # type: ignore[arg-type]


def service_env(settings: Settings) -> dict[str, str]:
    """`settings` as the PIPELINE_<SECTION>__<KEY> variables a deployment would set."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("PIPELINE_")}
    for section, values in settings.model_dump(mode="python").items():
        for key, value in values.items():
            text = value.get_secret_value() if isinstance(value, SecretStr) else value
            name = f"PIPELINE_{section.upper()}__{key.upper()}"
            if isinstance(text, dict | list):
                env[name] = json.dumps(text)
            else:
                env[name] = str(text).lower() if isinstance(text, bool) else str(text)
    return env


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
        if started not in done:
            msg = "the service did not start"
            raise AssertionError(msg)
        return self

    @property
    def ops_url(self) -> str:
        """Where its /metrics, /healthz and /readyz are."""
        return f"http://127.0.0.1:{self.service.ops_port}"

    async def shutdown(self) -> None:
        """Stop it as SIGTERM would, and wait for the drain."""
        self.stop.set()
        if self._task is not None:
            await asyncio.wait_for(self._task, timeout=60)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await self.shutdown()


class ServiceProcess:
    """`marketo-pipeline run` as an operator starts it: its own process, configured by the environment.

    Its output goes to `<workdir>/<name>.log` (nowhere without a workdir). With `profile`, py-spy samples it from
    outside and writes its raw samples there when it ends.
    """

    def __init__(
        self,
        settings: Settings,
        workdir: Path | None = None,
        name: str = "service",
        *,
        profile: Path | None = None,
        log_level: str = "info",
    ) -> None:
        self._env = service_env(settings)
        self._workdir = workdir
        self.log = workdir / f"{name}.log" if workdir is not None else Path(os.devnull)
        self._profile = profile
        self._log_level = log_level
        self._process: subprocess.Popen[bytes] | None = None
        self.started = 0.0
        self.started_wall = 0.0
        self.cpu = 0.0

    def start(self) -> Self:
        """Start the process; returns itself."""
        command = [EXECUTABLE, "run", "--log-level", self._log_level]
        if self._profile is not None:  # py-spy samples the service from outside, at a small cost to it
            spy = [PY_SPY, "record", "--rate", str(PROFILE_RATE), "--nolineno", "--format", "raw"]
            command = [*spy, "-o", str(self._profile), "--", *command]
        self.started, self.started_wall = time.monotonic(), time.time()
        with self.log.open("ab") as output:
            self._process = subprocess.Popen(
                command, env=self._env, cwd=self._workdir, stdout=output, stderr=subprocess.STDOUT
            )
        return self

    @property
    def pid(self) -> int:
        """The service's own process (py-spy's child when profiled)."""
        if self._process is None:
            msg = "not started"
            raise RuntimeError(msg)
        if self._profile is None:
            return self._process.pid
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            children = Path(f"/proc/{self._process.pid}/task/{self._process.pid}/children").read_text().split()
            if children:
                return int(children[0])
            time.sleep(0.05)
        msg = "py-spy did not start the service"
        raise RuntimeError(msg)

    def signal(self, number: signal.Signals) -> None:
        """Send `number` to the service, unless it has ended already."""
        if not self.exited():
            os.kill(self.pid, number)

    async def wait(self, timeout_s: float = 60.0) -> int:
        """The exit code; waits in a thread, so what runs in this event loop keeps going meanwhile."""
        if self._process is None:
            msg = "not started"
            raise RuntimeError(msg)
        return await asyncio.to_thread(self._process.wait, timeout_s)

    def exited(self) -> bool:
        """True once the process has ended, whatever the cause."""
        return self._process is not None and self._process.poll() is not None

    def finish(self, timeout_s: float = 120.0) -> float:
        """SIGTERM (a drain) and wait; returns the peak RSS in MB, and keeps the CPU seconds in `cpu`."""
        pid = self.pid
        peak = peak_rss_mb(pid)
        self.cpu = cpu_s(pid)
        os.kill(pid, signal.SIGTERM)  # py-spy writes its samples when the service has exited
        if self._process is not None:
            self._process.wait(timeout=timeout_s)
        return peak

    def stop(self) -> None:
        """Kill it if it still runs (a test's clean-up)."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=30)
