"""Processes killed, stopped and joined mid-run: every event ends with a result or a dead letter."""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devkit.kafka import Topics, committed, publish, read_all, wait_for
from devkit.results import read_results
from devkit.service import RunningService, ServiceProcess
from devkit.simulator import SimClient
from tests.integration.conftest import pipeline_settings
from tests.integration.helpers import events

pytestmark = pytest.mark.integration
EVENTS = 3000


def bodies() -> list[dict[str, Any]]:
    found = []
    for n in range(EVENTS):
        email = f"lead{n % 2500}@example.com"  # some leads change twice
        found.append(
            {"_key": f"email:{email}", "event_id": f"evt-{n}", "lead": {"Email": email, "attributes": {"Seq": str(n)}}}
        )
    return found


async def answered(bootstrap: str, topics: Topics) -> Counter[str]:
    """How many results each event id has."""
    return (await read_results(bootstrap, topics)).answered


async def wait_answered(bootstrap: str, topics: Topics, at_least: int) -> Counter[str]:
    async def enough() -> Counter[str] | None:
        seen = await answered(bootstrap, topics)
        return seen if len(seen) >= at_least else None

    found: Counter[str] = await wait_for(enough, timeout_s=120, what=f"{at_least} events answered")
    return found


@pytest.fixture
def processes() -> Iterator[list[ServiceProcess]]:
    started: list[ServiceProcess] = []
    yield started
    for process in started:
        process.stop()


def slow_settings(bootstrap: str, topics: Topics, sim: SimClient) -> Any:
    # Small calls against a slowish Marketo, and little read ahead (backpressure), so that most of the
    # input is still unread and some is in flight when the blow lands.
    return pipeline_settings(
        bootstrap,
        topics,
        sim,
        batch={"max_leads": 50, "max_wait_ms": 100},
        dedupe={"window_ms": 100},
        ingest={"max_pending_events": 400, "max_poll_records": 100},
    )


@dataclass(frozen=True, slots=True)
class Interrupted:
    """What the first instance did before the blow, and what the restarted one finished."""

    exit_code: int
    log: str
    answered_before: Counter[str]
    committed_before: int
    answered_after: Counter[str]


async def interrupt_then_restart(
    bootstrap: str, topics: Topics, sim: SimClient, workdir: Path, processes: list[ServiceProcess], blow: signal.Signals
) -> Interrupted:
    """Start an instance, publish, hit it with `blow` mid-run, start another; every event must end answered."""
    await sim.configure(latency_ms=150)
    settings = slow_settings(bootstrap, topics, sim)
    first = ServiceProcess(settings, workdir, "first")
    processes.append(first)
    first.start()
    await publish(bootstrap, topics.input, events(bodies()))
    await wait_answered(bootstrap, topics, 500)
    first.signal(blow)
    exit_code = await first.wait()
    answered_before = await answered(bootstrap, topics)
    assert len(answered_before) < EVENTS, "the blow landed after the work was done; nothing was tested"
    committed_before = sum((await committed(bootstrap, topics.group)).values())
    second = ServiceProcess(settings, workdir, "second")
    processes.append(second)
    second.start()
    seen = await wait_answered(bootstrap, topics, EVENTS)

    async def all_committed() -> bool:
        return sum((await committed(bootstrap, topics.group)).values()) == EVENTS

    await wait_for(all_committed, what="every offset committed")
    second.signal(signal.SIGTERM)
    assert await second.wait() == 0
    assert set(seen) == {f"evt-{n}" for n in range(EVENTS)}
    assert (await read_all(bootstrap, topics.dlq, json_values=False)).raw == []
    return Interrupted(
        exit_code, first.log.read_text(), answered_before, committed_before, await answered(bootstrap, topics)
    )


async def test_sigkill_mid_run_then_restart_loses_nothing(
    kafka_bootstrap: str, topics: Topics, sim: SimClient, tmp_path: Path, processes: list[ServiceProcess]
) -> None:
    run = await interrupt_then_restart(kafka_bootstrap, topics, sim, tmp_path, processes, signal.SIGKILL)
    assert run.exit_code == -signal.SIGKILL
    # Whatever it had committed was answered; whatever it had not is answered now (perhaps twice).
    assert run.committed_before <= len(run.answered_before)


async def test_sigterm_drains_in_flight_work_without_duplicate_results(
    kafka_bootstrap: str, topics: Topics, sim: SimClient, tmp_path: Path, processes: list[ServiceProcess]
) -> None:
    run = await interrupt_then_restart(kafka_bootstrap, topics, sim, tmp_path, processes, signal.SIGTERM)
    assert run.exit_code == 0
    assert '"event": "service_stopped"' in run.log
    assert "drain_deadline_passed" not in run.log
    # A clean drain answers everything it read and commits exactly that: the next instance starts where it stopped.
    assert run.committed_before == len(run.answered_before)
    assert {event: n for event, n in run.answered_after.items() if n > 1} == {}


async def test_two_instances_share_the_work_through_a_rebalance(
    kafka_bootstrap: str, topics: Topics, sim: SimClient
) -> None:
    await sim.configure(latency_ms=300)
    base = slow_settings(kafka_bootstrap, topics, sim)
    # Two calls at a time: the first instance is still busy when the second has joined the group.
    settings = base.model_copy(update={"deliver": base.deliver.model_copy(update={"max_concurrency": 2})})
    async with RunningService(settings) as first:
        await publish(kafka_bootstrap, topics.input, events(bodies()))
        await wait_answered(kafka_bootstrap, topics, 300)
        async with RunningService(settings) as second:
            seen = await wait_answered(kafka_bootstrap, topics, EVENTS)

            async def all_committed() -> bool:
                return sum((await committed(kafka_bootstrap, topics.group)).values()) == EVENTS

            await wait_for(all_committed, what="every offset committed")
            second_consumed = second.service.metrics.events_consumed._value.get()
        first_consumed = first.service.metrics.events_consumed._value.get()
    assert set(seen) == {f"evt-{n}" for n in range(EVENTS)}
    assert second_consumed > 0, "the second instance never got a partition"
    assert first_consumed + second_consumed >= EVENTS
    assert (await read_all(kafka_bootstrap, topics.dlq, json_values=False)).raw == []
