"""Marketo's day: its daily quotas turn at midnight in Marketo's time zone (America/Chicago), not UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

MARKETO_TZ: Final = ZoneInfo("America/Chicago")  # "resets daily at 12:00 AM CST" (rest-api.md)


def marketo_day(now: datetime | None = None) -> str:
    """Marketo's date at `now` (default: this moment), as YYYY-MM-DD: what a daily quota is counted by."""
    moment = datetime.now(UTC) if now is None else now
    return moment.astimezone(MARKETO_TZ).date().isoformat()


def seconds_to_next_day(now: datetime | None = None) -> float:
    """Seconds from `now` until Marketo's next midnight (daylight saving included)."""
    moment = (datetime.now(UTC) if now is None else now).astimezone(MARKETO_TZ)
    tomorrow = (moment + timedelta(days=1)).date()
    midnight = datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=MARKETO_TZ)
    # Aware datetimes of one zone subtract by wall clock: compare instants, so 23- and 25-hour days count right.
    return max(midnight.timestamp() - moment.timestamp(), 0.0)
