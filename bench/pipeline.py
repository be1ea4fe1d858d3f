"""The pipeline's figures (DESIGN 7): throughput against a bare passthrough, call efficiency, saturation of
Marketo's limits, latency, and memory under a backlog. Each measured on the real broker and the simulator."""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.stack import Answers, ServiceProcess, Simulator, publish_load
from pipeline.ops.synthetic import SyntheticLoad
from tests.integration.kafka import Topics, create_topics

PARTITIONS = 6
UNLIMITED = {"deliver__calls_per_20s": "1000000", "deliver__daily_quota": "100000000"}


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
                await consumer.commit()
            done += len(futures)
        return time.monotonic() - started
    finally:
        await producer.stop()
        await consumer.stop()


async def throughput(bootstrap: str, events: int = 200_000, profile: Path | None = None) -> dict[str, dict[str, Any]]:
    """The service against a zero-latency, unlimited simulator, and a passthrough of the same events, in one run."""
    topics = Topics.unique()
    await create_topics(bootstrap, topics, partitions=PARTITIONS)
    load = SyntheticLoad(seed=11, duplicates=0.2, invalid=0.01, mobjects=0.0, cookies=0.0, prefix="tp")
    kinds = await publish_load(bootstrap, topics.input, events, load)
    copy = Topics.unique()
    await create_topics(bootstrap, copy, partitions=PARTITIONS)
    passthrough_s = await passthrough(bootstrap, topics.input, copy.input, events)
    simulator = Simulator()
    await simulator.admin("stats")
    try:
        async with Answers(bootstrap, topics, event_prefix=b"tp-") as answers:
            # The simulator enforces no limits here, so neither does the service: this measures the pipeline.
            service = ServiceProcess(bootstrap, topics, simulator, profile=profile, **UNLIMITED)
            last = await answers.wait(events, timeout_s=900)
            pipeline_s = last - service.started
            peak = service.stop()
        stats = await simulator.admin("stats")
        simulator_cpu = simulator.cpu_s()
    finally:
        simulator.stop()
    calls = stats["calls"]["syncMultipleLeads"]
    valid = events - kinds["invalid"]
    return {
        "throughput": {
            "events": events,
            "pipeline_events_per_s": round(events / pipeline_s),
            "passthrough_events_per_s": round(events / passthrough_s),
            "ratio": round(passthrough_s / pipeline_s, 3),
            "pipeline_s": round(pipeline_s, 2),
            "passthrough_s": round(passthrough_s, 2),
            "pipeline_peak_rss_mb": peak,
            "pipeline_cpu_s": service.cpu,
            "simulator_cpu_s": simulator_cpu,
        },
        "efficiency": {
            "distinct_leads": stats["leads"],
            "calls": sum(stats["calls"].values()),
            "leads_per_call_avg": round(stats["records"]["syncMultipleLeads"] / calls, 1) if calls else 0,
            "naive_calls": valid,
            "calls_bound": stats["leads"] // 300 + PARTITIONS,
        },
    }


def _summary(values: list[float], quantile: float) -> float:
    return round(statistics.quantiles(values, n=1000)[int(quantile * 1000) - 1], 3) if len(values) > 1 else 0.0
