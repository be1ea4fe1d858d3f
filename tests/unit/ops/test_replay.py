from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipeline.contract import DlqHeader
from pipeline.ops.replay import ReplayFilter, replay_headers
from pipeline.records import DeadLetterReason, RawMessage, Source


def dead_letter(
    reason: str = "marketo_rejected", failed_at: str = "2026-11-23T12:00:00.000Z", replays: str = "0"
) -> RawMessage:
    headers = (
        ("trace", b"t-1"),
        (DlqHeader.REASON, reason.encode()),
        (DlqHeader.ERROR, b"boom"),
        (DlqHeader.FAILED_AT, failed_at.encode()),
        (DlqHeader.REPLAYS, replays.encode()),
    )
    return RawMessage(Source("leads.dlq", 0, 5), b"k", b"v", headers)


@pytest.mark.parametrize(
    ("rules", "message", "verdict"),
    [
        (ReplayFilter(), dead_letter(), "replay"),
        (ReplayFilter(reason=DeadLetterReason.INVALID_JSON), dead_letter(), "other_reason"),
        (ReplayFilter(reason=DeadLetterReason.MARKETO_REJECTED), dead_letter(), "replay"),
        (ReplayFilter(since=datetime(2026, 11, 23, 13, tzinfo=UTC)), dead_letter(), "outside_window"),
        (ReplayFilter(until=datetime(2026, 11, 23, 12, tzinfo=UTC)), dead_letter(), "outside_window"),
        (
            ReplayFilter(since=datetime(2026, 11, 23, 11, tzinfo=UTC), until=datetime(2026, 11, 23, 13, tzinfo=UTC)),
            dead_letter(),
            "replay",
        ),
        (ReplayFilter(max_replays=3), dead_letter(replays="2"), "replay"),
        (ReplayFilter(max_replays=3), dead_letter(replays="3"), "max_replays"),
    ],
)
def test_verdicts(rules: ReplayFilter, message: RawMessage, verdict: str) -> None:
    assert rules.verdict(message) == verdict


def test_a_replayed_event_keeps_its_headers_and_counts_one_more_replay() -> None:
    assert replay_headers(dead_letter(replays="2")) == [("trace", b"t-1"), (DlqHeader.REPLAYS, b"3")]
