"""The REST transport: Marketo's REST API over HTTP, with an access token, field names learned from Marketo.

Per batch: a Describe Lead first when a record names a field the map does not know (at most every
`DESCRIBE_EVERY_S`), the sync call, then its follow-ups: Associate Lead for each synced lead with a cookie, and one
Get Leads for the leads asked back (`return_lead`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Final

import aiohttp
from msgspec.structs import replace

from pipeline.deliver.http import CallRejectedError, TransportError, read_body
from pipeline.deliver.token import TokenSource
from pipeline.deliver.transport import FollowUp
from pipeline.errors import PipelineError
from pipeline.marketo.call import Encoded
from pipeline.marketo.rest.codes import RestAccessError, RestRejectedError, TokenRefusedError
from pipeline.marketo.rest.fields import DescribeError, FieldMap, parse_describe
from pipeline.marketo.rest.reply import RestReplyError, read_describe, read_done, read_leads, read_sync
from pipeline.marketo.rest.request import (
    MAX_BODY_BYTES,
    RestRequest,
    associate_request,
    build_request,
    describe_request,
    get_leads_request,
)
from pipeline.marketo.rest.route import RestRouting
from pipeline.records import Record, RecordOutcome, RecordStatus, RestOperation, Route

DESCRIBE_EVERY_S: Final = 60.0  # a name Marketo does not know asks it again at most this often
_ACCESS_STATUSES: Final = frozenset({401, 403, 404})  # 404: no REST API at this base URL: pause and say so
_SYNCS: Final = frozenset(
    {RestOperation.SYNC_LEADS, RestOperation.SYNC_OPPORTUNITIES, RestOperation.SYNC_OPPORTUNITY_ROLES}
)
_DONE: Final = RecordStatus.CREATED, RecordStatus.UPDATED


class RestTransport:
    """Builds, sends and reads REST calls for the delivery; one instance per service, shared by every worker."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        rest_endpoint: str,
        tokens: TokenSource,
        routing: RestRouting,
        *,
        timeout_s: float,
        max_response_bytes: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._session = session
        self._base = rest_endpoint.rstrip("/")
        self.tokens = tokens
        self.routing = routing
        self.fields = FieldMap()
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._max_response_bytes = max_response_bytes
        self._clock = clock
        self._described_at: float | None = None

    # --- what the delivery asks ------------------------------------------------------------------------------------

    def prelude(self, records: Sequence[Record]) -> RestRequest | None:
        """A Describe Lead to send before `records` when the map is empty, or names one of theirs it does not know."""
        described = self._described_at
        if described is None:
            return describe_request()
        if self._clock() - described < DESCRIBE_EVERY_S:
            return None
        unknown = any(
            self.fields.rest_name(name) is None
            for record in records
            if record.lead is not None
            for name, _ in record.lead.attributes
        )
        return describe_request() if unknown else None

    def prelude_failed(self) -> bool:
        """A Describe Lead failed: whether records may go on with the names known (unless none is known yet).

        An unknown name then fails its record alone, and Marketo is asked again no sooner than `DESCRIBE_EVERY_S`.
        """
        if not self.fields.learned:
            return False
        self._described_at = self._clock()
        return True

    def encode(self, route: Route, records: Sequence[Record]) -> Encoded[RestRequest]:
        """The call for `records` along `route`, refusing alone what REST cannot carry."""
        return build_request(route, records, self.fields, self.routing)

    async def call(self, request: RestRequest, *, expected: int) -> list[RecordOutcome]:
        """One attempt; raises the classified error for anything but a usable reply."""
        if len(request.body) > MAX_BODY_BYTES:  # Marketo would answer 413: split by size before sending
            msg = f"HTTP 413 (not sent): a body of {len(request.body)} bytes is over Marketo's 1 MB"
            raise CallRejectedError(msg, counted=False)
        token = await self.tokens.token()
        status, reply = await self._post(request, token)
        try:
            outcomes = self._read(request, status, reply, expected)
        except TokenRefusedError:
            self.tokens.refused(token)
            raise
        self.tokens.accepted()
        return outcomes

    def follow_ups(
        self, request: RestRequest, records: Sequence[Record], outcomes: Sequence[RecordOutcome]
    ) -> list[FollowUp]:
        """Associate Lead for each synced lead with a cookie; one Get Leads for the synced leads asked back."""
        if request.operation is not RestOperation.SYNC_LEADS:
            return []
        follow: list[FollowUp] = []
        returned: list[int] = []
        for position, (record, outcome) in enumerate(zip(records, outcomes, strict=True)):
            lead = record.lead
            if lead is None or outcome.status not in _DONE or outcome.lead_id is None:
                continue
            if lead.cookie is not None:
                follow.append(FollowUp(associate_request(outcome.lead_id, lead.cookie), (position,), "cookie"))
            if record.return_lead:
                returned.append(position)
        if returned:
            ids = [outcomes[p].lead_id or 0 for p in returned]
            names = {self.fields.rest_name(n) for p in returned for n, _ in records[p].lead.attributes}  # type: ignore[union-attr]
            fields = sorted(n for n in names if n is not None)
            if self.routing.fsp_field:
                fields.append(self.routing.fsp_field)
            follow.append(FollowUp(get_leads_request(ids, fields), tuple(returned), "lead"))
        return follow

    @staticmethod
    def settle(
        follow: FollowUp, outcome: RecordOutcome, extra: RecordOutcome | None, error: PipelineError | None
    ) -> RecordOutcome:
        """The record's outcome once its follow-up is done (`extra`) or failed for good (`error`)."""
        if error is not None:
            done = f"lead {outcome.lead_id} {outcome.status.value.lower()}"
            what = "its cookie was not associated" if follow.kind == "cookie" else "Marketo did not return it"
            return RecordOutcome(
                RecordStatus.FAILED,
                outcome.lead_id,
                error=f"{done}, but {what}: {error}",
                error_code=error.code,
                lead=outcome.lead,
            )
        if follow.kind == "lead" and extra is not None:
            return replace(outcome, lead=extra.lead)
        return outcome

    # --- the wire ----------------------------------------------------------------------------------------------------

    async def _post(self, request: RestRequest, token: str) -> tuple[int, bytes]:
        url = f"{self._base}{request.path}" + (f"?{request.query}" if request.query else "")
        headers = {"Authorization": f"Bearer {token}", "Content-Type": request.content_type}
        method = "GET" if request.operation is RestOperation.DESCRIBE_LEADS else "POST"
        try:
            async with self._session.request(
                method, url, data=request.body or None, headers=headers, timeout=self._timeout
            ) as response:
                return response.status, await read_body(response.content, self._max_response_bytes)
        except TimeoutError as exc:
            raise TransportError("timeout", f"no reply within {self._timeout.total}s") from exc
        except (aiohttp.ClientError, ConnectionError) as exc:
            raise TransportError("connection", f"{type(exc).__name__}: {exc}") from exc
        except ValueError as exc:  # a request aiohttp will not write (a header it refuses)
            raise TransportError("bad_request", f"{type(exc).__name__}: {exc}", counted=False) from exc

    def _read(self, request: RestRequest, status: int, reply: bytes, expected: int) -> list[RecordOutcome]:
        if status == 413:  # noqa: PLR2004
            raise CallRejectedError("HTTP 413: the request body is over Marketo's 1 MB")
        if status == 414:  # noqa: PLR2004  (a URI too long: a cookie or a query no retry can shorten)
            raise RestRejectedError("414", "HTTP 414: the request URI is too long")
        if status in _ACCESS_STATUSES:
            raise RestAccessError(None, f"HTTP {status} from the Marketo REST endpoint")
        if status >= 500 or status == 429:  # noqa: PLR2004
            raise TransportError(f"http_{status // 100}xx", f"HTTP {status} from the Marketo REST endpoint")
        if len(reply) > self._max_response_bytes:
            raise TransportError("bad_response", f"reply over {self._max_response_bytes} bytes")
        try:
            return self._outcomes(request, reply, expected)
        except (RestReplyError, DescribeError) as exc:
            raise TransportError("bad_response", f"HTTP {status}: {exc}") from exc

    def _outcomes(self, request: RestRequest, reply: bytes, expected: int) -> list[RecordOutcome]:
        operation = request.operation
        if operation in _SYNCS:
            return read_sync(reply, expected=expected, operation=operation, action=request.action)
        if operation is RestOperation.GET_LEADS:
            return read_leads(reply, request.lead_ids, self.fields, self.routing.fsp_field)
        if operation is RestOperation.DESCRIBE_LEADS:
            self.fields.learn(parse_describe(read_describe(reply)))
            self._described_at = self._clock()
            return []
        return read_done(reply, expected=expected)
