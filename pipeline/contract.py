"""The names readers outside the service rely on (DESIGN 2.4 and 2.5), spelled once.

The publisher writes them, and replay, the demo's summary, the bench and the tests read them through this
module: a result message is a `ResultMessage` (mypy checks every field name against it), a dead letter's
context is in the `DlqHeader` headers.
"""

from __future__ import annotations

from typing import Final, NotRequired, TypedDict, cast

import orjson

DLQ_PREFIX: Final = "dlq."


class DlqHeader:
    """The headers a dead letter carries beside the original ones (DESIGN 2.5).

    Plain strings, not an enum: the Kafka client's record builder takes header names of type `str` exactly.
    """

    REASON: Final = "dlq.reason"
    ERROR: Final = "dlq.error"
    ERROR_CODE: Final = "dlq.error.code"  # Marketo's fault or record reason code, when there is one
    SOURCE_TOPIC: Final = "dlq.source.topic"
    SOURCE_PARTITION: Final = "dlq.source.partition"
    SOURCE_OFFSET: Final = "dlq.source.offset"
    ATTEMPTS: Final = "dlq.attempts"
    FAILED_AT: Final = "dlq.failed_at"
    REPLAYS: Final = "dlq.replays"
    VALUE_OMITTED: Final = "dlq.value_omitted"  # "true" when the letter had to go without the original value


class ResultSource(TypedDict):
    """Where one of a record's events was read."""

    topic: str
    partition: int
    offset: int


class ResultError(TypedDict):
    """Why a record FAILED: Marketo's code when it gave one."""

    code: str | None
    message: str


class ResultMessage(TypedDict):
    """One message of the results topic: what became of one record (DESIGN 2.4)."""

    key: str
    kind: str
    operation: str
    status: str
    lead_id: int | None
    mobject_id: int | None
    error: ResultError | None
    attempts: int
    lead: dict[str, object] | None
    event_ids: list[str]
    sources: list[ResultSource]
    completed_at: str
    marketo_guid: NotRequired[str]  # REST: the marketoGUID of an Opportunity or role


RESULT_FIELDS: Final = tuple(ResultMessage.__annotations__)


def read_result(value: bytes) -> ResultMessage:
    """A result message's JSON, as the service writes it."""
    return cast("ResultMessage", orjson.loads(value))


def header(headers: tuple[tuple[str, bytes], ...] | list[tuple[str, bytes]], name: str) -> bytes | None:
    """The value of header `name`, the last one when it is repeated."""
    found = None
    for key, value in headers:
        if key == name:
            found = value
    return found
