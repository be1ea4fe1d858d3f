from __future__ import annotations

from datetime import UTC, datetime

from pipeline.marketo.day import marketo_day
from pipeline.sim.limits import CallLimiter
from pipeline.sim.settings import SimSettings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_limits_off_admit_everything() -> None:
    limiter = CallLimiter()
    assert all(limiter.admit(SimSettings()) is None for _ in range(500))
    assert limiter.peak_concurrency == 500


def test_concurrency_limit_refuses_the_eleventh_call_and_frees_on_release() -> None:
    limiter = CallLimiter()
    settings = SimSettings(max_concurrency=10)
    assert [limiter.admit(settings) for _ in range(11)] == [None] * 10 + ["20024"]
    limiter.release()
    assert limiter.admit(settings) is None
    assert limiter.peak_concurrency == 10


def test_rate_limit_is_a_rolling_twenty_second_window() -> None:
    clock = Clock()
    limiter = CallLimiter(clock)
    settings = SimSettings(calls_per_20s=100)
    for _ in range(100):
        assert limiter.admit(settings) is None
        limiter.release()
        clock.now += 0.1
    assert limiter.admit(settings) == "20023"
    clock.now += 10.0  # the first call is now 20 s old
    assert limiter.admit(settings) is None
    assert limiter.admit(settings) == "20023"


def test_daily_quota() -> None:
    limiter = CallLimiter()
    settings = SimSettings(daily_quota=3)
    results = []
    for _ in range(4):
        results.append(limiter.admit(settings))
        limiter.release()
    assert results == [None, None, None, "20015"]
    limiter.reset()
    assert limiter.admit(settings) is None


def test_calls_count_from_their_arrival_not_from_when_they_were_read() -> None:
    clock = Clock()
    limiter = CallLimiter(clock)
    settings = SimSettings(calls_per_20s=1)
    assert limiter.admit(settings, arrived=clock.now - 0.3) is None  # read 300 ms after it arrived
    limiter.release()
    clock.now += 19.75  # 20.05 s after the first arrival, though only 19.75 s after it was read
    assert limiter.admit(settings, arrived=clock.now) is None


def test_the_daily_quota_turns_at_midnight_in_chicago_not_utc() -> None:
    # Marketo's day turns at 12:00 AM Central: 06:00 UTC in winter, 05:00 UTC in summer.
    now = [datetime(2026, 12, 2, 5, 0, tzinfo=UTC)]
    limiter = CallLimiter(Clock(), day=lambda: marketo_day(now[0]))
    settings = SimSettings(daily_quota=2)
    assert [limiter.admit(settings) for _ in range(3)] == [None, None, "20015"]
    now[0] = datetime(2026, 12, 2, 5, 30, tzinfo=UTC)  # still Dec 1st in Chicago
    assert limiter.admit(settings) == "20015"
    now[0] = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)  # midnight in Chicago
    assert limiter.admit(settings) is None
    assert limiter.quota_used == 1
    summer = [datetime(2026, 7, 1, 4, 59, tzinfo=UTC)]
    limiter = CallLimiter(Clock(), day=lambda: marketo_day(summer[0]))
    assert [limiter.admit(settings) for _ in range(3)] == [None, None, "20015"]
    summer[0] = datetime(2026, 7, 1, 5, 0, tzinfo=UTC)  # midnight CDT
    assert limiter.admit(settings) is None
