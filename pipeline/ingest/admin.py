"""Creating the pipeline's topics."""

from __future__ import annotations

import contextlib
from typing import Any

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from pipeline.errors import FatalError
from pipeline.kafka import KafkaTarget, bootstrap_of, client_options


async def ensure_topics(
    bootstrap: KafkaTarget,
    names: list[str],
    *,
    partitions: int,
    replication: int | None = 1,
    configs: dict[str, dict[str, str]] | None = None,
) -> dict[str, str]:
    """Create the topics that do not exist yet (with `configs[name]`, when given); "created" or "exists" per name.

    `replication` None: three replicas, or as many as there are brokers when fewer. A topic the broker refuses to
    create (a policy, an ACL, too few replicas) raises FatalError with the broker's error.
    """
    admin: Any = AIOKafkaAdminClient(**client_options(bootstrap), client_id="marketo-pipeline-admin")
    try:
        await admin.start()
    except KafkaError as exc:
        raise FatalError(f"cannot reach Kafka at {bootstrap_of(bootstrap)}: {exc}") from exc
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in names if name not in existing]
        if missing:
            # Another instance may create them meanwhile.
            if replication is None:
                replication = min(3, len((await admin.describe_cluster())["brokers"]))
            with contextlib.suppress(TopicAlreadyExistsError):
                wanted = configs or {}
                response = await admin.create_topics(
                    [NewTopic(name, partitions, replication, topic_configs=wanted.get(name)) for name in missing]
                )
                _raise_refusals(response)
        return {name: "created" if name in missing else "exists" for name in names}
    finally:
        await admin.close()


def _raise_refusals(response: Any) -> None:  # noqa: ANN401 - aiokafka's CreateTopicsResponse
    """FatalError naming the topics the broker refused to create (one that exists meanwhile is not refused)."""
    refused = []
    for topic, code, *rest in response.topic_errors:
        error = for_code(code)
        if code and error is not TopicAlreadyExistsError:
            refused.append(f"{topic}: {error.__name__}{f' ({rest[0]})' if rest and rest[0] else ''}")
    if refused:
        raise FatalError(f"Kafka refused to create {'; '.join(refused)}")


async def topic_partitions(bootstrap: KafkaTarget, topics: list[str]) -> list[TopicPartition]:
    """Every partition of `topics`, from the admin API: a consumer that has not subscribed knows no new topic."""
    admin: Any = AIOKafkaAdminClient(**client_options(bootstrap))
    try:
        await admin.start()
        described = await admin.describe_topics(topics)
    except KafkaError as exc:
        raise FatalError(f"cannot describe {', '.join(topics)}: {exc}") from exc
    finally:
        await admin.close()
    return [TopicPartition(t["topic"], p["partition"]) for t in described for p in t["partitions"]]


async def max_message_bytes(bootstrap: KafkaTarget, topics: list[str]) -> dict[str, int]:
    """Each topic's `max.message.bytes`, as the broker says (the topics it could not describe are left out)."""
    admin: Any = AIOKafkaAdminClient(**client_options(bootstrap), client_id="marketo-pipeline-admin")
    found: dict[str, int] = {}
    try:
        await admin.start()
        resources = [ConfigResource(ConfigResourceType.TOPIC, topic, {"max.message.bytes": None}) for topic in topics]
        for response in await admin.describe_configs(resources):
            for error_code, _message, _kind, name, entries, *_ in response.resources:
                found.update(
                    (name, int(entry[1])) for entry in entries if not error_code and entry[0] == "max.message.bytes"
                )
    except (KafkaError, ValueError, TypeError):
        return found  # the limits stay the configured ones
    finally:
        await admin.close()
    return found
