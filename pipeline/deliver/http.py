"""What both transports need of HTTP: reading a whole reply, the errors of the wire, the peer's clock."""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime

import aiohttp

from pipeline.errors import PermanentError, RetryableError


class TransportError(RetryableError):
    """The call did not get a usable answer: timeout, reset, HTTP error. `reason` is a bounded metric label.

    `counted` says whether Marketo may have counted the call against its limits (a call that reached it did).
    """

    def __init__(self, reason: str, message: str, *, counted: bool = True) -> None:
        super().__init__(message, reason=reason)
        self.counted = counted


class CallRejectedError(PermanentError):
    """An HTTP status that says the request as a whole will never be accepted as it is (413: too large).

    It splits: the records go again in smaller calls.
    """

    def __init__(self, message: str, *, counted: bool = True) -> None:
        super().__init__(message)
        self.counted = counted


def clock_skew_s(date: str | None) -> float | None:
    """This clock minus the one that wrote an HTTP `Date` header (whole seconds), or None without a readable one."""
    if not date:
        return None
    try:
        theirs = parsedate_to_datetime(date)
    except (TypeError, ValueError):
        return None
    if theirs.tzinfo is None:
        return None
    return round(time.time() - theirs.timestamp(), 1)


async def read_body(stream: aiohttp.StreamReader, max_bytes: int) -> bytes:
    """The whole body, however many pieces the network brings it in.

    Past `max_bytes` it stops reading and returns `max_bytes + 1` bytes, which the parser refuses as too large.
    """
    body = bytearray()
    async for chunk in stream.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > max_bytes:
            return bytes(body[: max_bytes + 1])
    return bytes(body)
