"""One Marketo budget for the whole group: the limits split by membership, the day's count kept in Kafka."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from devkit.kafka import Topics, publish, read_all, wait_for
from devkit.results import read_results
from devkit.service import RunningService
from devkit.simulator import SimClient
from pipeline.deliver.budget import BUDGET_TOPIC_CONFIG
from pipeline.ingest.admin import topic_partitions
from tests.integration.conftest import pipeline_settings
from tests.integration.helpers import events

pytestmark = pytest.mark.integration


def _leads(count: int, prefix: str) -> list[dict[str, Any]]:
    return [
        {
            "_key": f"email:{prefix}{n}@example.com",
            "event_id": f"{prefix}-{n}",
            "lead": {"Email": f"{prefix}{n}@example.com"},
        }
        for n in range(count)
    ]


async def _admitted(sim: SimClient) -> int:
    return sum(1 for call in (await sim.admin("calls"))["calls"] if call["outcome"] == "200")


async def test_two_instances_split_marketo_limits_and_a_restart_keeps_the_days_count(
    kafka_bootstrap: str, topics: Topics, sim: SimClient
) -> None:
    await sim.configure(calls_per_20s=100, max_concurrency=10, latency_ms=50)
    settings = pipeline_settings(kafka_bootstrap, topics, sim, batch={"max_leads": 20})
    first = _leads(600, "a")
    async with RunningService(settings) as one, RunningService(settings) as two:
        governors = (one.service.governor, two.service.governor)

        async def split() -> bool:
            wanted = [g.pending_raise or (g.calls_per_window, g.max_in_flight) for g in governors]
            return sorted(wanted) == [(50, 5), (50, 5)]

        await wait_for(split, timeout_s=60, what="the limits split between the two members")
        await publish(kafka_bootstrap, topics.input, events(first))

        async def answered() -> bool:
            return len((await read_results(kafka_bootstrap, topics)).answered) >= len(first)

        await wait_for(answered, timeout_s=120, what="every event answered")
    stats = await sim.admin("stats")
    assert {code: stats["rejected"][code] for code in ("20023", "20024")} == {"20023": 0, "20024": 0}
    made = await _admitted(sim)
    assert made >= len(first) // 20
    # the day's count is in the budget topic, one entry per process, and a new process reads it at start
    ledger = await read_all(kafka_bootstrap, topics.budget)
    latest = {entry["instance"]: entry for entry in ledger.values}
    assert len(latest) == 2
    assert all(entry["stopped"] for entry in latest.values())
    assert sum(entry["calls"] for entry in latest.values()) == made
    async with RunningService(settings) as restarted:
        governor = restarted.service.governor
        assert governor.quota_remaining == settings.deliver.daily_quota - made
        await publish(kafka_bootstrap, topics.input, events(_leads(40, "b")))

        async def more() -> bool:
            return await _admitted(sim) > made

        await wait_for(more, timeout_s=60, what="a call by the restarted instance")
        assert governor.quota_remaining == settings.deliver.daily_quota - await _admitted(sim)


async def test_the_service_makes_a_missing_budget_topic_compacted_with_one_partition(
    kafka_bootstrap: str, topics: Topics, sim: SimClient
) -> None:
    fresh = dataclasses.replace(topics, budget=f"budget-fresh-{uuid.uuid4().hex[:10]}")
    async with RunningService(pipeline_settings(kafka_bootstrap, fresh, sim)):
        pass
    assert len(await topic_partitions(kafka_bootstrap, [fresh.budget])) == 1
    admin: Any = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        resource = ConfigResource(ConfigResourceType.TOPIC, fresh.budget, dict.fromkeys(BUDGET_TOPIC_CONFIG))
        (response,) = await admin.describe_configs([resource])
    finally:
        await admin.close()
    ((error, _message, _kind, _name, entries, *_),) = response.resources
    assert error == 0
    found = {entry[0]: entry[1] for entry in entries}
    assert {name: found.get(name) for name in BUDGET_TOPIC_CONFIG} == BUDGET_TOPIC_CONFIG
    ledger = await read_all(kafka_bootstrap, fresh.budget)
    assert [entry["stopped"] for entry in ledger.values][-1] is True  # the process wrote its count when it stopped
