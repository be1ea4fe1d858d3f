"""Run the benchmarks, print a table, write bench/results/latest.json."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench import envelope, figures, profile, simulator
from devkit.service import PROFILE_RATE

RESULTS = Path(__file__).parent / "results" / "latest.json"
FIGURES = RESULTS.with_suffix(".png")
PROFILE = RESULTS.with_name("profile-throughput.txt")
GOALS = {
    ("envelope", "build_vs_zeep"): (">=", 5.0),
    ("envelope", "parse_vs_zeep"): (">=", 5.0),
    ("simulator", "margin_over_marketo"): (">=", 10.0),
    ("throughput", "ratio"): (">=", 0.5),
    ("efficiency", "leads_per_call_avg"): (">=", 299.0),
    ("saturation", "ratio"): (">=", 0.98),
    ("saturation", "limit_faults"): ("<=", 0),
    ("memory", "peak_rss_mb"): ("<=", 256.0),
    ("memory_large", "peak_rss_mb"): ("<=", 256.0),
    ("rest.throughput", "ratio"): (">=", 0.5),
    ("rest.throughput", "failed_records"): ("<=", 0),
    ("rest.efficiency", "leads_per_call_avg"): (">=", 299.0),
    ("rest.saturation", "ratio"): (">=", 0.98),
    ("rest.saturation", "limit_faults"): ("<=", 0),
}
SECTIONS = ("envelope", "simulator", "throughput", "efficiency", "saturation", "latency", "memory", "memory_large")
REST_SECTIONS = ("envelope", "throughput", "efficiency", "saturation")


def _machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "processor": platform.processor() or platform.machine(),
    }


def _pipeline(results: dict[str, Any], console: Console) -> None:
    from bench import pipeline  # noqa: PLC0415 - the broker is only needed from here on
    from devkit.kafka import local_broker  # noqa: PLC0415

    rest = results["rest"]
    with local_broker() as bootstrap:
        with console.status("throughput: 200,000 events, pipeline and passthrough"):
            results.update(asyncio.run(pipeline.throughput(bootstrap)))
        with console.status("REST throughput: 200,000 events, pipeline and passthrough, tokens of 5 s"):
            rest.update(asyncio.run(pipeline.throughput(bootstrap, api="rest")))
        with console.status("saturation: 100,000 events against 100 calls / 20 s, 10 concurrent, 300 ms"):
            results["saturation"] = asyncio.run(pipeline.saturation(bootstrap))
        with console.status("REST saturation: 100,000 events against 100 calls / 20 s, 10 concurrent, 300 ms"):
            rest["saturation"] = asyncio.run(pipeline.saturation(bootstrap, api="rest"))
        with console.status("latency: 1,000 events/s for 60 s"):
            results["latency"] = asyncio.run(pipeline.latency(bootstrap))
        with console.status("memory: a 1,000,000-event backlog"):
            results["memory"] = asyncio.run(pipeline.memory(bootstrap))
        with console.status("memory: a backlog of 40,000 large events (16 KB each)"):
            results["memory_large"] = asyncio.run(pipeline.memory(bootstrap, events=40_000, padding=16_000))
        with console.status("profile: the throughput run again, sampled by py-spy (not measured)"):
            raw = PROFILE.with_suffix(".raw")
            asyncio.run(pipeline.throughput(bootstrap, profile=raw))
            PROFILE.write_text(profile.summarize(raw, rate=PROFILE_RATE))
            raw.unlink()
    for efficiency, describe in ((results["efficiency"], 0), (rest["efficiency"], 1)):  # REST: one Describe Lead
        bound = efficiency["distinct_leads"] / 300 + pipeline.PARTITIONS + describe
        efficiency["calls_within_bound"] = efficiency["calls"] <= bound
    rest["throughput"]["token_renewed"] = rest["throughput"]["tokens_issued"] > 1
    results["latency"]["within_bound"] = results["latency"]["p99_s"] <= results["latency"]["bound_s"]


def _table(results: dict[str, Any]) -> tuple[Table, bool]:
    table = Table(title="marketo-pipeline benchmarks")
    for column in ("figure", "value", "goal", "met"):
        table.add_column(column)
    failed = False
    sections = [(s, results.get(s, {})) for s in SECTIONS]
    sections += [(f"rest.{s}", results.get("rest", {}).get(s, {})) for s in REST_SECTIONS]
    for section, figures_of in sections:
        for key, value in figures_of.items():
            if isinstance(value, dict | list):
                continue
            goal = GOALS.get((section, key))
            met = ""
            if goal is not None:
                ok = value <= goal[1] if goal[0] == "<=" else value >= goal[1]
                failed |= not ok
                met = "yes" if ok else "NO"
            elif isinstance(value, bool):
                failed |= not value
                met = "yes" if value else "NO"
            table.add_row(f"{section}.{key}", str(value), f"{goal[0]} {goal[1]}" if goal else "", met)
    return table, failed


def main() -> int:
    console = Console()
    results: dict[str, Any] = {}
    with console.status("envelope: build and parse"):
        results["envelope"] = envelope.measure()
        results["rest"] = {"envelope": envelope.measure_rest(results["envelope"])}
    with console.status("simulator: 300-lead syncMultipleLeads calls for 10 s"):
        results["simulator"] = simulator.measure()
    if "--envelope-only" not in sys.argv:
        _pipeline(results, console)
    results["machine"] = {**_machine(), "kafka": "4.1.1"}
    table, failed = _table(results)
    console.print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    if "throughput" in results:
        figures.draw(results, FIGURES)
        console.print(f"written to {RESULTS} and {FIGURES}")
    else:
        console.print(f"written to {RESULTS}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
