"""`marketo-pipeline produce`: synthetic events to the input topic, with a progress bar and a summary."""

from __future__ import annotations

import asyncio
from collections import Counter

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from pipeline.config import Settings
from pipeline.ops.synthetic import SyntheticLoad
from pipeline.outcome.producer import KafkaSink, Message

_CHUNK = 10_000  # events per batched send, acknowledged before the next


async def produce(
    settings: Settings, load: SyntheticLoad, count: int, *, topic: str | None = None, console: Console | None = None
) -> Counter[str]:
    """Publish `count` events from `load`, acknowledged; returns how many of each kind."""
    console = console or Console(stderr=True)
    target = topic or settings.kafka.input_topic
    kinds: Counter[str] = Counter()
    chunk: list[Message] = []
    columns = (TextColumn("producing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    async with KafkaSink(bootstrap=settings.kafka, client_id=f"{settings.kafka.client_id}-produce") as sink:
        with Progress(*columns, console=console, transient=False) as progress:
            task = progress.add_task("events", total=count)
            for event in load.events(count):
                chunk.append((event.key, event.value, None))
                kinds[event.kind] += 1
                if len(chunk) >= _CHUNK:
                    await asyncio.gather(*await sink.send_many(target, chunk))
                    progress.advance(task, len(chunk))
                    chunk.clear()
            await asyncio.gather(*await sink.send_many(target, chunk))
            progress.advance(task, len(chunk))
    table = Table(title=f"published to {target}")
    table.add_column("kind")
    table.add_column("events", justify="right")
    for kind, number in sorted(kinds.items()):
        table.add_row(kind, f"{number:,}")
    table.add_row("total", f"{sum(kinds.values()):,}")
    console.print(table)
    return kinds
