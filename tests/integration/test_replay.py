"""`marketo-pipeline replay` on the real broker."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from rich.console import Console

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


def _letter(
    n: int, reason: str, failed_at: str, replays: int = 0, code: bytes | None = None
) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    value = orjson.dumps({"event_id": f"evt-{n}", "lead": {"Email": f"r{n}@example.com"}})
    headers = [
        ("origin", b"crm"),
        (DlqHeader.REASON, reason.encode()),
        (DlqHeader.ERROR, b"x"),
        (DlqHeader.FAILED_AT, failed_at.encode()),
        (DlqHeader.REPLAYS, str(replays).encode()),
        (DlqHeader.SOURCE_TOPIC, b"leads.changes"),
        (DlqHeader.SOURCE_PARTITION, b"0"),
        (DlqHeader.SOURCE_OFFSET, str(n).encode()),
    ]
    if code is not None:
        headers.append((DlqHeader.ERROR_CODE, code))
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


async def _replayed_ids(bootstrap: str, topics: Topics) -> list[str]:
    return sorted(v["event_id"] for v in (await read_all(bootstrap, topics.input)).values)


async def test_filters_never_make_a_letter_unreachable_and_no_letter_is_replayed_twice(
    kafka_bootstrap: str, topics: Topics
) -> None:
    await _publish_letters(
        kafka_bootstrap,
        topics.dlq,
        [
            _letter(1, "marketo_rejected", "2026-11-23T10:00:00.000Z", code=b"20105"),
            _letter(2, "marketo_rejected", "2026-11-23T12:00:00.000Z", code=b"20105"),
            _letter(3, "retries_exhausted", "2026-11-23T12:00:00.000Z"),
            _letter(4, "marketo_rejected", "2026-11-23T12:30:00.000Z", replays=3),
            _letter(5, "marketo_rejected", "2026-11-23T13:00:00", code=b"20110"),  # a naive time: taken as UTC
        ],
    )
    settings = _settings(kafka_bootstrap, topics)
    rules = ReplayFilter(
        reason=DeadLetterReason.MARKETO_REJECTED, since=datetime(2026, 11, 23, 11, tzinfo=UTC), max_replays=3
    )
    dry = await replay(settings, rules, dry_run=True)
    assert dry == {"replay": 2, "other_reason": 1, "outside_window": 1, "max_replays": 1}
    assert await _replayed_ids(kafka_bootstrap, topics) == []

    assert (await replay(settings, rules, dry_run=False))["replay"] == 2
    replayed = await read_all(kafka_bootstrap, topics.input)
    assert sorted(v["event_id"] for v in replayed.values) == ["evt-2", "evt-5"]
    for headers in replayed.headers:
        assert headers[DlqHeader.REPLAYS] == b"1"
        assert headers["origin"] == b"crm"
        assert DlqHeader.REASON not in headers
    assert sorted(key or b"" for key in replayed.keys) == [b"email:r2@example.com", b"email:r5@example.com"]

    # The earlier rejected letter the window left out is still there for a run with other filters...
    by_code = await replay(settings, ReplayFilter(code="20105"), dry_run=False)
    assert (by_code["replay"], by_code["already_replayed"]) == (1, 2)
    # ...and a run that selects everything replays only what no run replayed: each letter at most once.
    everything = await replay(settings, ReplayFilter(max_replays=10), dry_run=False)
    assert (everything["replay"], everything["already_replayed"]) == (2, 3)
    assert await _replayed_ids(kafka_bootstrap, topics) == ["evt-1", "evt-2", "evt-3", "evt-4", "evt-5"]
    assert (await replay(settings, ReplayFilter(max_replays=10), dry_run=False))["replay"] == 0


async def test_a_letter_whose_key_has_a_newer_result_is_not_replayed_over_it(
    kafka_bootstrap: str, topics: Topics
) -> None:
    await _publish_letters(kafka_bootstrap, topics.dlq, [_letter(1, "retries_exhausted", "2026-11-23T10:00:00.000Z")])
    settings = _settings(kafka_bootstrap, topics)
    failed = {"key": "email:r1@example.com", "status": "FAILED", "event_ids": ["evt-8"], "sources": [],
              "operation": "syncMultipleLeads", "completed_at": "2026-11-23T10:30:00.000Z"}  # fmt: skip
    await publish(kafka_bootstrap, topics.results, [(b"email:r1@example.com", orjson.dumps(failed))])
    assert await replay(settings, ReplayFilter(), dry_run=True) == {"replay": 1}  # a failure wrote nothing newer
    newer = {**failed, "status": "UPDATED", "event_ids": ["evt-9"], "completed_at": "2026-11-23T11:00:00.000Z"}
    await publish(kafka_bootstrap, topics.results, [(b"email:r1@example.com", orjson.dumps(newer))])
    console = Console(record=True, width=200)
    assert await replay(settings, ReplayFilter(), dry_run=True, console=console) == {"superseded": 1}
    shown = console.export_text()
    assert "leads.changes/0/1" in shown
    assert "superseded" in shown
    assert (await replay(settings, ReplayFilter(), dry_run=False))["superseded"] == 1
    assert await _replayed_ids(kafka_bootstrap, topics) == []
    assert (await replay(settings, ReplayFilter(include_superseded=True), dry_run=False))["replay"] == 1
    assert await _replayed_ids(kafka_bootstrap, topics) == ["evt-1"]


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
        # The first letter was replayed already; the second was replayed max-replays times: skipped, not looped.
        skipped = await replay(settings, ReplayFilter(max_replays=1), dry_run=False)
        assert skipped == {"already_replayed": 1, "max_replays": 1}

        # Marketo learns the field; a replay with more patience delivers it through the normal pipeline, once.
        await sim.configure(lead_fields=None)
        patient = ReplayFilter(max_replays=3, reason=DeadLetterReason.MARKETO_REJECTED)
        assert (await replay(settings, patient, dry_run=False))["replay"] == 1
        found = await wait_for(lambda: results(4), what="the replayed event's result")
    fixed = [r for r in found if r["status"] == "CREATED" and "evt-fix" in r["event_ids"]]
    assert [r["event_ids"] for r in fixed] == [["evt-fix"]]
    stored = {lead["Email"] for lead in (await sim.admin("leads"))["leads"]}
    assert stored == {"ok@example.com", "fix@example.com"}
