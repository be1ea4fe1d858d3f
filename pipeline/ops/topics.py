"""`marketo-pipeline topics`: create the input, results and dead-letter topics."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from pipeline.config import Settings
from pipeline.ingest.admin import ensure_topics


async def create_topics(settings: Settings, partitions: int, console: Console | None = None) -> dict[str, str]:
    """Create what is missing; prints and returns what was created and what existed."""
    k = settings.kafka
    status = await ensure_topics(k.bootstrap, [k.input_topic, k.results_topic, k.dlq_topic], partitions=partitions)
    table = Table(title=f"topics on {k.bootstrap}")
    table.add_column("topic")
    table.add_column("status")
    for name, state in status.items():
        table.add_row(name, state if state == "exists" else f"created ({partitions} partitions)")
    (console or Console(stderr=True)).print(table)
    return status
