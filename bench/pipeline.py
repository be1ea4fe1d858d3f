"""The pipeline's figures (DESIGN 7): throughput against a bare passthrough, call efficiency, saturation of
Marketo's limits, latency, and memory under a backlog. Each measured on the real broker and the simulator."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from rich.console import Console

from bench.envelope import CREDENTIALS
from devkit.kafka import Topics, create_topics, free_port, last_written, retry_kafka, wait_all_committed
from devkit.results import read_results
from devkit.service import ServiceProcess, service_settings
from devkit.simulator import SimulatorProcess, full_windows, rest_marketo_settings
from pipeline.config import Settings
from pipeline.ops.produce import produce
from pipeline.ops.synthetic import SyntheticLoad
from pipeline.ops.watch import ResultsWatcher
from pipeline.outcome.producer import KafkaSink

PARTITIONS = 6
UNLIMITED: dict[str, Any] = {"calls_per_20s": 1_000_000, "daily_quota": 100_000_000}


async def publish_load(bootstrap: str, topic: str, count: int, load: SyntheticLoad) -> Counter[str]:
    """`count` events of `load` on `topic`, acknowledged: `marketo-pipeline produce`, quietly."""
    settings = Settings(kafka={"bootstrap": bootstrap})
    return await produce(settings, load, count, topic=topic, console=Console(quiet=True))


def start_service(
    bootstrap: str,
    topics: Topics,
    simulator: SimulatorProcess,
    *,
    api: str = "soap",
    profile: Path | None = None,
    **sections: dict[str, Any],
) -> ServiceProcess:
    """`marketo-pipeline run` in its own process, on `topics` against `simulator` over `api`, quiet but for
    warnings, its /healthz on `sections["http"]["port"]` when given."""
    if api == "rest":
        sections["marketo"] = {**rest_marketo_settings(simulator.base_url), **sections.get("marketo", {})}
    settings = service_settings(bootstrap, topics, simulator.endpoint, CREDENTIALS, **sections)
    return ServiceProcess(settings, profile=profile, log_level="warning").start()


async def listening(port: int, service: ServiceProcess, timeout_s: float = 60.0) -> float:
    """When (wall clock) the service's /healthz first answers: its interpreter started and its modules loaded.

    It answers before the service reaches Kafka: from then on the service does what the passthrough does, whose
    clock starts in a process that has loaded its modules already.
    """
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline and not service.exited():
            try:
                async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                    await response.read()
                    return time.time()
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.01)
    msg = "the service's /healthz never answered"
    raise RuntimeError(msg)


async def passthrough(bootstrap: str, source: str, target: str, count: int) -> float:
    """A bare aiokafka consume -> produce of `count` messages (acks=all, idempotent, manual commits): seconds."""
    started = time.monotonic()
    consumer: Any = AIOKafkaConsumer(
        source, bootstrap_servers=bootstrap, group_id=f"passthrough-{source}", enable_auto_commit=False,
        auto_offset_reset="earliest", max_poll_records=2000,
    )  # fmt: skip
    producer: Any = AIOKafkaProducer(
        bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", linger_ms=5, max_batch_size=512 * 1024
    )
    await consumer.start()
    await producer.start()
    try:
        done = 0
        while done < count:
            batches = await consumer.getmany(timeout_ms=500)
            futures = [
                await producer.send(target, value=r.value, key=r.key) for records in batches.values() for r in records
            ]
            await asyncio.gather(*futures)
            if futures:
                await retry_kafka(consumer.commit)  # the group's coordinator may move under a loaded broker
            done += len(futures)
        return time.monotonic() - started
    finally:
        await producer.stop()
        await consumer.stop()


# Over REST the throughput run's tokens live 5 s: each is renewed while the run goes on, and no record may fail.
REST_TOKEN_TTL_S = 5
BULK_CALL = {"soap": "syncMultipleLeads", "rest": "syncLeads"}


# Each measured three times, in turn (passthrough, pipeline, passthrough, ...), and the best time of each kept:
# on a shared 2-core machine one run of either moves by a tenth with what else runs, and the goal is a ratio.
THROUGHPUT_ROUNDS = 3


async def throughput(
    bootstrap: str, events: int = 200_000, profile: Path | None = None, api: str = "soap"
) -> dict[str, dict[str, Any]]:
    """The service against a zero-latency, unlimited simulator, and a passthrough of the same events, in one run.

    Both are timed `THROUGHPUT_ROUNDS` times, alternating; the ratio is the best passthrough time over the best
    pipeline time. The passthrough is timed from the start of its clients, in a process with its modules loaded; the
    service from its /healthz first answering (its modules loaded, Kafka not reached yet) to its last result.
    `ratio_from_spawn` counts the service's interpreter start and imports too. The pipeline's figures are those of
    its best round; efficiency is the median round's (partial calls come with the timing of pauses and tails).
    """
    rounds = [
        await _throughput_round(bootstrap, events, profile, api) for _ in range(1 if profile else THROUGHPUT_ROUNDS)
    ]
    passthrough_s = min(r["passthrough_s"] for r in rounds)
    best = min(rounds, key=lambda r: r["pipeline_s"])
    pipeline_s = best["pipeline_s"]
    return {
        "throughput": {
            "events": events,
            "pipeline_events_per_s": round(events / pipeline_s),
            "passthrough_events_per_s": round(events / passthrough_s),
            "ratio": round(passthrough_s / pipeline_s, 3),
            "pipeline_s": round(pipeline_s, 2),
            "passthrough_s": round(passthrough_s, 2),
            "ratio_from_spawn": round(passthrough_s / best["figures"]["pipeline_from_spawn_s"], 3),
            "rounds": len(rounds),
            "pipeline_s_each": [round(r["pipeline_s"], 2) for r in rounds],
            "passthrough_s_each": [round(r["passthrough_s"], 2) for r in rounds],
            **best["figures"],
            "failed_records": max(r["figures"]["failed_records"] for r in rounds),
        },
        "efficiency": sorted((r["efficiency"] for r in rounds), key=_per_call)[len(rounds) // 2],
    }


def _per_call(efficiency: dict[str, Any]) -> float:
    return float(efficiency["leads_per_call_avg"])


async def _throughput_round(bootstrap: str, events: int, profile: Path | None, api: str) -> dict[str, Any]:
    topics = Topics.unique()
    await create_topics(bootstrap, topics, partitions=PARTITIONS)
    load = SyntheticLoad(seed=11, duplicates=0.2, invalid=0.01, mobjects=0.0, cookies=0.0, prefix="tp")
    kinds = await publish_load(bootstrap, topics.input, events, load)
    copy = Topics.unique()
    await create_topics(bootstrap, copy, partitions=PARTITIONS)
    passthrough_s = await passthrough(bootstrap, topics.input, copy.input, events)
    simulator = SimulatorProcess(CREDENTIALS, *(("--token-ttl-s", str(REST_TOKEN_TTL_S)) if api == "rest" else ()))
    await simulator.admin("stats")
    try:
        # The simulator enforces no limits here, so neither does the service: this measures the pipeline.
        port = free_port()
        service = start_service(
            bootstrap, topics, simulator, api=api, profile=profile, deliver=UNLIMITED, http={"port": port}
        )
        ready = await listening(port, service)
        await wait_all_committed(bootstrap, topics.group, topics.input, timeout_s=900)
        last = await last_written(bootstrap, [topics.results, topics.dlq])
        pipeline_s, spawned_s = last - ready, last - service.started_wall
        peak = service.finish()
        stats = await simulator.admin("stats")
        simulator_cpu = simulator.cpu_s()
    finally:
        simulator.stop()
    bulk = BULK_CALL[api]
    calls = stats["calls"][bulk]
    tally = await read_results(bootstrap, topics)  # after the clock stopped
    return {
        "passthrough_s": passthrough_s,
        "pipeline_s": pipeline_s,
        "figures": {
            "pipeline_from_spawn_s": round(spawned_s, 2),  # the interpreter's start and the imports included
            "pipeline_peak_rss_mb": peak,
            "pipeline_cpu_s": service.cpu,
            "simulator_cpu_s": simulator_cpu,
            "failed_records": tally.statuses["FAILED"],
            "tokens_issued": stats["tokens_issued"],
        },
        "efficiency": {
            "distinct_leads": stats["leads"],
            "calls": sum(stats["calls"].values()),
            "leads_per_call_avg": round(stats["records"][bulk] / calls, 1) if calls else 0,
            "naive_calls": events - kinds["invalid"],
            "calls_bound": stats["leads"] // 300 + PARTITIONS,
        },
    }


LIMIT_CODES = {"soap": ("20023", "20024"), "rest": ("606", "615")}


async def saturation(bootstrap: str, events: int = 100_000, api: str = "soap") -> dict[str, Any]:
    """A backlog against Marketo's limits (100 calls / 20 s, 10 concurrent, 300 ms a call): how close to the limit."""
    topics = Topics.unique()
    await create_topics(bootstrap, topics, partitions=PARTITIONS)
    load = SyntheticLoad(seed=12, duplicates=0.2, invalid=0.0, mobjects=0.0, cookies=0.0, prefix="sat")
    await publish_load(bootstrap, topics.input, events, load)
    simulator = SimulatorProcess(
        CREDENTIALS, "--calls-per-20s", "100", "--max-concurrency", "10", "--latency-ms", "300"
    )
    await simulator.admin("stats")
    try:
        async with ResultsWatcher(bootstrap, topics.results, topics.dlq) as watcher:
            service = start_service(bootstrap, topics, simulator, api=api)
            await watcher.wait(events, timeout_s=900)
            service.finish()
        stats = await simulator.admin("stats")
        calls = (await simulator.admin("calls"))["calls"]
    finally:
        simulator.stop()
    windows = full_windows([c["started"] for c in calls if c["outcome"] == "200"])
    achieved = statistics.mean(windows) if windows else 0.0
    return {
        "allowed_calls_per_20s": 100,
        "achieved_calls_per_20s": round(achieved, 2),
        "ratio": round(achieved / 100, 3),
        "limit_faults": sum(stats["rejected"][code] for code in LIMIT_CODES[api]),
        "rejected": {code: stats["rejected"][code] for code in LIMIT_CODES[api]},
        "full_windows": windows,
        "peak_concurrency": stats["peak_concurrency"],
        "calls": sum(stats["calls"].values()),
    }


async def latency(bootstrap: str, rate: int = 1000, seconds: int = 60, call_latency_ms: int = 100) -> dict[str, Any]:
    """`rate` events/s offered for `seconds`: event (published) to result (completed) latency, against its bound."""
    topics = Topics.unique()
    await create_topics(bootstrap, topics, partitions=PARTITIONS)
    simulator = SimulatorProcess(CREDENTIALS, "--latency-ms", str(call_latency_ms))
    await simulator.admin("stats")
    sent_at: dict[str, float] = {}
    load = SyntheticLoad(seed=13, duplicates=0.2, invalid=0.0, mobjects=0.0, cookies=0.0, prefix="lat")
    stream = load.events(rate * seconds)
    try:
        async with ResultsWatcher(bootstrap, topics.results, topics.dlq, sent_at=sent_at) as watcher:
            service = start_service(bootstrap, topics, simulator)
            await asyncio.sleep(5)  # joined and assigned: the latency is the pipeline's, not its start-up
            async with KafkaSink(bootstrap=bootstrap, client_id="bench-latency") as sink:
                started = time.monotonic()
                for tick in range(seconds * 100):  # 10 ms ticks
                    chunk = [next(stream) for _ in range(rate // 100)]
                    now = time.time()
                    for event in chunk:
                        sent_at[event.value.split(b'"event_id":"', 1)[1].split(b'"', 1)[0].decode()] = now
                    await sink.send_many(topics.input, [(e.key, e.value, None) for e in chunk])
                    await asyncio.sleep(max(started + (tick + 1) / 100 - time.monotonic(), 0))
            await watcher.wait(rate * seconds, timeout_s=300)
            service.finish()
    finally:
        simulator.stop()
    values = sorted(watcher.tally.latencies)
    defaults = Settings()
    bound = defaults.dedupe.window_ms / 1000 + defaults.batch.max_wait_ms / 1000 + 2 * call_latency_ms / 1000
    return {
        "offered_events_per_s": rate,
        "seconds": seconds,
        "p50_s": round(_quantile(values, 0.50), 3),
        "p99_s": round(_quantile(values, 0.99), 3),
        "max_s": round(values[-1], 3) if values else 0.0,
        "bound_s": round(bound, 3),
        "call_latency_ms": call_latency_ms,
        "samples": len(values),
        "histogram": _histogram(values),
    }


def _quantile(values: list[float], q: float) -> float:
    return values[min(int(q * len(values)), len(values) - 1)] if values else 0.0


def _histogram(values: list[float], width_s: float = 0.1) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        bucket = f"{int(value / width_s) * width_s:.1f}"
        counts[bucket] = counts.get(bucket, 0) + 1
    return counts


async def memory(bootstrap: str, events: int = 1_000_000, padding: int = 0) -> dict[str, Any]:
    """Peak RSS of the service working through a backlog of `events` (limits lifted, as for throughput); with
    `padding`, each lead event carries a text attribute that long (large events).

    Nothing reads the results meanwhile: the end is the group's committed offsets, as for throughput.
    """
    topics = Topics.unique()
    await create_topics(bootstrap, topics, partitions=PARTITIONS)
    load = SyntheticLoad(
        seed=14, duplicates=0.2, invalid=0.01, mobjects=0.0, cookies=0.0, prefix="mem", padding=padding
    )
    await publish_load(bootstrap, topics.input, events, load)
    simulator = SimulatorProcess(CREDENTIALS)
    await simulator.admin("stats")
    try:
        service = start_service(bootstrap, topics, simulator, deliver=UNLIMITED)
        await wait_all_committed(bootstrap, topics.group, topics.input, timeout_s=1800)
        seconds = await last_written(bootstrap, [topics.results, topics.dlq]) - service.started_wall
        peak = service.finish()
    finally:
        simulator.stop()
    return {
        "backlog_events": events,
        "event_bytes": len(
            next(SyntheticLoad(seed=1, duplicates=0, invalid=0, mobjects=0, padding=padding).events(1)).value
        ),
        "peak_rss_mb": peak,
        "seconds": round(seconds, 1),
        "events_per_s": round(events / seconds),
    }
