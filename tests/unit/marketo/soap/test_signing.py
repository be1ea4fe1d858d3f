from datetime import UTC, datetime, timedelta, timezone

import pytest

from pipeline.marketo.soap.signing import (
    AuthHeader,
    Credentials,
    compute_signature,
    format_timestamp,
    sign_request,
    verify_signature,
)

DOC_USER = "demo17_1_809934544BFABAE58E5D27"
DOC_KEY = "27272727aa"


@pytest.mark.parametrize(
    ("timestamp", "signature"),
    [
        # The signatures of Marketo's published syncMultipleLeads and syncMObjects request examples.
        ("2013-08-01T18:22:30-07:00", "b5e21953ae9f1b263e644da5eccce9ff33802513"),
        ("2013-08-05T14:22:45-07:00", "40e6d89bd2f7f0daaddaf150ce7a7ca49788ffe7"),
    ],
)
def test_signature_matches_marketo_documentation(timestamp: str, signature: str) -> None:
    assert compute_signature(DOC_KEY, timestamp, DOC_USER) == signature


def test_timestamp_keeps_the_offset_as_the_examples_do() -> None:
    moment = datetime(2013, 8, 1, 18, 22, 30, 123456, tzinfo=timezone(timedelta(hours=-7)))
    assert format_timestamp(moment) == "2013-08-01T18:22:30-07:00"


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        format_timestamp(datetime(2013, 8, 1))  # noqa: DTZ001


def test_every_attempt_is_signed_afresh() -> None:
    credentials = Credentials(DOC_USER, DOC_KEY)
    first = sign_request(credentials, datetime(2026, 1, 1, tzinfo=UTC))
    second = sign_request(credentials, datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC))
    assert first.timestamp != second.timestamp
    assert first.signature != second.signature
    assert verify_signature(DOC_KEY, first)
    assert verify_signature(DOC_KEY, second)


def test_a_wrong_key_or_tampered_header_does_not_verify() -> None:
    header = sign_request(Credentials(DOC_USER, DOC_KEY))
    assert not verify_signature("other-key", header)
    tampered = AuthHeader(header.user_id, "2001-01-01T00:00:00+00:00", header.signature)
    assert not verify_signature(DOC_KEY, tampered)


def test_the_secret_key_never_shows_in_repr() -> None:
    assert DOC_KEY not in repr(Credentials(DOC_USER, DOC_KEY))
