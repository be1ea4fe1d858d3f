from __future__ import annotations

from aiokafka import TopicPartition
from aiokafka.errors import IllegalStateError

from pipeline.ingest.consumer import EventSource


class _Revoking:
    """A consumer whose partition 1 is taken away between listing the assignment and asking its position."""

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition("t", 0), TopicPartition("t", 1)}

    def highwater(self, tp: TopicPartition) -> int:
        if tp.partition == 1:
            raise AssertionError("Partition is not assigned")
        return 10

    async def position(self, tp: TopicPartition) -> int:
        if tp.partition == 1:
            raise IllegalStateError(f"Partition {tp} is not assigned")
        return 4


async def _nothing(_: object) -> None:
    return None


async def test_lag_leaves_out_a_partition_taken_away_during_a_rebalance() -> None:
    source = EventSource(
        bootstrap="127.0.0.1:9",
        topic="t",
        group_id="g",
        client_id="c",
        on_revoked=_nothing,
        on_assigned=_nothing,
        max_poll_records=10,
    )
    await source._consumer.stop()  # never started: stopping it only marks it closed
    source._consumer = _Revoking()
    assert await source.lag() == {0: 6}
