"""`marketo-pipeline replay`: dead letters back to the input topic, filtered, each at most once, never looped.

Every run reads the whole dead-letter topic (up to where it ended when the run began), so no letter becomes
unreachable whatever the filters of earlier runs. What was replayed is recorded in a compacted topic beside it
(`<dlq_topic>.replayed`, keyed by the letter's source coordinates), in the same Kafka transaction as the replayed
event itself: a letter is replayed exactly when it is recorded, so no two runs replay one letter. By default a
letter whose key has a newer result than the letter's failure is skipped as superseded, so a replay never writes
older data over newer (`--include-superseded` replays it anyway).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from rich.console import Console
from rich.table import Table

from pipeline.config import Settings
from pipeline.contract import DLQ_PREFIX, DlqHeader, header, read_result
from pipeline.errors import FatalError
from pipeline.ingest.admin import ensure_topics, max_message_bytes
from pipeline.ingest.tail import TopicTail
from pipeline.kafka import KafkaTarget, client_options
from pipeline.logs import mask_text
from pipeline.outcome.letter import DLQ_HEADROOM_BYTES
from pipeline.records import DeadLetterReason, RawMessage

REPLAYED_SUFFIX: Final = ".replayed"
CHUNK: Final = 500  # letters per transaction
SHOWN: Final = 30  # letters a dry run lists one by one
_CODE_IN_TEXT: Final = re.compile(r"\b(\d{5})\b")


def replayed_topic(settings: Settings) -> str:
    """The compacted topic that records which dead letters were replayed."""
    return settings.kafka.dlq_topic + REPLAYED_SUFFIX


def _moment(value: bytes | None) -> datetime | None:
    """An RFC 3339 time from a header; a time without a zone is taken as UTC."""
    try:
        moment = datetime.fromisoformat(value.decode()) if value else None
    except (ValueError, UnicodeDecodeError):
        return None
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def _replays(message: RawMessage) -> int:
    try:
        return int(header(message.headers, DlqHeader.REPLAYS) or b"0")
    except ValueError:
        return 0


def letter_code(message: RawMessage) -> str | None:
    """The Marketo code a letter failed with: its `dlq.error.code`, else the five digits its error names."""
    code = header(message.headers, DlqHeader.ERROR_CODE)
    if code:
        return code.decode(errors="replace")
    found = _CODE_IN_TEXT.search((header(message.headers, DlqHeader.ERROR) or b"").decode(errors="replace"))
    return found.group(1) if found else None


def letter_id(message: RawMessage) -> bytes:
    """Which event a letter carries: its source coordinates (`topic/partition/offset`), else its own."""
    parts = [header(message.headers, name) for name in (DlqHeader.SOURCE_TOPIC, DlqHeader.SOURCE_PARTITION)]
    offset = header(message.headers, DlqHeader.SOURCE_OFFSET)
    if parts[0] is None or parts[1] is None or offset is None:
        source = message.source
        return f"{source.topic}/{source.partition}/{source.offset}".encode()
    return b"/".join((parts[0], parts[1], offset))


@dataclass(frozen=True, slots=True)
class ReplayFilter:
    """Which dead letters a run replays."""

    reason: DeadLetterReason | None = None
    code: str | None = None
    key: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int | None = None
    max_replays: int = 3
    include_superseded: bool = False

    def selects(self, message: RawMessage) -> str:
        """`replay`, or why the filters leave it out.

        The reasons: `value_omitted`, `other_reason`, `other_code`, `other_key`, `outside_window`, `max_replays`.
        """
        headers = message.headers
        if message.value is None or header(headers, DlqHeader.VALUE_OMITTED) == b"true":
            return "value_omitted"  # nothing to replay: the source coordinates find the original
        if self.reason is not None and header(headers, DlqHeader.REASON) != self.reason.value.encode():
            return "other_reason"
        if self.code is not None and letter_code(message) != self.code:
            return "other_code"
        if self.key is not None and (message.key or b"") != self.key.encode():
            return "other_key"
        failed_at = _moment(header(headers, DlqHeader.FAILED_AT))
        since, until = _aware(self.since), _aware(self.until)
        if (since is not None and (failed_at is None or failed_at < since)) or (
            until is not None and (failed_at is None or failed_at >= until)
        ):
            return "outside_window"
        if _replays(message) >= self.max_replays:
            return "max_replays"
        return "replay"


def _aware(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def replay_headers(message: RawMessage) -> list[tuple[str, bytes]]:
    """The original headers (no dlq.* context) and `dlq.replays` one higher: the next dead letter carries it on."""
    kept = [(name, value) for name, value in message.headers if not name.startswith(DLQ_PREFIX)]
    return [*kept, (DlqHeader.REPLAYS, str(_replays(message) + 1).encode())]


@dataclass(slots=True)
class ReplayPlan:
    """What a run found: counts by verdict, and the letters a dry run shows."""

    counts: Counter[str] = field(default_factory=Counter)
    shown: list[tuple[str, str, str]] = field(default_factory=list)  # (letter id, key, verdict)

    def note(self, message: RawMessage, verdict: str) -> None:
        """What the run does with `message`, and why."""
        self.counts[verdict] += 1
        if len(self.shown) < SHOWN:
            self.shown.append((letter_id(message).decode(errors="replace"), _shown_key(message), verdict))


def _shown_key(message: RawMessage) -> str:
    return mask_text((message.key or b"").decode(errors="replace"))


async def _read(bootstrap: KafkaTarget, topic: str, **options: Any) -> list[RawMessage]:  # noqa: ANN401
    async with TopicTail(bootstrap, [topic], from_beginning=True, **options) as tail:
        return [message async for message in tail.to_end()]


async def _replayed(settings: Settings) -> set[bytes]:
    """The letters earlier runs replayed (committed transactions only)."""
    k = settings.kafka
    configs = {replayed_topic(settings): {"cleanup.policy": "compact"}}
    await ensure_topics(k, [replayed_topic(settings)], partitions=1, configs=configs)
    return {m.key for m in await _read(k, replayed_topic(settings), committed_only=True) if m.key}


async def _newest_results(settings: Settings, keys: set[bytes], since: datetime) -> dict[bytes, datetime]:
    """For each of `keys`, when its newest result that wrote something (from `since` on) was completed."""
    k = settings.kafka
    newest: dict[bytes, datetime] = {}
    since_ms = int(since.timestamp() * 1000)
    async with TopicTail(k, [k.results_topic], since_ms=since_ms) as tail:
        async for message in tail.to_end():
            if message.key not in keys or message.value is None:
                continue
            result = read_result(message.value)
            if result["status"] == "FAILED":
                continue  # a failure wrote nothing: it supersedes no letter
            completed = _moment(result["completed_at"].encode())
            if completed is not None and (message.key not in newest or completed > newest[message.key]):
                newest[message.key] = completed
    return newest


def _superseded(message: RawMessage, newest: dict[bytes, datetime]) -> bool:
    failed_at = _moment(header(message.headers, DlqHeader.FAILED_AT))
    later = newest.get(message.key or b"")
    return failed_at is not None and later is not None and later > failed_at


def _copy_bytes(message: RawMessage) -> int:
    """What the replayed copy weighs on the input topic: the letter's key, value and kept headers."""
    headers = replay_headers(message)
    return len(message.key or b"") + len(message.value or b"") + sum(len(n) + len(v) + 2 for n, v in headers) + 256


def _judge(
    letters: list[RawMessage], done: set[bytes], rules: ReplayFilter, input_bytes: int
) -> tuple[list[RawMessage], ReplayPlan]:
    """The letters the filters choose (once each), and the verdict on the others."""
    plan = ReplayPlan()
    chosen: list[RawMessage] = []
    seen: set[bytes] = set()
    for message in letters:
        named = letter_id(message)
        if named in done:
            verdict = "already_replayed"
        elif named in seen:
            verdict = "duplicate"  # the same event dead-lettered twice (at least once): replayed once
        else:
            verdict = rules.selects(message)
        if verdict == "replay" and _copy_bytes(message) > input_bytes:
            verdict = "too_large"  # its copy would not fit the input topic: the letter stays for an operator
        seen.add(named)
        if verdict == "replay":
            chosen.append(message)
        else:
            plan.note(message, verdict)
    return chosen, plan


async def plan_replay(settings: Settings, rules: ReplayFilter) -> tuple[list[RawMessage], ReplayPlan]:
    """The letters to replay, in order, and the verdict on every letter of the dead-letter topic."""
    k = settings.kafka
    done = await _replayed(settings)
    input_bytes = (await max_message_bytes(k, [k.input_topic])).get(k.input_topic, k.max_message_bytes)
    chosen, plan = _judge(await _read(k, k.dlq_topic), done, rules, input_bytes)
    if chosen and not rules.include_superseded:
        failed = [t for t in (_moment(header(m.headers, DlqHeader.FAILED_AT)) for m in chosen) if t is not None]
        earliest = min(failed, default=datetime.now(UTC))
        newest = await _newest_results(settings, {m.key for m in chosen if m.key}, earliest)
        for message in [m for m in chosen if _superseded(m, newest)]:
            plan.note(message, "superseded")
        chosen = [m for m in chosen if not _superseded(m, newest)]
    for message in chosen[rules.limit :] if rules.limit is not None else []:
        plan.note(message, "over_limit")
    chosen = chosen[: rules.limit] if rules.limit is not None else chosen
    for message in chosen:
        plan.note(message, "replay")
    return chosen, plan


def _producer(settings: Settings) -> Any:  # noqa: ANN401 - aiokafka's producer
    k = settings.kafka
    return AIOKafkaProducer(
        **client_options(k),
        client_id=f"{k.client_id}-replay",
        # One id for every run: a run fences any other still going (its open transaction aborts) before it
        # reads what was replayed, so two runs never both replay a letter.
        transactional_id=f"{k.group_id}-replay",
        enable_idempotence=True,
        max_request_size=k.max_message_bytes + DLQ_HEADROOM_BYTES,
    )


async def _in_transactions(producer: Any, settings: Settings, chosen: list[RawMessage]) -> None:  # noqa: ANN401
    """Each letter to the input topic and its record to the replayed topic, together or not at all."""
    try:
        for start in range(0, len(chosen), CHUNK):
            async with producer.transaction():
                await _send_chunk(producer, settings, chosen[start : start + CHUNK])
    except KafkaError as exc:
        raise FatalError(f"replay could not write to {settings.kafka.input_topic}: {exc}") from exc


async def _send_chunk(producer: Any, settings: Settings, chunk: list[RawMessage]) -> None:  # noqa: ANN401
    k = settings.kafka
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    sends: list[Awaitable[Any]] = []
    for message in chunk:
        sends.append(
            await producer.send(k.input_topic, value=message.value, key=message.key, headers=replay_headers(message))
        )
        record = orjson.dumps({"replayed_at": now, "to": k.input_topic})
        sends.append(await producer.send(replayed_topic(settings), value=record, key=letter_id(message)))
    for sent in sends:
        await sent


async def replay(
    settings: Settings,
    rules: ReplayFilter,
    *,
    dry_run: bool,
    console: Console | None = None,
) -> Counter[str]:
    """Replay what `rules` select; returns counts by verdict. A dry run publishes nothing and shows its plan."""
    console = console or Console(stderr=True)
    if dry_run:
        chosen, plan = await plan_replay(settings, rules)
    else:
        producer = _producer(settings)
        try:
            await producer.start()  # fences another run before this one reads what was replayed
            chosen, plan = await plan_replay(settings, rules)
            await _in_transactions(producer, settings, chosen)
        except KafkaError as exc:
            raise FatalError(f"replay could not start its transactions: {exc}") from exc
        finally:
            await producer.stop()
    _print_summary(console, plan, dry_run=dry_run, source=settings.kafka.dlq_topic, target=settings.kafka.input_topic)
    return plan.counts


_LABELS: Final = {
    "replay": ("would be replayed", "replayed"),
    "already_replayed": ("skipped: replayed by an earlier run",) * 2,
    "superseded": ("skipped: a newer result exists for its key (--include-superseded)",) * 2,
    "other_reason": ("skipped: another reason",) * 2,
    "other_code": ("skipped: another code",) * 2,
    "other_key": ("skipped: another key",) * 2,
    "outside_window": ("skipped: outside --since/--until",) * 2,
    "max_replays": ("skipped: replayed --max-replays times already",) * 2,
    "over_limit": ("left for a later run: over --limit",) * 2,
    "duplicate": ("skipped: the same event's other letter is replayed",) * 2,
    "value_omitted": ("skipped: written without its value (find it by its source)",) * 2,
    "too_large": ("skipped: its copy would not fit the input topic",) * 2,
}


def _print_summary(console: Console, plan: ReplayPlan, *, dry_run: bool, source: str, target: str) -> None:
    table = Table(title=f"replay {source} -> {target}" + (" (dry run: nothing published)" if dry_run else ""))
    table.add_column("dead letters")
    table.add_column("count", justify="right")
    for verdict, labels in _LABELS.items():
        table.add_row(labels[0 if dry_run else 1], f"{plan.counts.get(verdict, 0):,}")
    table.add_row("read", f"{sum(plan.counts.values()):,}")
    console.print(table)
    if dry_run and plan.shown:
        letters = Table(title=f"the first {len(plan.shown)} dead letters and what a run would do with each")
        for column in ("letter (source topic/partition/offset)", "key", "verdict"):
            letters.add_column(column)
        for row in plan.shown:
            letters.add_row(*row)
        console.print(letters)
