"""What became of a run's events, read from the results and dead-letter topics by the service's own watcher."""

from __future__ import annotations

from devkit.kafka import Topics
from pipeline.ops.watch import ResultsWatcher, Tally


async def read_results(bootstrap: str, topics: Topics) -> Tally:
    """Every result and dead letter on `topics` now, counted."""
    async with ResultsWatcher(bootstrap, topics.results, topics.dlq, from_beginning=True) as watcher:
        while not await watcher.caught_up():
            await watcher.read(200)
        return watcher.tally
