"""`marketo-pipeline replay`: dead letters back to the input topic, filtered, counted, never looped."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from pipeline.config import Settings
from pipeline.contract import DLQ_PREFIX, DlqHeader
from pipeline.ingest.dlq_reader import DeadLetterReader
from pipeline.offsets import PartitionId
from pipeline.outcome.producer import KafkaSink
from pipeline.records import DeadLetterReason, RawMessage


@dataclass(frozen=True, slots=True)
class ReplayFilter:
    """Which dead letters a run replays."""

    reason: DeadLetterReason | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int | None = None
    max_replays: int = 3

    def verdict(self, message: RawMessage) -> str:
        """`replay`, or why not: `other_reason`, `outside_window`, `max_replays`."""
        headers = dict(message.headers)
        if self.reason is not None and headers.get(DlqHeader.REASON) != self.reason.value.encode():
            return "other_reason"
        failed_at = _moment(headers.get(DlqHeader.FAILED_AT))
        if (self.since is not None and (failed_at is None or failed_at < self.since)) or (
            self.until is not None and (failed_at is None or failed_at >= self.until)
        ):
            return "outside_window"
        if _replays(headers) >= self.max_replays:
            return "max_replays"
        return "replay"


def _moment(value: bytes | None) -> datetime | None:
    try:
        return datetime.fromisoformat(value.decode()) if value else None
    except ValueError:
        return None


def _replays(headers: dict[str, bytes]) -> int:
    try:
        return int(headers.get(DlqHeader.REPLAYS, b"0"))
    except ValueError:
        return 0


def replay_headers(message: RawMessage) -> list[tuple[str, bytes]]:
    """The original headers (no dlq.* context) and `dlq.replays` one higher: the next dead letter carries it on."""
    headers = dict(message.headers)
    kept = [(name, value) for name, value in message.headers if not name.startswith(DLQ_PREFIX)]
    return [*kept, (DlqHeader.REPLAYS, str(_replays(headers) + 1).encode())]


def replay_group(settings: Settings, reason: DeadLetterReason | None) -> str:
    """Replay keeps its own position per reason, so one reason's run does not skip another's dead letters."""
    return f"{settings.kafka.group_id}-replay-{reason.value if reason else 'all'}"


async def replay(
    settings: Settings, rules: ReplayFilter, *, dry_run: bool, console: Console | None = None
) -> Counter[str]:
    """Replay what `rules` select; returns counts by verdict. A dry run publishes and commits nothing."""
    console = console or Console(stderr=True)
    k = settings.kafka
    counts: Counter[str] = Counter()
    positions: dict[PartitionId, int] = {}
    pending: list[asyncio.Future[Any]] = []
    async with (
        DeadLetterReader(
            bootstrap=k.bootstrap, topic=k.dlq_topic, group_id=replay_group(settings, rules.reason)
        ) as reader,
        KafkaSink(bootstrap=k.bootstrap, client_id=f"{k.client_id}-replay") as sink,
    ):
        total = await reader.backlog()
        columns = (TextColumn("replaying" if not dry_run else "reading (dry run)"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("dead letters", total=total)
            async for message in reader.messages():
                if rules.limit is not None and counts["replay"] >= rules.limit:
                    break
                verdict = rules.verdict(message)
                counts[verdict] += 1
                if verdict == "replay" and not dry_run:
                    pending.append(await sink.send(k.input_topic, message.key, message.value, replay_headers(message)))
                positions[(message.source.topic, message.source.partition)] = message.source.offset + 1
                progress.advance(task)
        if not dry_run:
            await asyncio.gather(*pending)
            await reader.commit(positions)
    _print_summary(console, counts, dry_run=dry_run, source=k.dlq_topic, target=k.input_topic)
    return counts


def _print_summary(console: Console, counts: Counter[str], *, dry_run: bool, source: str, target: str) -> None:
    table = Table(title=f"replay {source} -> {target}" + (" (dry run: nothing published)" if dry_run else ""))
    table.add_column("dead letters")
    table.add_column("count", justify="right")
    labels = {
        "replay": "would be replayed" if dry_run else "replayed",
        "other_reason": "skipped: another reason",
        "outside_window": "skipped: outside --since/--until",
        "max_replays": "skipped: replayed --max-replays times already",
    }
    for verdict, label in labels.items():
        table.add_row(label, f"{counts.get(verdict, 0):,}")
    table.add_row("read", f"{sum(counts.values()):,}")
    console.print(table)
