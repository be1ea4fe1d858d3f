"""Marketo's per-instance call limits, kept on our side so Marketo never has to refuse a call for them.

Marketo counts calls per Marketo instance, not per process: when several processes share one instance, each holds
the part of the limits its group gives it (`limit`, from pipeline.deliver.budget) and counts the group's calls of
the day (`others_today`, from the budget topic).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from pipeline.marketo.day import marketo_day, seconds_to_next_day

WINDOW_S = 20.0
# A call's start is stamped here before it crosses the network, and Marketo stamps its arrival: the
# margin (1.25% of the window) absorbs the difference, so the two never disagree about a window.
MARGIN_S = 0.25
# How long a raised share waits: by then no window holds a call made under the previous split of the limits.
RAISE_AFTER_S = WINDOW_S + MARGIN_S


class RateGovernor:
    """Marketo's limits on our side: call starts per rolling 20 s, calls at once, calls per Marketo day.

    At most `calls_per_window` starts in any rolling 20 s, `max_in_flight` calls at once, and `daily_quota` calls
    per Marketo day, counted with the rest of the group's (`others_today`).

    Marketo's day turns at midnight America/Chicago (pipeline.marketo.day). A call Marketo does not count gives its
    slot back (`refund`); a quota Marketo says is spent is spent here too (`spend_day`).

    Callers wait in FIFO order; `acquire` returns how long the caller waited, and every acquired call is `release`d.
    """

    def __init__(
        self,
        *,
        calls_per_window: int,
        daily_quota: int,
        max_in_flight: int = 10,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        day: Callable[[], str] = marketo_day,
    ) -> None:
        self.calls_per_window = calls_per_window
        self.max_in_flight = max_in_flight
        self.daily_quota = daily_quota
        self._clock = clock
        self._wall = wall
        self._day = day
        self._starts: deque[float] = deque()
        self._quota_day = day()
        self._quota_used = 0
        self._spent_day: str | None = None
        self._others = (self._quota_day, 0)  # the rest of the group's calls on that Marketo day
        self._raise: tuple[float, int, int] | None = None  # (when, calls per window, in flight) still to come
        self._lock = asyncio.Lock()
        self._changed = asyncio.Event()
        self.in_flight = 0
        self.waited_s = 0.0

    # --- the group's share -----------------------------------------------------------------

    def limit(self, calls_per_window: int, max_in_flight: int, *, at_once: bool = False) -> None:
        """This process's part of Marketo's limits from now on.

        A cut applies at once. A raise waits one window (`RAISE_AFTER_S`) unless `at_once`: the calls the rest of
        the group made under the previous split may still be in Marketo's window, and are not in ours.
        """
        now_calls = calls_per_window if at_once else min(self.calls_per_window, calls_per_window)
        now_flight = max_in_flight if at_once else min(self.max_in_flight, max_in_flight)
        self.calls_per_window, self.max_in_flight = now_calls, now_flight
        wanted = (calls_per_window, max_in_flight)
        self._raise = None if wanted == (now_calls, now_flight) else (self._clock() + RAISE_AFTER_S, *wanted)
        self._changed.set()

    @property
    def pending_raise(self) -> tuple[int, int] | None:
        """The limits a raise will bring, while it waits."""
        return None if self._raise is None else self._raise[1:]

    def seed(self, starts: Iterable[float]) -> None:
        """Count calls another process started (wall-clock times) in our window, as if they were ours."""
        now, wall_now = self._clock(), self._wall()
        # a start "in the future" (the other clock ahead of ours) counts as now: it is in the window, no later
        moments = [now - max(wall_now - start, 0.0) for start in starts if wall_now - start < WINDOW_S + MARGIN_S]
        self._starts = deque(sorted([*self._starts, *moments]))

    def recent_starts(self) -> list[float]:
        """When (wall clock) the calls still in our window started."""
        offset = self._wall() - self._clock()
        return [start + offset for start in self._starts if start + WINDOW_S + MARGIN_S > self._clock()]

    def others_today(self, day: str, calls: int) -> None:
        """The rest of the group has made `calls` calls on Marketo's `day`, as the budget topic says."""
        self._others = (day, calls)
        self._changed.set()

    # --- the day's quota -------------------------------------------------------------------

    @property
    def calls_today(self) -> int:
        """Calls this process made on Marketo's current day."""
        self._roll_day()
        return self._quota_used

    @property
    def quota_remaining(self) -> int:
        """Calls left today by the group's count."""
        self._roll_day()
        if self._spent_day == self._quota_day:
            return 0
        day, others = self._others
        group = self._quota_used + (others if day == self._quota_day else 0)
        return max(self.daily_quota - group, 0)

    def _roll_day(self) -> None:
        today = self._day()
        if today != self._quota_day:
            self._quota_day, self._quota_used = today, 0

    # --- waiting for a call ----------------------------------------------------------------

    def _apply_due_raise(self) -> float | None:
        """Apply a raise whose time has come; else the seconds until it comes (None when none waits)."""
        if self._raise is None:
            return None
        due, calls, flight = self._raise
        left = due - self._clock()
        if left > 0:
            return left
        self.calls_per_window, self.max_in_flight, self._raise = calls, flight, None
        return None

    def delay(self) -> float:
        """Seconds until the rate and the quota let a call start (0 when it may start now).

        The quota's wait is to Marketo's midnight. Concurrency is not in it: a call ending frees that.
        """
        self._apply_due_raise()
        if self.quota_remaining <= 0:
            return max(seconds_to_next_day(datetime.fromtimestamp(self._wall(), UTC)), 1.0)
        now = self._clock()
        while self._starts and self._starts[0] + WINDOW_S + MARGIN_S <= now:
            self._starts.popleft()
        if len(self._starts) < self.calls_per_window:
            return 0.0
        if self.calls_per_window <= 0:
            return 60.0  # no share of the rate: only a new one (`limit`) lets a call start
        return self._starts[-self.calls_per_window] + WINDOW_S + MARGIN_S - now

    async def acquire(self, given_up: Callable[[], bool] = lambda: False) -> float | None:
        """Wait for a slot of the rate and one of the concurrency, and take both; the seconds waited.

        None, with no slot taken, once `given_up()` says the call is not wanted any more (checked at every `wake`):
        a member whose share was cut to nothing must not keep a revoked partition's call waiting for ever.
        """
        started = self._clock()
        async with self._lock:
            while True:
                if given_up():
                    return None
                wait = self.delay()
                if wait <= 0 and self.in_flight < self.max_in_flight:
                    break
                raise_in = self._apply_due_raise()
                timeout = min(wait if wait > 0 else 60.0, 60.0 if raise_in is None else raise_in)
                self._changed.clear()
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that meets a wake-up
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(timeout, 0.001)):
                        await self._changed.wait()
            self._starts.append(self._clock())
            self._quota_used += 1
            self.in_flight += 1
        waited = self._clock() - started
        self.waited_s += waited
        return waited

    def wake(self) -> None:
        """Have waiting callers look again (their call may have been given up)."""
        self._changed.set()

    def release(self) -> None:
        """An acquired call has ended (whatever its outcome): its concurrency slot is free."""
        self.in_flight = max(self.in_flight - 1, 0)
        self._changed.set()

    def refund(self) -> None:
        """Marketo did not count a call: its slot is free again (the newest start goes, which frees none early)."""
        if self._starts:
            self._starts.pop()
        self._quota_used = max(self._quota_used - 1, 0)
        self._changed.set()

    def spend_day(self) -> None:
        """Marketo says the day's quota is spent, whatever our count: nothing more starts until its day turns."""
        self._roll_day()
        self._spent_day = self._quota_day
