"""Whether Marketo accepts this client: closed by credentials and quota faults, opened by the next success."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import structlog

log = structlog.get_logger()

MAX_PAUSE_S = 900.0


class AccessGate:
    """Sending waits while the gate is closed; the service is not ready while it is.

    While closed, one caller every `retry_s` is let through to probe with its call, whoever it is: a prober that
    gives up (its retry budget spent on transient errors) cannot leave the others waiting for good. The first
    accepted call opens the gate. `on_change` hears every change: 1 open, 0 closed.
    """

    def __init__(
        self,
        retry_s: float = 30.0,
        on_change: Callable[[int], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.retry_s = retry_s
        self._on_change = on_change
        self._clock = clock
        self._open = asyncio.Event()
        self._open.set()
        self._next_probe = 0.0
        self._pause_s = 0.0  # the interval between probes of a pause for whole-call rejections, doubling
        self.reason: str | None = None

    @property
    def is_open(self) -> bool:
        """True while Marketo accepts our calls."""
        return self._open.is_set()

    def close(self, reason: str, *, after_s: float | None = None) -> None:
        """Stop sending: Marketo refuses us for `reason`; the next probe goes in `after_s` (default `retry_s`)."""
        self.reason = reason
        self._next_probe = self._clock() + (self.retry_s if after_s is None else after_s)
        if self._open.is_set():
            self._open.clear()
            if self._on_change is not None:
                self._on_change(0)

    def pause(self, reason: str) -> None:
        """Marketo rejects every call as a whole: stop sending, and probe ever more rarely while it does.

        The first probe goes after `retry_s`, each next one after twice as long, up to `MAX_PAUSE_S`: a pause of a
        day spends a few dozen calls of the quota, not thousands.
        """
        self._pause_s = min(max(self._pause_s * 2, self.retry_s), MAX_PAUSE_S)
        log.warning("marketo_rejects_every_call", reason=reason, next_probe_s=self._pause_s)
        self.close(f"{reason}; sending paused", after_s=self._pause_s)

    def open(self) -> None:
        """Marketo accepted a call again."""
        self.reason = None
        self._pause_s = 0.0
        if not self._open.is_set():
            self._open.set()
            if self._on_change is not None:
                self._on_change(1)

    async def wait_open(self) -> None:
        """Return once the gate is open, or when it is this caller's turn to probe."""
        while not self._open.is_set():
            wait = self._next_probe - self._clock()
            if wait <= 0:
                self._next_probe = self._clock() + self.retry_s
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._open.wait(), wait)

    def refused(self, reason: str, *, operation: str, after_s: float | None = None) -> None:
        """Marketo refused a call of `operation` for `reason`: close the gate (the next probe in `after_s`)."""
        log.warning("marketo_access_refused", operation=operation, error=reason, next_probe_s=after_s)
        self.close(reason, after_s=after_s)

    def accepted(self, *, operation: str) -> None:
        """Marketo accepted a call of `operation`: open the gate if it was closed."""
        if not self.is_open:
            log.info("marketo_access_restored", operation=operation)
            self.open()
