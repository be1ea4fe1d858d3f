from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime

import pytest

from pipeline.deliver import governor as governor_module
from pipeline.deliver.backoff import backoff_s
from pipeline.deliver.governor import MARGIN_S, RAISE_AFTER_S, WINDOW_S, RateGovernor
from pipeline.marketo.day import marketo_day


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_calls_beyond_the_window_limit_wait_for_the_oldest_to_age_out() -> None:
    clock = Clock()
    governor = RateGovernor(calls_per_window=3, daily_quota=100, clock=clock)
    for _ in range(3):
        assert governor.delay() == 0
        await governor.acquire()
        clock.now += 1.0
    assert governor.delay() == pytest.approx(WINDOW_S + MARGIN_S - 3.0)
    clock.now = 100.0 + WINDOW_S + MARGIN_S
    assert governor.delay() == 0


async def test_the_daily_quota_counts_down_and_resets_with_the_day() -> None:
    day = ["2026-11-23"]
    governor = RateGovernor(calls_per_window=100, daily_quota=2, clock=Clock(), day=lambda: day[0])
    await governor.acquire()
    await governor.acquire()
    assert governor.quota_remaining == 0
    assert governor.delay() >= 1.0
    day[0] = "2026-11-24"
    assert governor.quota_remaining == 2
    assert governor.delay() == 0


def test_backoff_is_full_jitter_under_an_exponential_cap() -> None:
    rng = random.Random(1)
    for attempt in range(1, 12):
        ceiling = min(30.0, 0.2 * 2 ** (attempt - 1))
        samples = [backoff_s(attempt, base_s=0.2, cap_s=30.0, rng=rng) for _ in range(200)]
        assert all(0 <= s <= ceiling for s in samples)
        assert max(samples) > ceiling / 2


async def test_a_cut_share_applies_at_once_and_counts_the_calls_already_in_the_window() -> None:
    clock = Clock()
    governor = RateGovernor(calls_per_window=10, daily_quota=1000, clock=clock)
    for _ in range(6):
        await governor.acquire()
        governor.release()
    governor.limit(4, 2)
    assert (governor.calls_per_window, governor.max_in_flight) == (4, 2)
    # six calls are in the window and the share is four: the third oldest must age out before one more
    assert governor.delay() == pytest.approx(WINDOW_S + MARGIN_S)
    clock.now += WINDOW_S + MARGIN_S
    assert governor.delay() == 0


async def test_a_raised_share_waits_one_window_unless_told_it_may_start_at_once() -> None:
    clock = Clock()
    governor = RateGovernor(calls_per_window=2, daily_quota=1000, max_in_flight=1, clock=clock)
    governor.limit(6, 3)
    assert (governor.calls_per_window, governor.max_in_flight) == (2, 1)
    assert governor.pending_raise == (6, 3)
    clock.now += RAISE_AFTER_S - 0.1
    governor.delay()
    assert governor.calls_per_window == 2
    clock.now += 0.2
    governor.delay()
    assert (governor.calls_per_window, governor.max_in_flight) == (6, 3)
    assert governor.pending_raise is None
    governor.limit(0, 0, at_once=True)
    governor.limit(5, 2, at_once=True)
    assert (governor.calls_per_window, governor.max_in_flight) == (5, 2)


async def test_concurrency_beyond_the_share_waits_for_a_call_to_end() -> None:
    governor = RateGovernor(calls_per_window=100, daily_quota=1000, max_in_flight=2)
    await governor.acquire()
    await governor.acquire()
    third = asyncio.create_task(governor.acquire())
    await asyncio.sleep(0.05)
    assert not third.done()
    assert governor.in_flight == 2
    governor.release()
    await asyncio.wait_for(third, timeout=1.0)
    assert governor.in_flight == 2


async def test_a_raise_that_comes_due_wakes_a_waiting_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(governor_module, "RAISE_AFTER_S", 0.3)
    governor = RateGovernor(calls_per_window=100, daily_quota=1000, max_in_flight=1)
    governor.limit(100, 0)  # a cut to no concurrency at all
    waiting = asyncio.create_task(governor.acquire())
    await asyncio.sleep(0.05)
    governor.limit(100, 1)  # a raise: it comes due 0.3 s from now, and nothing else wakes the waiting call
    started = time.monotonic()
    await asyncio.wait_for(waiting, timeout=5.0)
    assert time.monotonic() - started >= 0.25


async def test_the_group_counts_the_day_together_and_seeded_starts_count_in_the_window() -> None:
    clock, wall = Clock(), Clock()
    wall.now = 1_000_000.0
    governor = RateGovernor(calls_per_window=3, daily_quota=10, clock=clock, wall=wall, day=lambda: "2026-12-02")
    governor.others_today("2026-12-02", 7)
    assert governor.quota_remaining == 3
    governor.others_today("2026-12-01", 7)  # yesterday's count is not today's
    assert governor.quota_remaining == 10
    governor.seed([wall.now - 1.0, wall.now - 2.0, wall.now - 30.0])  # the last one is out of any window
    await governor.acquire()
    assert governor.delay() == pytest.approx(WINDOW_S + MARGIN_S - 2.0)
    assert governor.recent_starts() == pytest.approx([wall.now - 2.0, wall.now - 1.0, wall.now])
    governor.spend_day()
    assert governor.quota_remaining == 0


async def test_a_call_given_up_while_it_waits_takes_no_slot() -> None:
    governor = RateGovernor(calls_per_window=100, daily_quota=1000, max_in_flight=1)
    governor.limit(100, 0)  # this member's share was cut to nothing
    abandoned = [False]
    waiting = asyncio.create_task(governor.acquire(given_up=lambda: abandoned[0]))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    abandoned[0] = True
    governor.wake()
    assert await asyncio.wait_for(waiting, timeout=1.0) is None
    assert governor.in_flight == 0
    assert governor.calls_today == 0


async def test_the_governors_day_is_marketos_it_turns_and_is_waited_for_at_midnight_in_chicago() -> None:
    wall = [datetime(2026, 12, 2, 5, 0, tzinfo=UTC).timestamp()]  # 11 PM in Chicago, Dec 1st

    def moment() -> datetime:
        return datetime.fromtimestamp(wall[0], UTC)

    governor = RateGovernor(
        calls_per_window=100, daily_quota=1, clock=Clock(), wall=lambda: wall[0], day=lambda: marketo_day(moment())
    )
    await governor.acquire()
    governor.release()
    assert governor.quota_remaining == 0
    # spent: the wait is to Chicago's midnight (06:00 UTC), an hour, not to UTC's (19 hours)
    assert governor.delay() == pytest.approx(3600.0)
    wall[0] = datetime(2026, 12, 2, 6, 0, tzinfo=UTC).timestamp()
    assert governor.quota_remaining == 1
    assert governor.delay() == 0
