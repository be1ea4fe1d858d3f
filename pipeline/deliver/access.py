"""Whether Marketo accepts this client: closed by credentials and quota faults, opened by the next success."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

log = structlog.get_logger()


class AccessGate:
    """Sending waits while the gate is closed; the service is not ready while it is.

    A refused caller closes the gate, waits `retry_s`, and probes with its call again; every other caller waits
    for the gate to open, which the first accepted call does. `on_change` hears every change: 1 open, 0 closed.
    """

    def __init__(self, retry_s: float = 30.0, on_change: Callable[[int], None] | None = None) -> None:
        self.retry_s = retry_s
        self._on_change = on_change
        self._open = asyncio.Event()
        self._open.set()
        self.reason: str | None = None

    @property
    def is_open(self) -> bool:
        """True while Marketo accepts our calls."""
        return self._open.is_set()

    def close(self, reason: str) -> None:
        """Stop sending: Marketo refuses us for `reason`."""
        self.reason = reason
        if self._open.is_set():
            self._open.clear()
            if self._on_change is not None:
                self._on_change(0)

    def open(self) -> None:
        """Marketo accepted a call again."""
        self.reason = None
        if not self._open.is_set():
            self._open.set()
            if self._on_change is not None:
                self._on_change(1)

    async def wait_open(self) -> None:
        """Return once the gate is open."""
        await self._open.wait()

    async def refused(self, reason: str, *, operation: str) -> None:
        """Marketo refused a call of `operation` for `reason`: close, and return when it is time to probe."""
        log.warning("marketo_access_refused", operation=operation, error=reason)
        self.close(reason)
        await asyncio.sleep(self.retry_s)

    def accepted(self, *, operation: str) -> None:
        """Marketo accepted a call of `operation`: open the gate if it was closed."""
        if not self.is_open:
            log.info("marketo_access_restored", operation=operation)
            self.open()
