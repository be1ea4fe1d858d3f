"""Marketo's per-instance limits as the simulator enforces them: concurrency, calls per 20 s, daily quota."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from pipeline.marketo.day import marketo_day
from pipeline.sim.settings import SimSettings

WINDOW_S = 20.0


class CallLimiter:
    """Admits a call or names the fault that refuses it; admitted calls must be released once."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, day: Callable[[], str] = marketo_day) -> None:
        self._clock = clock
        self._day = day  # Marketo's date, which turns at midnight America/Chicago
        self._recent: deque[float] = deque()
        self._quota_day = ""
        self._quota_used = 0
        self.in_flight = 0
        self.peak_concurrency = 0

    def admit(self, settings: SimSettings, arrived: float | None = None, *, refusals_count: bool = False) -> str | None:
        """None when the call may proceed (and it now counts), else the fault code: 20024, 20023 or 20015.

        `arrived` is when the request reached the server (this limiter's clock): calls count from their arrival.
        With `refusals_count` (REST: Adobe lists 606 and 615 among the codes that count), a call refused for
        concurrency or rate still counts against the window and the quota.
        """
        now = self._clock() if arrived is None else arrived
        while self._recent and self._recent[0] <= now - WINDOW_S:
            self._recent.popleft()
        refusal = None
        if settings.max_concurrency is not None and self.in_flight >= settings.max_concurrency:
            refusal = "20024"
        elif settings.calls_per_20s is not None and len(self._recent) >= settings.calls_per_20s:
            refusal = "20023"
        if refusal is not None:
            if refusals_count:
                self._recent.append(now)
                self._quota_used += 1
            return refusal
        today = self._day()
        if today != self._quota_day:
            self._quota_day, self._quota_used = today, 0
        if settings.daily_quota is not None and self._quota_used >= settings.daily_quota:
            return "20015"
        self._recent.append(now)
        self._quota_used += 1
        self.in_flight += 1
        self.peak_concurrency = max(self.peak_concurrency, self.in_flight)
        return None

    def refund(self, arrived: float) -> None:
        """An admitted call that Marketo does not count (604, 605, 608, 611 over REST): neither window nor quota."""
        try:
            self._recent.remove(arrived)
        except ValueError:
            return  # its window has passed already
        self._quota_used = max(self._quota_used - 1, 0)

    def release(self) -> None:
        """An admitted call has ended."""
        self.in_flight -= 1

    def reset(self) -> None:
        """Forget the window, the quota and the peak (calls in flight stay counted until they end)."""
        self._recent.clear()
        self._quota_used = 0
        self.peak_concurrency = self.in_flight

    @property
    def quota_used(self) -> int:
        """Calls admitted today."""
        return self._quota_used
