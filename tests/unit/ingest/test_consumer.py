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


class _Record:
    def __init__(self, offset: int) -> None:
        self.offset, self.key, self.value, self.headers, self.timestamp = offset, None, b"{}", (), 0


class _Scripted:
    """A consumer whose polls answer from a script, its log end at 1,000 messages."""

    def __init__(self, answers: list[dict[TopicPartition, list[_Record]]]) -> None:
        self.answers = answers

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition("t", 0)}

    def highwater(self, tp: TopicPartition) -> int:
        del tp
        return 1000

    async def getmany(self, *, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[_Record]]:
        del timeout_ms, max_records
        return self.answers.pop(0)

    def pause(self, *tps: TopicPartition) -> None:
        del tps

    def resume(self, *tps: TopicPartition) -> None:
        del tps


async def test_polls_that_find_nothing_while_paused_or_just_resumed_do_not_hide_the_backlog() -> None:
    # A backlog holds partial batches back; a paused poll finds nothing by design, and so may the first after a
    # resume: taken as "nothing behind", they sent a partial call at every resume.
    source = EventSource(
        bootstrap="127.0.0.1:9", topic="t", group_id="g", client_id="c",
        on_revoked=_nothing, on_assigned=_nothing, max_poll_records=100,
    )  # fmt: skip
    await source._consumer.stop()
    tp = TopicPartition("t", 0)
    source._consumer = _Scripted([{tp: [_Record(n) for n in range(100)]}, {}, {}, {}, {}])
    await source.poll(100)
    assert source.behind == 900
    source.pause()
    await source.poll(100)
    assert source.behind == 900
    source.resume()
    await source.poll(100)  # the fetcher has not fetched again yet
    assert source.behind == 900
    await source.poll(100)  # a second empty poll: nothing is behind after all (a marker, an aborted replay)
    assert source.behind == 0
