from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipeline.contract import DlqHeader
from pipeline.ops.replay import ReplayFilter, letter_code, letter_id, replay_headers
from pipeline.records import DeadLetterReason, RawMessage, Source


def dead_letter(
    reason: str = "marketo_rejected",
    failed_at: str = "2026-11-23T12:00:00.000Z",
    replays: str = "0",
    error: bytes = b"boom",
    code: bytes | None = None,
) -> RawMessage:
    headers = [
        ("trace", b"t-1"),
        (DlqHeader.REASON, reason.encode()),
        (DlqHeader.ERROR, error),
        (DlqHeader.FAILED_AT, failed_at.encode()),
        (DlqHeader.REPLAYS, replays.encode()),
        (DlqHeader.SOURCE_TOPIC, b"leads.changes"),
        (DlqHeader.SOURCE_PARTITION, b"2"),
        (DlqHeader.SOURCE_OFFSET, b"41"),
    ]
    if code is not None:
        headers.append((DlqHeader.ERROR_CODE, code))
    return RawMessage(Source("leads.dlq", 0, 5), b"email:a@x.com", b"v", tuple(headers))


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
        # A letter written with a naive time (an older writer, or by hand) is compared as UTC, not an error.
        (
            ReplayFilter(since=datetime(2026, 11, 23, 11, tzinfo=UTC)),
            dead_letter(failed_at="2026-11-23T12:00:00"),
            "replay",
        ),
        (ReplayFilter(since=datetime(2026, 11, 23, 11)), dead_letter(), "replay"),  # noqa: DTZ001 - naive on purpose
        (ReplayFilter(max_replays=3), dead_letter(replays="2"), "replay"),
        (ReplayFilter(max_replays=3), dead_letter(replays="3"), "max_replays"),
        (ReplayFilter(code="20105"), dead_letter(code=b"20105"), "replay"),
        (ReplayFilter(code="20105"), dead_letter(code=b"20103"), "other_code"),
        (ReplayFilter(code="20105"), dead_letter(error=b"Marketo fault 20105: unknown fields"), "replay"),
        (ReplayFilter(key="email:a@x.com"), dead_letter(), "replay"),
        (ReplayFilter(key="email:b@x.com"), dead_letter(), "other_key"),
    ],
)
def test_verdicts(rules: ReplayFilter, message: RawMessage, verdict: str) -> None:
    assert rules.selects(message) == verdict


def test_a_letter_is_named_by_the_event_it_carries() -> None:
    assert letter_id(dead_letter()) == b"leads.changes/2/41"
    assert letter_code(dead_letter(code=b"20110")) == "20110"
    assert letter_code(dead_letter()) is None


def test_a_replayed_event_keeps_its_headers_and_counts_one_more_replay() -> None:
    assert replay_headers(dead_letter(replays="2")) == [("trace", b"t-1"), (DlqHeader.REPLAYS, b"3")]


def test_each_event_is_chosen_once_and_letters_without_their_value_or_too_large_stay() -> None:
    from pipeline.ops.replay import _judge  # noqa: PLC0415

    first = dead_letter()
    again = dead_letter()  # the same event dead-lettered twice (a crash between publishing and committing)
    omitted_headers = (*first.headers[:-1], (DlqHeader.SOURCE_OFFSET, b"42"), (DlqHeader.VALUE_OMITTED, b"true"))
    omitted = RawMessage(Source("leads.dlq", 0, 7), b"k", None, omitted_headers)
    large_headers = (*first.headers[:-1], (DlqHeader.SOURCE_OFFSET, b"43"))
    large = RawMessage(Source("leads.dlq", 0, 8), b"k", b"v" * 5000, large_headers)
    chosen, plan = _judge([first, again, omitted, large], set(), ReplayFilter(), input_bytes=4096)
    assert chosen == [first]
    assert plan.counts == {"duplicate": 1, "value_omitted": 1, "too_large": 1}
    chosen, plan = _judge([first], {b"leads.changes/2/41"}, ReplayFilter(), input_bytes=4096)
    assert (chosen, plan.counts) == ([], {"already_replayed": 1})
