"""Run the benchmarks, print a table, write bench/results/latest.json."""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench import envelope, simulator

RESULTS = Path(__file__).parent / "results" / "latest.json"
GOALS = {
    ("envelope", "build_300x10_ms"): ("<=", 5.0),
    ("envelope", "parse_300_ms"): ("<=", 2.0),
    ("simulator", "calls_per_s"): (">=", 100.0),
}


def _machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "processor": platform.processor() or platform.machine(),
    }


def main() -> int:
    console = Console()
    results: dict[str, Any] = {}
    with console.status("envelope: build and parse"):
        results["envelope"] = envelope.measure()
    with console.status("simulator: 300-lead syncMultipleLeads calls for 10 s"):
        results["simulator"] = simulator.measure()
    results["machine"] = _machine()
    table = Table(title="marketo-pipeline benchmarks")
    for column in ("figure", "value", "goal", "met"):
        table.add_column(column)
    failed = False
    for section in ("envelope", "simulator"):
        for key, value in results[section].items():
            goal = GOALS.get((section, key))
            met = ""
            if goal is not None:
                ok = value <= goal[1] if goal[0] == "<=" else value >= goal[1]
                failed |= not ok
                met = "yes" if ok else "NO"
            table.add_row(f"{section}.{key}", str(value), f"{goal[0]} {goal[1]}" if goal else "", met)
    console.print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    console.print(f"written to {RESULTS}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
