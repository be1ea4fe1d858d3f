"""The throughput and latency figures as a PNG beside latest.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib as mpl

mpl.use("Agg")  # files only, no display
import matplotlib.pyplot as plt


def draw(results: dict[str, Any], path: Path) -> None:
    """Throughput of the pipeline against the passthrough; the latency distribution against its bound."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    throughput = results["throughput"]
    names = ["aiokafka passthrough", "marketo-pipeline"]
    values = [throughput["passthrough_events_per_s"], throughput["pipeline_events_per_s"]]
    bars = left.bar(names, values, color=["#9aa5b1", "#2f6fb0"])
    left.bar_label(bars, labels=[f"{v:,} events/s" for v in values])
    left.axhline(values[0] / 2, color="#c0392b", linestyle="--", linewidth=1, label="goal: half the passthrough")
    left.set_title(f"Throughput, {throughput['events']:,} events (ratio {throughput['ratio']})")
    left.set_ylabel("events / s")
    left.legend(loc="upper right")
    latency = results["latency"]
    histogram = {float(k): v for k, v in latency["histogram"].items()}
    left_edges = sorted(histogram)
    right.bar(left_edges, [histogram[k] for k in left_edges], width=0.09, align="edge", color="#2f6fb0")
    for value, label, color in (
        (latency["p50_s"], "p50", "#27ae60"),
        (latency["p99_s"], "p99", "#e67e22"),
        (latency["bound_s"], "bound", "#c0392b"),
    ):
        right.axvline(value, color=color, linestyle="--", linewidth=1, label=f"{label} {value:.2f} s")
    right.set_title(f"Event to result latency, {latency['offered_events_per_s']:,} events/s offered")
    right.set_xlabel("seconds")
    right.set_ylabel("events")
    right.legend(loc="upper left")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
