"""Whether Marketo accepts this client: closed by credentials and quota faults, opened by the next success."""

from __future__ import annotations

import asyncio


class AccessGate:
    """Sending waits while the gate is closed; the service is not ready while it is."""

    def __init__(self) -> None:
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
        self._open.clear()

    def open(self) -> None:
        """Marketo accepted a call again."""
        self.reason = None
        self._open.set()

    async def wait_open(self) -> None:
        """Return once the gate is open."""
        await self._open.wait()
