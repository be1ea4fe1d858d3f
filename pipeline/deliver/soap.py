"""The SOAP transport: signed envelopes posted to Marketo's SOAP endpoint, replies and faults read with lxml."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import aiohttp

from pipeline.deliver.http import CallRejectedError, TransportError, clock_skew_s, read_body
from pipeline.deliver.transport import FollowUp
from pipeline.errors import PipelineError
from pipeline.marketo.call import Encoded, Refusal
from pipeline.marketo.soap.document import ResponseError
from pipeline.marketo.soap.envelope import (
    SoapRequest,
    UnencodableRecordError,
    build_envelope,
    sync_lead_request,
    sync_mobjects_request,
    sync_multiple_leads_request,
)
from pipeline.marketo.soap.fault import AccessFaultError, Fault, RequestExpiredError
from pipeline.marketo.soap.namespace import CONTENT_TYPE, soap_action
from pipeline.marketo.soap.response import parse_reply
from pipeline.marketo.soap.signing import Credentials
from pipeline.records import Operation, Record, RecordOutcome, Route, SyncOperation

_ACCESS_STATUSES: Final = frozenset({401, 403, 404})


def build_request(
    operation: Operation, records: Sequence[Record], mobject_operation: SyncOperation | None, *, dedup_enabled: bool
) -> SoapRequest:
    """The body of the call that carries `records`; raises UnencodableRecordError naming a record XML cannot carry."""
    if operation is Operation.SYNC_MOBJECTS:
        mobjects = [r.mobject for r in records if r.mobject is not None]
        return sync_mobjects_request(mobjects, operation=mobject_operation or SyncOperation.UPSERT)
    leads = [r.lead for r in records if r.lead is not None]
    if operation is Operation.SYNC_LEAD:
        record = records[0]
        return sync_lead_request(leads[0], return_lead=record.return_lead, workspace=record.workspace)
    return sync_multiple_leads_request(leads, dedup_enabled=dedup_enabled)


class SoapTransport:
    """Posts signed envelopes to one endpoint through the service's aiohttp session."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        endpoint: str,
        credentials: Credentials,
        *,
        timeout_s: float,
        max_response_bytes: int,
        dedup_enabled: bool = True,
    ) -> None:
        self._session = session
        self._endpoint = endpoint
        self._credentials = credentials
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._max_response_bytes = max_response_bytes
        self._dedup_enabled = dedup_enabled

    def prelude(self, _records: Sequence[Record]) -> SoapRequest | None:
        """SOAP needs nothing before a call."""
        return None

    def prelude_failed(self) -> bool:
        """Never asked: SOAP has no prelude."""
        return False

    def encode(self, route: Route, records: Sequence[Record]) -> Encoded[SoapRequest]:
        """The envelope body for `records`; a record XML cannot carry is refused alone, never the call."""
        operation = Operation(route.operation)
        sendable = list(range(len(records)))
        refused: list[Refusal] = []
        while sendable:
            chosen = [records[i] for i in sendable]
            mobject_operation = chosen[0].mobject_operation
            try:
                request = build_request(operation, chosen, mobject_operation, dedup_enabled=self._dedup_enabled)
            except UnencodableRecordError as exc:  # validation at ingest should have caught it
                refused.append(Refusal(sendable.pop(exc.index), None, str(exc)))
                continue
            return Encoded(request, tuple(sendable), tuple(refused))
        return Encoded(None, (), tuple(refused))

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

    def follow_ups(
        self, _request: SoapRequest, _records: Sequence[Record], _outcomes: Sequence[RecordOutcome]
    ) -> list[FollowUp]:
        """A SOAP call does all its work at once."""
        return []

    def settle(
        self, _follow: FollowUp, outcome: RecordOutcome, _extra: RecordOutcome | None, _error: PipelineError | None
    ) -> RecordOutcome:
        """Never called: SOAP calls have no follow-ups."""
        return outcome

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
