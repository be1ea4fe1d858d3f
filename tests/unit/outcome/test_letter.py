from __future__ import annotations

from pipeline.contract import DlqHeader
from pipeline.outcome.letter import RECORD_OVERHEAD, dead_letter
from pipeline.records import DeadLetterReason, RawMessage, Source

SOURCE = Source("leads.changes", 3, 41)


def _message(value_bytes: int, header_bytes: int = 0) -> RawMessage:
    headers = (("trace", b"t" * header_bytes),) if header_bytes else ()
    return RawMessage(SOURCE, b"email:a@x.com", b"v" * value_bytes, headers)


def _size(letter: tuple[bytes | None, bytes | None, list[tuple[str, bytes]] | None]) -> int:
    key, value, headers = letter
    return len(key or b"") + len(value or b"") + sum(len(n) + len(v) + 2 for n, v in headers or []) + RECORD_OVERHEAD


def test_a_letter_that_fits_carries_the_original_unchanged() -> None:
    key, value, headers = dead_letter(
        _message(1000), DeadLetterReason.INVALID_EVENT, "bad", 0, "2026-12-01T00:00:00Z", max_bytes=10_000
    )
    assert (key, value) == (b"email:a@x.com", b"v" * 1000)
    assert DlqHeader.VALUE_OMITTED not in dict(headers or [])


def test_a_letter_too_large_for_its_topic_goes_without_its_value_and_says_so() -> None:
    letter = dead_letter(
        _message(9_900), DeadLetterReason.INVALID_EVENT, "x" * 5000, 0, "2026-12-01T00:00:00Z", max_bytes=10_000
    )
    key, value, headers = letter
    found = dict(headers or [])
    assert value is None
    assert key == b"email:a@x.com"
    assert found[DlqHeader.VALUE_OMITTED] == b"true"
    assert (found[DlqHeader.SOURCE_TOPIC], found[DlqHeader.SOURCE_PARTITION], found[DlqHeader.SOURCE_OFFSET]) == (
        b"leads.changes",
        b"3",
        b"41",
    )
    assert _size(letter) <= 10_000


def test_original_headers_that_alone_overflow_the_topic_are_left_out_too() -> None:
    letter = dead_letter(
        _message(10, header_bytes=20_000), DeadLetterReason.INVALID_EVENT, "bad", 0, "t", max_bytes=10_000
    )
    assert "trace" not in dict(letter[2] or [])
    assert dict(letter[2] or [])[DlqHeader.VALUE_OMITTED] == b"true"
    assert _size(letter) <= 10_000
