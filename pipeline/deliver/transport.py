"""The seam between the delivery and a Marketo API: what a transport does for the calls of a batch.

The delivery owns the policy (governor, access gate, retries, splits); a transport plans and speaks one API:
it encodes records into a call, sends one attempt of a call and reads one outcome per record (raising the
classified error otherwise), and names the calls that must follow a successful one. Two implement it:
`deliver.soap.SoapTransport` and `deliver.rest.RestTransport`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from pipeline.errors import PipelineError
from pipeline.marketo.call import Encoded
from pipeline.records import Record, RecordOutcome, Route

RequestT = TypeVar("RequestT")


@dataclass(frozen=True, slots=True)
class FollowUp:
    """A call that must follow a successful one, for the records at `positions` of it; `kind` names its purpose."""

    request: Any  # the transport's own request type
    positions: tuple[int, ...]
    kind: str


class Transport(Protocol[RequestT]):
    """One Marketo API, as the delivery uses it."""

    def prelude(self, records: Sequence[Record]) -> RequestT | None:
        """A call to make before `records` can be encoded (REST: learn field names), or None."""
        ...

    def prelude_failed(self) -> bool:
        """The prelude failed for good: whether records may go on without it (REST: with the names known)."""
        ...

    def encode(self, route: Route, records: Sequence[Record]) -> Encoded[RequestT]:
        """The call that carries `records` along `route`; what it cannot carry is refused record by record."""
        ...

    async def call(self, request: RequestT, *, expected: int) -> list[RecordOutcome]:
        """One attempt: an outcome per record, in order, or the classified error (pipeline.errors)."""
        ...

    def follow_ups(
        self, request: RequestT, records: Sequence[Record], outcomes: Sequence[RecordOutcome]
    ) -> list[FollowUp]:
        """The calls that must follow `request`'s success (REST: cookies, leads asked back)."""
        ...

    def settle(
        self, follow: FollowUp, outcome: RecordOutcome, extra: RecordOutcome | None, error: PipelineError | None
    ) -> RecordOutcome:
        """A record's outcome once its follow-up answered (`extra`) or failed for good (`error`)."""
        ...
