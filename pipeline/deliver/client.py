"""One attempt of one Marketo call over HTTP: sign, post, classify what comes back."""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from typing import Final

import aiohttp

from pipeline.errors import PermanentError, RetryableError
from pipeline.marketo.document import ResponseError
from pipeline.marketo.envelope import SoapRequest, build_envelope
from pipeline.marketo.fault import AccessFaultError, Fault, RequestExpiredError
from pipeline.marketo.namespace import CONTENT_TYPE, soap_action
from pipeline.marketo.response import RecordOutcome, parse_reply
from pipeline.marketo.signing import Credentials

_ACCESS_STATUSES: Final = frozenset({401, 403, 404})


class TransportError(RetryableError):
    """The call did not get a usable answer: timeout, reset, HTTP error. `reason` is a bounded metric label."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message, reason=reason)


class CallRejectedError(PermanentError):
    """An HTTP status that says the request as a whole will never be accepted (e.g. 413 too large)."""


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


class MarketoClient:
    """Posts signed envelopes to one endpoint through one shared aiohttp session."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        endpoint: str,
        credentials: Credentials,
        *,
        timeout_s: float,
        max_response_bytes: int,
    ) -> None:
        self._session = session
        self._endpoint = endpoint
        self._credentials = credentials
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._max_response_bytes = max_response_bytes

    async def call(self, request: SoapRequest, *, expected: int) -> list[RecordOutcome]:
        """One attempt, freshly signed; raises the classified error for anything but a usable reply."""
        body = build_envelope(request, self._credentials)
        headers = {"Content-Type": CONTENT_TYPE, "SOAPAction": soap_action(request.operation.value)}
        try:
            async with self._session.post(
                self._endpoint, data=body, headers=headers, timeout=self._timeout
            ) as response:
                status = response.status
                reply = await read_body(response.content, self._max_response_bytes)
                date = response.headers.get("Date")
        except TimeoutError as exc:
            raise TransportError("timeout", f"no reply within {self._timeout.total}s") from exc
        except (aiohttp.ClientError, ConnectionError) as exc:
            raise TransportError("connection", f"{type(exc).__name__}: {exc}") from exc
        try:
            return self._interpret(request, status, reply, expected)
        except RequestExpiredError as exc:
            exc.clock_skew_s = clock_skew_s(date)
            raise

    def _interpret(self, request: SoapRequest, status: int, reply: bytes, expected: int) -> list[RecordOutcome]:
        if status in _ACCESS_STATUSES:
            raise AccessFaultError(Fault(None, f"HTTP {status} from the Marketo endpoint"))
        if status == 413:  # noqa: PLR2004
            raise CallRejectedError("HTTP 413: the request is too large")
        try:
            return parse_reply(request.operation, reply, expected=expected, max_bytes=self._max_response_bytes)
        except ResponseError as exc:
            if status >= 500 or status == 429:  # noqa: PLR2004
                raise TransportError(f"http_{status}", f"HTTP {status}: {exc}") from exc
            raise TransportError("bad_response", f"HTTP {status}: {exc}") from exc
