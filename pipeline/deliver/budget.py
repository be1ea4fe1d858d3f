"""One Marketo budget for the whole consumer group, kept in Kafka (no other server).

Marketo's limits (calls per 20 s, concurrent calls, calls per day) belong to the Marketo instance. The group holds
them together:

- the rate and the concurrency are split by the group's membership. The group's leader computes the split when it
  assigns partitions (`BudgetAssignor`) and hands each member its part with its partitions; every member re-reads it
  on every rebalance. The partitions are dealt by backlog, so that equal shares meet equal work.
- the day's call count lives in a compacted topic (`DayLedger`): each process writes its own count of the day under
  its own key every few seconds, and reads everyone's, at start and while it runs.

Trade-offs (README, "One Marketo budget for the whole group"): a raised share waits one window (the governor's
`RAISE_AFTER_S`), so a member added to a busy group starts calling 20 s after it joins and survivors of a crash take
over its share 20 s after the group notices; other processes' counts of the day are about `PUBLISH_S` old, so the
group can pass the daily quota by the calls of that moment, after which Marketo's own refusal (quota spent) stops
everyone; a member cut off from Kafka keeps its share until it notices.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import struct
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Self

import orjson
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.cluster import ClusterMetadata
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment, ConsumerProtocolMemberMetadata
from aiokafka.errors import KafkaError

from pipeline.deliver.governor import RAISE_AFTER_S, RateGovernor
from pipeline.errors import FatalError
from pipeline.kafka import KafkaTarget, client_options
from pipeline.marketo.day import marketo_day

log = structlog.get_logger()

# Compacted, and what no process updated for two days goes: a day's count is read on that day only.
# Segments roll and get compacted hourly, so a start reads about one record per process that ran lately.
BUDGET_TOPIC_CONFIG: Final = {
    "cleanup.policy": "compact,delete",
    "retention.ms": str(2 * 24 * 3600 * 1000),
    "segment.ms": str(3600 * 1000),
    "max.compaction.lag.ms": str(3600 * 1000),
}
PUBLISH_S: Final = 2.0  # how often a process writes its count of the day
# The leader's word to each member: its rank among the members with work (-1: none), how many have work, and its
# part of the calls per 20 s and of the concurrent calls.
_SHARE: Final = struct.Struct(">hhii")


@dataclass(frozen=True, slots=True)
class Share:
    """This member's place among the group's members that have work (rank -1: none) and its part of the limits."""

    rank: int
    size: int
    calls: int
    concurrency: int


def part(total: int, rank: int, size: int) -> int:
    """Member `rank`'s part of `total` among `size` members: the parts sum to `total` exactly."""
    if rank < 0 or size <= 0:
        return 0
    return total // size + (1 if rank < total % size else 0)


@dataclass(frozen=True, slots=True)
class _Report:
    """What the members said when they joined: their partitions' backlog, and the lowest limits any has set."""

    backlog: dict[tuple[str, int], int]
    calls: int
    concurrency: int
    older: bool  # whether a member of an older release, which says nothing, is in the group


class BudgetAssignor:
    """Partitions spread by backlog, and each member told its part of Marketo's limits.

    The members share the limits equally, so the partitions are dealt out to even the work each gets: each member
    says when it joins how far behind its partitions were (`backlog`), and the leader deals the furthest behind first,
    each to the member with the least so far (a partition nobody reports, its owner gone, counts as the furthest
    behind); with no reports, that is a round robin. The limits split are the lowest any member has set (a change of
    settings rolls out member by member). No more members get partitions than there are calls and concurrent calls
    to give each one of each; the rest wait as standbys.
    """

    # The protocol's name is round robin's, which every member of an older release speaks: a rolling upgrade keeps
    # one group. A leader of the older release deals by round robin and says no share (a member then makes no call);
    # a leader of this one, with members of the older release in the group, gives no share to anyone (the older
    # members keep the limits as their own settings split them) until the last of them has left.
    name = "roundrobin"
    version = 0

    def __init__(self, calls_per_window: int, max_concurrency: int) -> None:
        self.calls_per_window = calls_per_window
        self.max_concurrency = max_concurrency
        self.share: Share | None = None  # as of the last assignment made by this assignor
        self.backlog: dict[tuple[str, int], int] = {}  # of the partitions this member just gave up

    def metadata(self, topics: Iterable[str]) -> ConsumerProtocolMemberMetadata:
        """What this member says when it joins: its topics, its limits, how far behind its last partitions were."""
        report = {
            "calls": self.calls_per_window,
            "concurrency": self.max_concurrency,
            "backlog": [[topic, partition, behind] for (topic, partition), behind in self.backlog.items()],
        }
        return ConsumerProtocolMemberMetadata(self.version, sorted(topics), orjson.dumps(report))

    def assign(
        self,
        cluster: ClusterMetadata,
        members: Mapping[str, ConsumerProtocolMemberMetadata],
    ) -> dict[str, ConsumerProtocolMemberAssignment]:
        """Each member's partitions and share (run by the group's leader)."""
        topics = sorted({topic for meta in members.values() for topic in meta.subscription})
        partitions = [(t, p) for t in topics for p in sorted(cluster.partitions_for_topic(t) or ())]
        said = self._reported(members.values())
        working = sorted(members)[: min(said.calls, said.concurrency, len(partitions))]
        owned: dict[str, dict[str, list[int]]] = {member: {} for member in members}
        for (topic, partition), member in _dealt(partitions, working, said.backlog):
            owned[member].setdefault(topic, []).append(partition)
        rank = {member: index for index, member in enumerate(working)}
        assignments = {}
        calls, concurrency = (0, 0) if said.older else (said.calls, said.concurrency)
        for member in members:
            index, size = rank.get(member, -1), len(working)
            share = _SHARE.pack(index, size, part(calls, index, size), part(concurrency, index, size))
            assignments[member] = ConsumerProtocolMemberAssignment(self.version, sorted(owned[member].items()), share)
        return assignments

    def on_assignment(self, assignment: ConsumerProtocolMemberAssignment) -> None:
        """This member's share, from the leader's assignment."""
        try:
            self.share = Share(*_SHARE.unpack(assignment.user_data))
        except struct.error:
            self.share = None

    def _reported(self, metadata: Iterable[ConsumerProtocolMemberMetadata]) -> _Report:
        """What the members said (a report that cannot be read says nothing; the leader's own limits count too)."""
        backlog: dict[tuple[str, int], int] = {}
        calls, concurrency, older = self.calls_per_window, self.max_concurrency, False
        for meta in metadata:
            try:
                body = orjson.loads(meta.user_data or b"{}")
                said = [((str(t), int(p)), max(int(n), 0)) for t, p, n in body.get("backlog", ())]
                calls = min(calls, max(int(body["calls"]), 1))
                concurrency = min(concurrency, max(int(body["concurrency"]), 1))
            except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError):
                older = True  # round robin's members say nothing (b""): a member of an older release
                continue
            backlog.update(said)
        return _Report(backlog, calls, concurrency, older)


def _dealt(
    partitions: list[tuple[str, int]], members: list[str], behind: dict[tuple[str, int], int]
) -> list[tuple[tuple[str, int], str]]:
    """Each partition and the member it goes to: the furthest behind first, to the member with the least so far."""
    if not members:
        return []
    unknown = max(behind.values(), default=1)
    weight = {tp: behind.get(tp, unknown) for tp in partitions}
    load = dict.fromkeys(members, (0, 0))  # backlog, partitions
    dealt = []
    for tp in sorted(partitions, key=lambda tp: (-weight[tp], tp)):
        member = min(members, key=lambda m: (*load[m], m))
        dealt.append((tp, member))
        load[member] = (load[member][0] + weight[tp], load[member][1] + 1)
    return dealt


@dataclass(frozen=True, slots=True)
class _Entry:
    """One process's latest word in the ledger."""

    day: str
    calls: int
    at: float  # wall clock, when written
    stopped: bool
    starts: tuple[float, ...]  # when its calls still in Marketo's window started (written when it stops)


def _entry(value: bytes) -> _Entry | None:
    try:
        body = orjson.loads(value)
        return _Entry(
            str(body["day"]),
            max(int(body["calls"]), 0),
            float(body["at"]),
            bool(body.get("stopped", False)),
            tuple(float(s) for s in body.get("starts", ())),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


class DayLedger:
    """The group's Marketo calls of the day, in a compacted topic every process adds its own count to."""

    def __init__(
        self,
        bootstrap: KafkaTarget,
        topic: str,
        governor: RateGovernor,
        *,
        client_id: str,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._topic = topic
        self._governor = governor
        self._wall = wall
        self.instance = f"{client_id}-{uuid.uuid4().hex[:12]}"
        self._entries: dict[str, _Entry] = {}
        self._producer: Any = AIOKafkaProducer(**client_options(bootstrap), client_id=client_id, acks="all")
        self._consumer: Any = AIOKafkaConsumer(
            **client_options(bootstrap), client_id=client_id, enable_auto_commit=False, group_id=None
        )
        self._started: list[Any] = []

    async def __aenter__(self) -> Self:
        try:
            for client in (self._producer, self._consumer):
                await client.start()
                self._started.append(client)
            await self._read_to_end()
            await self._publish(stopped=False)
        except (KafkaError, FatalError) as exc:
            await self._close()
            raise FatalError(f"cannot read or write the budget topic {self._topic}: {exc}") from exc
        log.info("budget_ledger_read", topic=self._topic, group_calls_today=self.group_calls_today())
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with contextlib.suppress(KafkaError):
            await self._publish(stopped=True)
        await self._close()

    async def _close(self) -> None:
        for client in reversed(self._started):
            with contextlib.suppress(KafkaError):
                await client.stop()
        self._started.clear()

    async def _read_to_end(self) -> None:
        partitions = [TopicPartition(self._topic, p) for p in sorted(await self._partitions())]
        # The ends first: asked after `assign`, they wait for the metadata update the assignment starts (~0.5 s).
        ends = await self._consumer.end_offsets(partitions)
        self._consumer.assign(partitions)
        await self._consumer.seek_to_beginning(*partitions)
        while [tp for tp, end in ends.items() if await self._consumer.position(tp) < end]:
            self._take(await self._consumer.getmany(timeout_ms=1000))

    async def _partitions(self) -> set[int]:
        for _ in range(50):  # a topic created a moment ago reaches the metadata shortly
            await self._consumer._client.force_metadata_update()  # noqa: SLF001 - no public way to ask for it
            found = self._consumer.partitions_for_topic(self._topic)
            if found:
                return set(found)
            await asyncio.sleep(0.1)
        raise FatalError(f"the budget topic {self._topic} does not exist")

    def _take(self, batches: dict[Any, list[Any]]) -> None:
        for record in itertools.chain.from_iterable(batches.values()):
            key = record.key.decode(errors="replace") if record.key else ""
            if record.value is None:
                self._entries.pop(key, None)
            elif (entry := _entry(record.value)) is not None:
                self._entries[key] = entry
        self._governor.others_today(marketo_day(), self.others_today())

    def others_today(self) -> int:
        """The calls other processes made on Marketo's current day, as they last wrote."""
        today = marketo_day()
        return sum(e.calls for key, e in self._entries.items() if key != self.instance and e.day == today)

    def group_calls_today(self) -> int:
        """The group's calls today, this process's own count included."""
        return self.others_today() + self._governor.calls_today

    def quiet(self) -> tuple[bool, list[float]]:
        """Whether no other process may still have calls in Marketo's window but those it wrote when it stopped.

        With them: the starts of those calls, to count in this process's window.
        """
        recent_after = self._wall() - RAISE_AFTER_S - 2 * PUBLISH_S
        recent = [e for key, e in self._entries.items() if key != self.instance and e.at >= recent_after]
        return all(e.stopped for e in recent), [start for e in recent for start in e.starts]

    async def _publish(self, *, stopped: bool) -> None:
        body = {
            "instance": self.instance,
            "day": marketo_day(),
            "calls": self._governor.calls_today,
            "at": self._wall(),
            "stopped": stopped,
            "starts": self._governor.recent_starts() if stopped else [],
        }
        await self._producer.send_and_wait(self._topic, orjson.dumps(body), key=self.instance.encode())

    async def run(self) -> None:
        """Write this process's count every `PUBLISH_S` and read everyone's, until cancelled."""
        published = time.monotonic()
        while True:
            try:
                self._take(await self._consumer.getmany(timeout_ms=int(PUBLISH_S * 1000)))
                if time.monotonic() - published >= PUBLISH_S:  # others' words wake this loop: not a write each
                    published = time.monotonic()
                    await self._publish(stopped=False)
            except KafkaError as exc:
                log.warning("budget_ledger_unavailable", topic=self._topic, error=str(exc))
                await asyncio.sleep(PUBLISH_S)
