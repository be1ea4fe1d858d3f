"""Processes for the pipeline benchmarks: the simulator and the service, each in its own process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Self

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from rich.console import Console

from bench.envelope import CREDENTIALS
from pipeline.config import Settings
from pipeline.ingest.admin import topic_partitions
from pipeline.ingest.tail import TopicTail
from pipeline.ops.produce import produce
from pipeline.ops.synthetic import SyntheticLoad
from tests.integration.kafka import Topics, free_port

EXECUTABLE = str(Path(sys.executable).with_name("marketo-pipeline"))
PY_SPY = str(Path(sys.executable).with_name("py-spy"))
PROFILE_RATE = 250  # samples a second


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def cpu_s(pid: int) -> float:
    """User + system CPU seconds the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 2)


class Simulator:
    """`marketo-pipeline simulate` in its own process."""

    def __init__(self, *flags: str, core: int | None = None) -> None:
        self.port = free_port()
        command = [
            EXECUTABLE,
            "simulate",
            "--port",
            str(self.port),
            "--user-id",
            CREDENTIALS.user_id,
            "--secret-key",
            CREDENTIALS.secret_key,
        ]
        command += ["--log-level", "warning", *flags]
        if core is not None:  # alone on one core, as the simulator's own figure is stated
            command = ["taskset", "-c", str(core), *command]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
        self.base = f"http://127.0.0.1:{self.port}"
        self.endpoint = f"{self.base}/soap/mktows/2_2"

    async def admin(self, path: str) -> Any:  # noqa: ANN401
        async with aiohttp.ClientSession() as session:
            for _ in range(300):
                try:
                    async with session.get(f"{self.base}/_sim/{path}") as response:
                        return await response.json()
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
        msg = "the simulator does not answer"
        raise RuntimeError(msg)

    def cpu_s(self) -> float:
        """CPU seconds the simulator has used."""
        return cpu_s(self._process.pid)

    def stop(self) -> None:
        self._process.send_signal(signal.SIGTERM)
        self._process.wait(timeout=30)


class ServiceProcess:
    """`marketo-pipeline run` in its own process, configured by the environment."""

    def __init__(
        self,
        bootstrap: str,
        topics: Topics,
        simulator: Simulator,
        *,
        settings: dict[str, str] | None = None,
        profile: Path | None = None,
    ) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINE_")}
        env |= {
            "PIPELINE_KAFKA__BOOTSTRAP": bootstrap,
            "PIPELINE_KAFKA__INPUT_TOPIC": topics.input,
            "PIPELINE_KAFKA__RESULTS_TOPIC": topics.results,
            "PIPELINE_KAFKA__DLQ_TOPIC": topics.dlq,
            "PIPELINE_KAFKA__GROUP_ID": topics.group,
            "PIPELINE_MARKETO__ENDPOINT": simulator.endpoint,
            "PIPELINE_MARKETO__USER_ID": CREDENTIALS.user_id,
            "PIPELINE_MARKETO__SECRET_KEY": CREDENTIALS.secret_key,
            "PIPELINE_HTTP__PORT": str(free_port()),
        }
        env |= {f"PIPELINE_{k.upper()}": v for k, v in (settings or {}).items()}
        self.started = time.monotonic()
        self.started_wall = time.time()
        command = [EXECUTABLE, "run", "--log-level", "warning"]
        self._profile = profile
        if profile is not None:  # py-spy samples the service from outside, at a small cost to it
            command = [PY_SPY, "record", "--rate", str(PROFILE_RATE), "--nolineno", "--format", "raw"]
            command += ["-o", str(profile), "--"]
            command += [EXECUTABLE, "run", "--log-level", "warning"]
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603

    @property
    def pid(self) -> int:
        """The service's process (under py-spy when profiled)."""
        if self._profile is None:
            return self.process.pid
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
            if children:
                return int(children[0])
            time.sleep(0.05)
        msg = "py-spy did not start the service"
        raise RuntimeError(msg)

    def stop(self) -> float:
        """Stop (SIGTERM, drain) and return the process's peak RSS in MB; `cpu` keeps its CPU seconds."""
        pid = self.pid
        peak = peak_rss_mb(pid)
        self.cpu = cpu_s(pid)
        os.kill(pid, signal.SIGTERM)  # py-spy writes its samples when the service has exited
        self.process.wait(timeout=120)
        return peak


async def publish_load(bootstrap: str, topic: str, count: int, load: SyntheticLoad) -> Counter[str]:
    """`count` events of `load` on `topic`, acknowledged: `marketo-pipeline produce`, quietly."""
    settings = Settings(kafka={"bootstrap": bootstrap})
    return await produce(settings, load, count, topic=topic, console=Console(quiet=True))


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
        ends = await consumer.end_offsets(partitions)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                offsets = await admin.list_consumer_group_offsets(group)
            except KafkaError:  # the group's coordinator moving or not there yet: ask again
                offsets = {}
            if all(tp in offsets and offsets[tp].offset >= end for tp, end in ends.items()):
                return
            if time.monotonic() > deadline:
                msg = f"{group} has not committed the end of {topic} in {timeout_s}s"
                raise RuntimeError(msg)
            await asyncio.sleep(0.5)
    finally:
        await consumer.stop()
        await admin.close()


async def last_written(bootstrap: str, topics: list[str]) -> float:
    """The wall-clock time (s) of the newest message in `topics`: its producer's timestamp."""
    consumer: Any = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = await topic_partitions(bootstrap, topics)
        ends = await consumer.end_offsets(partitions)
        newest = [tp for tp in partitions if ends[tp] > 0]
        consumer.assign(newest)
        for tp in newest:
            consumer.seek(tp, ends[tp] - 1)
        latest = 0
        for tp in newest:
            deadline = time.monotonic() + 60
            records: list[Any] = []
            while not records:
                if time.monotonic() > deadline:
                    msg = f"cannot read the last message of {tp.topic}[{tp.partition}]"
                    raise RuntimeError(msg)
                records = (await consumer.getmany(tp, timeout_ms=1_000, max_records=1)).get(tp, [])
            latest = max(latest, records[0].timestamp)
        return latest / 1000
    finally:
        await consumer.stop()


class Answers:
    """Watches the results and dead-letter topics: which events are answered, and when."""

    def __init__(
        self, bootstrap: str, topics: Topics, *, event_prefix: bytes, sent_at: dict[str, float] | None = None
    ) -> None:
        self._tail = TopicTail(bootstrap, [topics.results, topics.dlq])
        self._results = topics.results
        self._sent_at = sent_at
        # Counting `"<prefix>` in a result counts its event ids without decoding it: the watcher shares the
        # machine with what it measures, so it stays cheap.
        self._marker = b'"' + event_prefix
        self.answered = 0
        self.invalid = 0
        self.latencies: list[float] = []  # event published (wall clock) -> result completed, when sent_at is given

    async def __aenter__(self) -> Self:
        await self._tail.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._tail.__aexit__(None, None, None)

    async def wait(self, count: int, timeout_s: float) -> float:
        """Until `count` events are answered; returns the monotonic time of the last answer."""
        deadline = time.monotonic() + timeout_s
        last = time.monotonic()
        while self.answered + self.invalid < count:
            if time.monotonic() > deadline:
                msg = f"only {self.answered + self.invalid} of {count} events answered in {timeout_s}s"
                raise RuntimeError(msg)
            for message in await self._tail.read(200):
                last = time.monotonic()
                if message.source.topic == self._results:
                    self.answered += (message.value or b"").count(self._marker)
                    if self._sent_at is not None:
                        result = orjson.loads(message.value or b"{}")
                        completed = _epoch(result["completed_at"])
                        self.latencies.extend(
                            completed - self._sent_at[e] for e in result["event_ids"] if e in self._sent_at
                        )
                elif dict(message.headers).get("dlq.reason", b"").startswith(b"invalid"):
                    self.invalid += 1
        return last


def _epoch(text: str) -> float:
    from datetime import datetime  # noqa: PLC0415

    return datetime.fromisoformat(text).timestamp()
