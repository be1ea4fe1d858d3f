from __future__ import annotations

import random

import pytest

from pipeline.deliver.backoff import backoff_s
from pipeline.deliver.governor import MARGIN_S, WINDOW_S, RateGovernor


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
