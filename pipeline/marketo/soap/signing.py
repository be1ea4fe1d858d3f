"""Marketo's request signature: lowercase hex HMAC-SHA1(secret, requestTimestamp + mktowsUserId)."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import UTC, datetime


@dataclass(frozen=True, slots=True)
class Credentials:
    """A Marketo SOAP user and its encryption key; the key never shows in repr."""

    user_id: str
    secret_key: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class AuthHeader:
    """The values of one `AuthenticationHeader`; valid for one attempt only (Marketo expires them)."""

    user_id: str
    timestamp: str
    signature: str


def format_timestamp(moment: datetime) -> str:
    """W3C date-time with seconds and offset, as Marketo's examples send it."""
    if moment.tzinfo is None:
        msg = "the request timestamp needs a time zone"
        raise ValueError(msg)
    return moment.isoformat(timespec="seconds")


def compute_signature(secret_key: str, timestamp: str, user_id: str) -> str:
    """Lowercase hex HMAC-SHA1 of timestamp + user id under the secret key."""
    message = (timestamp + user_id).encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha1).hexdigest()


def sign_request(credentials: Credentials, now: datetime | None = None) -> AuthHeader:
    """A fresh AuthenticationHeader for one attempt."""
    timestamp = format_timestamp(now or datetime.now(UTC))
    return AuthHeader(
        user_id=credentials.user_id,
        timestamp=timestamp,
        signature=compute_signature(credentials.secret_key, timestamp, credentials.user_id),
    )


def verify_signature(secret_key: str, header: AuthHeader) -> bool:
    """True when the header's signature is the one its timestamp and user id call for."""
    expected = compute_signature(secret_key, header.timestamp, header.user_id)
    return hmac.compare_digest(expected, header.signature.lower())
