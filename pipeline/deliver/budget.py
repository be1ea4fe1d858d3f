"""One Marketo budget for the whole consumer group, kept in Kafka (no other server).

Marketo's limits (calls per 20 s, concurrent calls, calls per day) belong to the Marketo instance. The group holds
them together:

- the rate and the concurrency are split by the group's membership. The group's leader computes the split when it
  assigns partitions (`BudgetAssignor`) and hands each member its rank and the number of members that got work,
  with its partitions; every member re-reads it on every rebalance. A member without partitions gets no share, and
  a group larger than Marketo's concurrency limit leaves the extra members as standbys.
- the day's call count lives in a compacted topic (`DayLedger`): each process writes its own count of the day under
  its own key every few seconds, and reads everyone's, at start and while it runs.

Trade-offs: a raised share waits one window (the governor's `RAISE_AFTER_S`), so a member added to a busy group
starts calling 20 s after it joins and survivors of a crash take over its share 20 s after the group notices; other
processes' counts of the day are at most `PUBLISH_S` old, so the group can pass the daily quota by the calls of that
moment, after which Marketo's own refusal (quota spent) stops everyone.
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
BUDGET_TOPIC_CONFIG: Final = {"cleanup.policy": "compact,delete", "retention.ms": str(2 * 24 * 3600 * 1000)}
PUBLISH_S: Final = 2.0  # how often a process writes its count of the day
_SHARE: Final = struct.Struct(">hh")  # rank among the members with work (-1: none), how many have work


@dataclass(frozen=True, slots=True)
class Share:
    """This member's place among the group's members that have work: rank `rank` of `size` (rank -1: no work)."""

    rank: int
    size: int

    def of(self, total: int) -> int:
        """This member's part of `total`: the parts of all members sum to `total` exactly."""
        if self.rank < 0 or self.size <= 0:
            return 0
        return total // self.size + (1 if self.rank < total % self.size else 0)


class BudgetAssignor:
    """aiokafka's round robin, which also tells each member its share of Marketo's limits.

    Only the first `max_members` members (by member id) get partitions: Marketo's concurrency limit cannot be split
    further, and the rest wait as standbys.
    """

    name = "marketo-budget"
    version = 0

    def __init__(self, max_members: int) -> None:
        self.max_members = max_members
        self.share: Share | None = None  # as of the last assignment made by this assignor

    def metadata(self, topics: Iterable[str]) -> ConsumerProtocolMemberMetadata:
        """What this member says when it joins: its topics."""
        return ConsumerProtocolMemberMetadata(self.version, sorted(topics), b"")

    def assign(
        self,
        cluster: ClusterMetadata,
        members: Mapping[str, ConsumerProtocolMemberMetadata],
    ) -> dict[str, ConsumerProtocolMemberAssignment]:
        """Each member's partitions and share (run by the group's leader)."""
        topics = sorted({topic for meta in members.values() for topic in meta.subscription})
        partitions = [(t, p) for t in topics for p in sorted(cluster.partitions_for_topic(t) or ())]
        working = sorted(members)[: min(self.max_members, len(partitions))]
        owned: dict[str, dict[str, list[int]]] = {member: {} for member in members}
        for (topic, partition), member in zip(partitions, itertools.cycle(working), strict=False):
            owned[member].setdefault(topic, []).append(partition)
        rank = {member: index for index, member in enumerate(working)}
        return {
            member: ConsumerProtocolMemberAssignment(
                self.version, sorted(owned[member].items()), _SHARE.pack(rank.get(member, -1), len(working))
            )
            for member in members
        }

    def on_assignment(self, assignment: ConsumerProtocolMemberAssignment) -> None:
        """This member's share, from the leader's assignment."""
        try:
            self.share = Share(*_SHARE.unpack(assignment.user_data))
        except struct.error:
            self.share = None


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
            int(body["calls"]),
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
        except KafkaError as exc:
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
        self._consumer.assign(partitions)
        await self._consumer.seek_to_beginning(*partitions)
        ends = await self._consumer.end_offsets(partitions)
        while [tp for tp, end in ends.items() if await self._consumer.position(tp) < end]:
            self._take(await self._consumer.getmany(timeout_ms=1000))

    async def _partitions(self) -> set[int]:
        for _ in range(50):  # a topic created a moment ago reaches the metadata shortly
            found = self._consumer.partitions_for_topic(self._topic)
            if found:
                return set(found)
            await self._consumer._client.force_metadata_update()  # noqa: SLF001 - no public way to ask for it
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
