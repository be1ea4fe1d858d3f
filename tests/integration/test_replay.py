"""`marketo-pipeline replay` on the real broker."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from devkit.kafka import Topics, publish, read_all, wait_for
from devkit.service import RunningService
from devkit.simulator import SimClient
from pipeline.config import Settings
from pipeline.contract import DlqHeader
from pipeline.ops.replay import ReplayFilter, replay
from pipeline.records import DeadLetterReason
from tests.integration.conftest import pipeline_settings
from tests.integration.helpers import events

pytestmark = pytest.mark.integration


def _letter(n: int, reason: str, failed_at: str, replays: int = 0) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    value = orjson.dumps({"event_id": f"evt-{n}", "lead": {"Email": f"r{n}@example.com"}})
    headers = [
        ("origin", b"crm"),
        (DlqHeader.REASON, reason.encode()),
        (DlqHeader.ERROR, b"x"),
        (DlqHeader.FAILED_AT, failed_at.encode()),
        (DlqHeader.REPLAYS, str(replays).encode()),
    ]
    return f"email:r{n}@example.com".encode(), value, headers


async def _publish_letters(
    bootstrap: str, topic: str, letters: list[tuple[bytes, bytes, list[tuple[str, bytes]]]]
) -> None:
    for key, value, headers in letters:
        await publish(bootstrap, topic, [(key, value)], headers=headers)


def _settings(bootstrap: str, topics: Topics) -> Settings:
    return Settings(
        kafka={
            "bootstrap": bootstrap,
            "input_topic": topics.input,
            "results_topic": topics.results,
            "dlq_topic": topics.dlq,
            "group_id": topics.group,
        }
    )


async def test_replay_filters_counts_and_keeps_its_position(kafka_bootstrap: str, topics: Topics) -> None:
    await _publish_letters(
        kafka_bootstrap,
        topics.dlq,
        [
            _letter(1, "marketo_rejected", "2026-11-23T10:00:00.000Z"),
            _letter(2, "marketo_rejected", "2026-11-23T12:00:00.000Z"),
            _letter(3, "retries_exhausted", "2026-11-23T12:00:00.000Z"),
            _letter(4, "marketo_rejected", "2026-11-23T12:30:00.000Z", replays=3),
            _letter(5, "marketo_rejected", "2026-11-23T13:00:00.000Z"),
        ],
    )
    settings = _settings(kafka_bootstrap, topics)
    rules = ReplayFilter(
        reason=DeadLetterReason.MARKETO_REJECTED, since=datetime(2026, 11, 23, 11, tzinfo=UTC), max_replays=3
    )
    dry = await replay(settings, rules, dry_run=True)
    assert dry == {"replay": 2, "other_reason": 1, "outside_window": 1, "max_replays": 1}
    assert (await read_all(kafka_bootstrap, topics.input)).values == []

    counts = await replay(settings, rules, dry_run=False)
    assert counts["replay"] == 2
    replayed = await read_all(kafka_bootstrap, topics.input)
    assert sorted(v["event_id"] for v in replayed.values) == ["evt-2", "evt-5"]
    for headers in replayed.headers:
        assert headers[DlqHeader.REPLAYS] == b"1"
        assert headers["origin"] == b"crm"
        assert DlqHeader.REASON not in headers
    assert sorted(key or b"" for key in replayed.keys) == [b"email:r2@example.com", b"email:r5@example.com"]

    again = await replay(settings, rules, dry_run=False)
    assert sum(again.values()) == 0, "nothing is read twice by the same replay position"
    # Another reason has its own position: the retries_exhausted dead letter is still there for it.
    others = await replay(settings, ReplayFilter(reason=DeadLetterReason.RETRIES_EXHAUSTED, limit=10), dry_run=False)
    assert others["replay"] == 1


async def test_a_fixed_dead_letter_flows_through_the_pipeline_and_a_hopeless_one_is_not_looped(
    kafka_bootstrap: str, topics: Topics, sim: SimClient
) -> None:
    await sim.configure(lead_fields=["FirstName"])
    bodies = [
        {
            "_key": "email:ok@example.com",
            "event_id": "evt-ok",
            "lead": {"Email": "ok@example.com", "attributes": {"FirstName": "A"}},
        },
        {
            "_key": "email:fix@example.com",
            "event_id": "evt-fix",
            "lead": {"Email": "fix@example.com", "attributes": {"Shoe": "9"}},
        },
    ]
    settings = pipeline_settings(kafka_bootstrap, topics, sim, dedupe={"window_ms": 50}, batch={"max_wait_ms": 50})

    async def letters(count: int) -> Any:
        collected = await read_all(kafka_bootstrap, topics.dlq, json_values=False)
        return collected if len(collected.raw) >= count else None

    async def results(count: int) -> Any:
        collected = await read_all(kafka_bootstrap, topics.results)
        return collected.values if len(collected.values) >= count else None

    async with RunningService(settings):
        await publish(kafka_bootstrap, topics.input, events(bodies))
        first = await wait_for(lambda: letters(1), what="the rejected event's dead letter")
        assert first.headers[0][DlqHeader.REASON] == b"marketo_rejected"

        # Replayed while Marketo still refuses the field: it fails again, with dlq.replays 1.
        assert (await replay(settings, ReplayFilter(max_replays=1), dry_run=False))["replay"] == 1
        second = await wait_for(lambda: letters(2), what="the second dead letter")
        assert second.headers[1][DlqHeader.REPLAYS] == b"1"
        # Replayed max-replays times already: skipped, not looped.
        assert (await replay(settings, ReplayFilter(max_replays=1), dry_run=False)) == {"max_replays": 1}

        # Marketo learns the field; a replay with more patience delivers it through the normal pipeline.
        await sim.configure(lead_fields=None)
        assert (
            await replay(settings, ReplayFilter(max_replays=3, reason=DeadLetterReason.MARKETO_REJECTED), dry_run=False)
        )["replay"] == 2
        found = await wait_for(lambda: results(4), what="the replayed event's result")
    # Positions are kept per --reason: this run read both dead letters of evt-fix, and the two copies merged.
    fixed = [r for r in found if r["status"] == "CREATED" and "evt-fix" in r["event_ids"]]
    assert [r["event_ids"] for r in fixed] == [["evt-fix", "evt-fix"]]
    stored = {lead["Email"] for lead in (await sim.admin("leads"))["leads"]}
    assert stored == {"ok@example.com", "fix@example.com"}
