"""Whether Marketo and this process agree on the time: requests signed here expire there (20016) when they do not."""

from __future__ import annotations

import structlog

log = structlog.get_logger()


class ClockCheck:
    """Set by a 20016 fault, cleared by the next accepted call; while set, the service says why it is not ready."""

    def __init__(self) -> None:
        self.problem: str | None = None

    def expired(self, skew_s: float | None, *, operation: str) -> None:
        """Marketo said a request of `operation` expired; `skew_s` is this clock minus Marketo's, when known."""
        seen = "unknown" if skew_s is None else f"{skew_s:+.1f} s"
        self.problem = f"Marketo says our requests expire (20016): this clock is {seen} off Marketo's"
        log.warning("marketo_request_expired", operation=operation, clock_skew_s=skew_s)

    def accepted(self) -> None:
        """A call went through: the clocks agree well enough."""
        if self.problem is not None:
            log.info("marketo_clock_agrees")
            self.problem = None
