"""`marketo-pipeline topics`: the input, results and dead-letter topics, replay's record of replays, the budget."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from pipeline.config import Settings
from pipeline.deliver.budget import BUDGET_TOPIC_CONFIG
from pipeline.ingest.admin import ensure_topics
from pipeline.ops.replay import replayed_topic
from pipeline.outcome.letter import DLQ_HEADROOM_BYTES


def dead_letter_topic_bytes(input_bytes: int) -> int:
    """What the dead-letter topic must take: any input message, and the dead-letter context beside it."""
    return input_bytes + DLQ_HEADROOM_BYTES


async def create_topics(
    settings: Settings,
    partitions: int,
    console: Console | None = None,
    *,
    replication: int = 1,
    configs: dict[str, str] | None = None,
) -> dict[str, str]:
    """Create what is missing; prints and returns what was created and what existed.

    Every topic gets `replication` replicas and the topic `configs` given; the dead-letter topic's room and the
    replay log's compaction stay as they must.
    """
    k = settings.kafka
    given = configs or {}
    names = [k.input_topic, k.results_topic, k.dlq_topic, replayed_topic(settings), k.budget_topic]
    per_topic = {name: dict(given) for name in names}
    per_topic[k.dlq_topic]["max.message.bytes"] = str(dead_letter_topic_bytes(k.max_message_bytes))
    per_topic[replayed_topic(settings)]["cleanup.policy"] = "compact"  # which dead letters were replayed, by letter
    per_topic[k.budget_topic] |= BUDGET_TOPIC_CONFIG  # the group's Marketo calls of the day, by process
    status = await ensure_topics(k, names, partitions=partitions, replication=replication, configs=per_topic)
    table = Table(title=f"topics on {k.bootstrap}")
    table.add_column("topic")
    table.add_column("status")
    for name, state in status.items():
        table.add_row(name, state if state == "exists" else f"created ({partitions} partitions)")
    (console or Console(stderr=True)).print(table)
    return status
