"""Marketo's per-instance call limits, kept on our side so Marketo never has to refuse a call for them."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from pipeline.marketo.day import marketo_day, seconds_to_next_day

WINDOW_S = 20.0
# A call's start is stamped here before it crosses the network, and Marketo stamps its arrival: the
# margin (1.25% of the window) absorbs the difference, so the two never disagree about a window.
MARGIN_S = 0.25


class RateGovernor:
    """At most `calls_per_window` call starts in any rolling 20 s, and `daily_quota` per Marketo day.

    Marketo's day turns at midnight America/Chicago (pipeline.marketo.day). A call Marketo does not count gives its
    slot back (`refund`); a quota Marketo says is spent is spent here too (`spend_day`).

    Callers wait in FIFO order; `acquire` returns how long the caller waited.
    """

    def __init__(
        self,
        *,
        calls_per_window: int,
        daily_quota: int,
        clock: Callable[[], float] = time.monotonic,
        day: Callable[[], str] = marketo_day,
    ) -> None:
        self.calls_per_window = calls_per_window
        self.daily_quota = daily_quota
        self._clock = clock
        self._day = day
        self._starts: deque[float] = deque()
        self._quota_day = day()
        self._quota_used = 0
        self._lock = asyncio.Lock()
        self.waited_s = 0.0

    @property
    def quota_remaining(self) -> int:
        """Calls left today by our own count."""
        self._roll_day()
        return max(self.daily_quota - self._quota_used, 0)

    def _roll_day(self) -> None:
        today = self._day()
        if today != self._quota_day:
            self._quota_day, self._quota_used = today, 0

    def delay(self) -> float:
        """Seconds until a call may start (0 when it may start now); the quota's wait is to Marketo's midnight."""
        self._roll_day()
        if self._quota_used >= self.daily_quota:
            return max(seconds_to_next_day(), 1.0)
        now = self._clock()
        while self._starts and self._starts[0] + WINDOW_S + MARGIN_S <= now:
            self._starts.popleft()
        if len(self._starts) < self.calls_per_window:
            return 0.0
        return self._starts[0] + WINDOW_S + MARGIN_S - now

    async def acquire(self) -> float:
        """Wait for a slot and take it."""
        started = self._clock()
        async with self._lock:
            # Nothing but time frees a slot, so a timed sleep is the right wait here.
            while (wait := self.delay()) > 0:  # noqa: ASYNC110
                await asyncio.sleep(min(wait, 60.0))
            self._starts.append(self._clock())
            self._quota_used += 1
        waited = self._clock() - started
        self.waited_s += waited
        return waited

    def refund(self) -> None:
        """Marketo did not count a call: its slot is free again (the newest start goes, which frees none early)."""
        if self._starts:
            self._starts.pop()
        self._quota_used = max(self._quota_used - 1, 0)

    def spend_day(self) -> None:
        """Marketo says the day's quota is spent, whatever our count: nothing more starts until its day turns."""
        self._roll_day()
        self._quota_used = max(self._quota_used, self.daily_quota)
