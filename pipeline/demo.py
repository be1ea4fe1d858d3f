"""`marketo-pipeline demo`, what `make run` starts: the local stack, a load, and what became of it.

The simulator with Marketo's limits, the service, a synthetic load, and a summary table; then it keeps
serving until Ctrl-C. It sits above the service it starts, beside the command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, Final

from pydantic import SecretStr
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipeline.app import Service
from pipeline.config import Settings
from pipeline.ops.produce import produce
from pipeline.ops.synthetic import SyntheticLoad
from pipeline.ops.topics import create_topics
from pipeline.ops.watch import ResultsWatcher, Tally
from pipeline.sim.catalog import FSP_FIELD
from pipeline.sim.server import Simulator, SimulatorServer
from pipeline.sim.settings import MARKETO_LIMITS, SimSettings, apply_patch

LIMIT_CODES: Final = ("20023", "20024", "606", "615")  # calls per 20 s and concurrency, over SOAP and REST


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
        if number:
            table.add_row(f"calls {operation}", f"{number:,}")
    for bulk in ("syncMultipleLeads", "syncLeads"):
        if calls.get(bulk):
            table.add_row(f"leads per {bulk} call", f"{records[bulk] / calls[bulk]:.1f}")
    table.add_row("Marketo calls in all / events", f"{sum(calls.values()):,} / {count:,}")
    if stats.get("tokens_issued"):
        table.add_row("REST access tokens issued", f"{stats['tokens_issued']:,}")
    limits = sum(rejected.get(code, 0) for code in LIMIT_CODES)
    table.add_row(f"limit faults ({', '.join(LIMIT_CODES)})", f"{limits}")
    return table


async def _watch_load(
    settings: Settings, count: int, sim: SimulatorServer, stop: asyncio.Event, console: Console
) -> None:
    """Publish the demo load and show it answered; then the summary."""
    k = settings.kafka
    async with ResultsWatcher(k, k.results_topic, k.dlq_topic) as watcher:
        started = time.monotonic()
        load = SyntheticLoad(
            seed=int(time.time()), duplicates=0.2, invalid=0.01, mobjects=0.05, cookies=0.005, prefix="demo"
        )
        await produce(settings, load, count, console=console)
        columns = (TextColumn("answered"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("answered", total=count)
            while watcher.tally.events < count and not stop.is_set():
                await watcher.read()
                progress.update(task, completed=watcher.tally.events)
        elapsed = time.monotonic() - started
        console.print(_summary(watcher.tally, sim.simulator.stats_json(), elapsed, count))


def _marketo(settings: Settings, sim: SimulatorServer, api: str) -> Settings:
    """`settings` pointed at the simulator, over `api`."""
    update: dict[str, Any] = {"endpoint": sim.endpoint, "api": api}
    if api == "rest":
        defaults = sim.simulator.settings
        update |= {
            "rest_endpoint": sim.base_url,
            "client_id": defaults.client_id,
            "client_secret": SecretStr(defaults.client_secret),
            "fsp_field": FSP_FIELD,
        }
    return settings.model_copy(update={"marketo": settings.marketo.model_copy(update=update)})


async def demo(
    settings: Settings,
    *,
    count: int,
    sim_port: int,
    stop: asyncio.Event,
    api: str = "soap",
    console: Console | None = None,
) -> int:
    """Run the whole local stack on the broker named by `settings` and show what a load becomes over `api`."""
    console = console or Console(stderr=True)
    sim_settings = apply_patch(
        SimSettings(user_id=settings.marketo.user_id, secret_key=settings.marketo.secret_key.get_secret_value()),
        MARKETO_LIMITS,
    )
    async with SimulatorServer(Simulator(sim_settings), port=sim_port) as sim:
        settings = _marketo(settings, sim, api)
        console.print(f"demo over Marketo's {api.upper()} API (the simulator at {sim.base_url})")
        await create_topics(settings, partitions=6, console=console)
        service = Service(settings, ops_host="127.0.0.1")
        service_stop = asyncio.Event()
        running = asyncio.create_task(service.run(service_stop))
        await service.started.wait()
        await _watch_load(settings, count, sim, stop, console)
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
