"""Marketo's day turns at midnight America/Chicago, daylight saving included."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipeline.marketo.day import marketo_day, seconds_to_next_day


@pytest.mark.parametrize(
    ("now", "hours"),
    [
        (datetime(2026, 6, 1, 5, 0, tzinfo=UTC), 24.0),  # midnight CDT: a whole day ahead
        (datetime(2026, 3, 8, 6, 0, tzinfo=UTC), 23.0),  # the clocks go forward that night: a 23-hour day
        (datetime(2026, 11, 1, 5, 0, tzinfo=UTC), 25.0),  # they go back: a 25-hour day
        (datetime(2026, 12, 2, 17, 30, tzinfo=UTC), 12.5),  # 11:30 CST
    ],
)
def test_the_pause_for_a_spent_quota_ends_at_marketos_next_midnight(now: datetime, hours: float) -> None:
    assert seconds_to_next_day(now) == hours * 3600


def test_marketos_date_is_chicagos_not_utcs() -> None:
    assert marketo_day(datetime(2026, 12, 2, 3, 0, tzinfo=UTC)) == "2026-12-01"
    assert marketo_day(datetime(2026, 12, 2, 6, 0, tzinfo=UTC)) == "2026-12-02"
