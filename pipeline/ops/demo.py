"""`marketo-pipeline demo`, what `make run` starts: the local stack, a load, and what became of it.

The simulator with Marketo's limits, the service, a synthetic load, and a summary table; then it keeps
serving until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipeline.app import Service
from pipeline.config import Settings
from pipeline.ingest.tail import TopicTail
from pipeline.ops.produce import produce
from pipeline.ops.synthetic import SyntheticLoad
from pipeline.ops.topics import create_topics
from pipeline.records import RawMessage
from pipeline.sim.server import Simulator, SimulatorServer
from pipeline.sim.settings import MARKETO_LIMITS, SimSettings, apply_patch

_INVALID_REASONS = (b"invalid_json", b"invalid_event")


@dataclass(slots=True)
class Tally:
    """What the results and dead-letter topics said about this run."""

    answered: set[str] = field(default_factory=set)
    statuses: Counter[str] = field(default_factory=Counter)
    operations: Counter[str] = field(default_factory=Counter)
    dead_letters: Counter[str] = field(default_factory=Counter)
    invalid: int = 0

    def add(self, message: RawMessage, results_topic: str) -> None:
        """Count one result or dead letter."""
        if message.source.topic == results_topic and message.value is not None:
            result = orjson.loads(message.value)
            self.answered.update(result["event_ids"])
            self.statuses[result["status"]] += 1
            self.operations[result["operation"]] += 1
            return
        reason = dict(message.headers).get("dlq.reason", b"?")
        self.dead_letters[reason.decode()] += 1
        if reason in _INVALID_REASONS:
            self.invalid += 1

    @property
    def events(self) -> int:
        """Input events accounted for: answered by a result, or dead-lettered as invalid."""
        return len(self.answered) + self.invalid


def _summary(tally: Tally, stats: dict[str, Any], elapsed: float, count: int) -> Table:
    table = Table(title=f"demo: {count:,} events in {elapsed:.1f} s ({count / elapsed:,.0f} events/s end to end)")
    table.add_column("")
    table.add_column("", justify="right")
    for status, number in sorted(tally.statuses.items()):
        table.add_row(f"results {status}", f"{number:,}")
    for reason, number in sorted(tally.dead_letters.items()):
        table.add_row(f"dead letters {reason}", f"{number:,}")
    calls, records, rejected = stats["calls"], stats["records"], stats["rejected"]
    for operation, number in sorted(calls.items()):
        table.add_row(f"calls {operation}", f"{number:,}")
    if calls.get("syncMultipleLeads"):
        table.add_row(
            "leads per syncMultipleLeads call", f"{records['syncMultipleLeads'] / calls['syncMultipleLeads']:.1f}"
        )
    table.add_row("Marketo calls in all / events", f"{sum(calls.values()):,} / {count:,}")
    table.add_row("limit faults (20023, 20024)", f"{rejected.get('20023', 0) + rejected.get('20024', 0)}")
    return table


async def demo(
    settings: Settings, *, count: int, sim_port: int, stop: asyncio.Event, console: Console | None = None
) -> int:
    """Run the whole local stack on the broker named by `settings` and show what a load becomes."""
    console = console or Console(stderr=True)
    sim_settings = apply_patch(
        SimSettings(user_id=settings.marketo.user_id, secret_key=settings.marketo.secret_key.get_secret_value()),
        MARKETO_LIMITS,
    )
    async with SimulatorServer(Simulator(sim_settings), port=sim_port) as sim:
        settings = settings.model_copy(
            update={"marketo": settings.marketo.model_copy(update={"endpoint": sim.endpoint})}
        )
        await create_topics(settings, partitions=6, console=console)
        k = settings.kafka
        service = Service(settings, ops_host="127.0.0.1")
        service_stop = asyncio.Event()
        async with TopicTail(k.bootstrap, [k.results_topic, k.dlq_topic]) as tail:
            running = asyncio.create_task(service.run(service_stop))
            await service.started.wait()
            seed = int(time.time())
            started = time.monotonic()
            load = SyntheticLoad(seed=seed, duplicates=0.2, invalid=0.01, mobjects=0.05, cookies=0.005, prefix="demo")
            await produce(settings, load, count, console=console)
            tally = Tally()
            columns = (TextColumn("answered"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
            with Progress(*columns, console=console) as progress:
                task = progress.add_task("answered", total=count)
                while tally.events < count and not stop.is_set():
                    for message in await tail.read():
                        tally.add(message, k.results_topic)
                    progress.update(task, completed=tally.events)
            elapsed = time.monotonic() - started
            console.print(_summary(tally, sim.simulator.stats_json(), elapsed, count))
        console.print(
            f"serving: metrics http://127.0.0.1:{service.ops_port}/metrics, readiness /readyz; "
            f"simulator {sim.base_url}/_sim/stats; publish more with `marketo-pipeline produce`. Ctrl-C stops."
        )
        await stop.wait()
        service_stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await running
    console.print("stopped. The broker keeps running: `make kafka-down` stops it.")
    return 0
