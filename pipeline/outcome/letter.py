"""A dead letter: the original message, unchanged, with the context of DESIGN 2.5, never larger than its topic takes.

A dead letter carries the original value and headers plus its own, so an event a little under the input topic's
limit makes a dead letter over the dead-letter topic's. The broker would refuse it, and a publisher that cannot
publish cannot commit: the same event would stop every instance in turn. So a dead letter that does not fit goes
without its value (and, if it must, without the original headers), says so in `dlq.value_omitted`, and keeps the
source coordinates that find the original.
"""

from __future__ import annotations

from typing import Final

from pipeline.contract import DLQ_PREFIX, DlqHeader
from pipeline.records import DeadLetterReason, RawMessage

Outgoing = tuple[bytes | None, bytes | None, list[tuple[str, bytes]] | None]
UNLIMITED: Final = 2**62
RECORD_OVERHEAD: Final = 256  # a record batch's header and one record's framing, generously
MAX_ERROR_BYTES: Final = 4096
DLQ_HEADROOM_BYTES: Final = 64 * 1024  # what a dead letter adds to its event, generously: the dead-letter topic's room


def dead_letter_headers(
    message: RawMessage,
    reason: DeadLetterReason,
    error: str,
    attempts: int,
    failed_at: str,
    *,
    code: str | None = None,
) -> list[tuple[str, bytes]]:
    """The original headers (less any old dlq.*) and DESIGN 2.5's context; dlq.replays carries over."""
    replays = b"0"
    kept = []
    for name, value in message.headers:
        if name == DlqHeader.REPLAYS:
            replays = value
        elif not name.startswith(DLQ_PREFIX):
            kept.append((name, value))
    return [*kept, *_context(message, reason, error, attempts, failed_at, replays=replays, code=code)]


def _context(
    message: RawMessage,
    reason: DeadLetterReason,
    error: str,
    attempts: int,
    failed_at: str,
    *,
    replays: bytes,
    code: str | None,
) -> list[tuple[str, bytes]]:
    source = message.source
    coded = [(DlqHeader.ERROR_CODE, code.encode())] if code else []
    return [
        (DlqHeader.REASON, reason.value.encode()),
        (DlqHeader.ERROR, error.encode()[:MAX_ERROR_BYTES]),
        *coded,
        (DlqHeader.SOURCE_TOPIC, source.topic.encode()),
        (DlqHeader.SOURCE_PARTITION, str(source.partition).encode()),
        (DlqHeader.SOURCE_OFFSET, str(source.offset).encode()),
        (DlqHeader.ATTEMPTS, str(attempts).encode()),
        (DlqHeader.FAILED_AT, failed_at.encode()),
        (DlqHeader.REPLAYS, replays),
    ]


def _size(key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]) -> int:
    return len(key or b"") + len(value or b"") + sum(len(n) + len(v) + 2 for n, v in headers) + RECORD_OVERHEAD


def dead_letter(
    message: RawMessage,
    reason: DeadLetterReason,
    error: str,
    attempts: int,
    failed_at: str,
    *,
    max_bytes: int,
    code: str | None = None,
) -> Outgoing:
    """The dead letter of `message`: key, value and headers, within `max_bytes` (what the topic accepts)."""
    headers = dead_letter_headers(message, reason, error, attempts, failed_at, code=code)
    key, value = message.key, message.value
    if _size(key, value, headers) <= max_bytes:
        return key, value, headers
    omitted = (DlqHeader.VALUE_OMITTED, b"true")
    if _size(key, None, headers) + len(omitted[0]) + len(omitted[1]) <= max_bytes:
        return key, None, [*headers, omitted]
    replays = next((v for n, v in message.headers if n == DlqHeader.REPLAYS), b"0")
    context = [*_context(message, reason, error, attempts, failed_at, replays=replays, code=code), omitted]
    return (key if _size(key, None, context) <= max_bytes else None), None, context
