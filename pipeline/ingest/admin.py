"""Creating the pipeline's topics."""

from __future__ import annotations

import contextlib
from typing import Any

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from pipeline.errors import FatalError


async def ensure_topics(bootstrap: str, names: list[str], *, partitions: int, replication: int = 1) -> dict[str, str]:
    """Create the topics that do not exist yet; returns "created" or "exists" per name."""
    admin: Any = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="marketo-pipeline-admin")
    try:
        await admin.start()
    except KafkaError as exc:
        raise FatalError(f"cannot reach Kafka at {bootstrap}: {exc}") from exc
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in names if name not in existing]
        if missing:
            # Another instance may create them meanwhile.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics([NewTopic(name, partitions, replication) for name in missing])
        return {name: "created" if name in missing else "exists" for name in names}
    finally:
        await admin.close()


async def topic_partitions(bootstrap: str, topics: list[str]) -> list[TopicPartition]:
    """Every partition of `topics`, from the admin API: a consumer that has not subscribed knows no new topic."""
    admin: Any = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        await admin.start()
        described = await admin.describe_topics(topics)
    except KafkaError as exc:
        raise FatalError(f"cannot describe {', '.join(topics)}: {exc}") from exc
    finally:
        await admin.close()
    return [TopicPartition(t["topic"], p["partition"]) for t in described for p in t["partitions"]]
