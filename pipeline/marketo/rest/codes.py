"""Marketo's REST error codes (error-codes.md), classified once into what the pipeline does about them.

Response-level codes (601-799, `success: false`) concern the whole call; record-level codes (1xxx, in a record's
`reasons`) concern one record and fail only it.
"""

from __future__ import annotations

import enum
from typing import Final

from pipeline.errors import PermanentError, RetryableError
from pipeline.marketo.day import seconds_to_next_day


class CodeKind(enum.StrEnum):
    """What a response-level code means for the call that drew it."""

    TOKEN = "token"  # noqa: S105 - a kind of error, not a secret. 601, 602: renew the access token and send again, not an attempt
    ACCESS = "access"  # 603: Marketo refuses this client: pause sending
    QUOTA = "quota"  # 607: the day's calls are spent: pause until Marketo's day turns
    TRANSIENT = "transient"  # limits and passing trouble: back off and try again
    REJECTED = "rejected"  # the request as it is will never be accepted: its records fail


ERROR_TEXT: Final[dict[str, str]] = {
    "413": "Request Entity Too Large",
    "414": "Request-URI Too Long",
    "601": "Access token invalid",
    "602": "Access token expired",
    "603": "Access denied",
    "604": "Request time-out",
    "605": "HTTP Method not supported",
    "606": "Max rate limit exceeded",
    "607": "Daily quota reached",
    "608": "API Temporarily Unavailable",
    "609": "Invalid JSON",
    "610": "Requested resource not found",
    "611": "System error",
    "612": "Invalid Content Type",
    "613": "Invalid Multipart Request",
    "614": "Invalid Subscription",
    "615": "Concurrent access limit reached",
    "616": "Invalid subscription type",
    "701": "Cannot be blank",
    "702": "No data found for a given search scenario",
    "703": "The feature is not enabled for the subscription",
    "704": "Invalid date format",
    "709": "Business Rule Violation",
    "710": "Parent Folder Not Found",
    "711": "Incompatible Folder Type",
    "713": "Transient Error",
    "718": "ExternalSalesPersonID not found",
    "719": "Lock wait timeout exception",
    "1001": "Invalid value",
    "1002": "Missing value for the required parameter",
    "1003": "Invalid data",
    "1004": "Lead not found",
    "1005": "Lead already exists",
    "1006": "Field not found",
    "1007": "Multiple leads match the lookup criteria",
    "1008": "Access denied to partition",
    "1009": "Partition name must be specified",
    "1010": "Partition update not allowed",
    "1011": "Field not supported",
    "1012": "Invalid cookie value",
    "1013": "Object not found",
    "1017": "Object already exists",
    "1036": "Duplicate object found in input",
}

TOKEN_CODES: Final = frozenset({"601", "602"})
_ACCESS: Final = frozenset({"603"})
_QUOTA: Final = frozenset({"607"})
# 606 and 615 are our own pace's fault (or another client's): backing off is what Adobe asks for. 614 "usually
# indicates temporary inaccessibility". A code nobody documents is transient too: the retry budget bounds it,
# and no record is dead-lettered on a guess.
_REJECTED: Final = frozenset(
    {"414", "605", "609", "610", "612", "613", "616", "701", "702", "703", "704", "709", "710", "711", "712", "714"}
    | {"718", "719"}
)
# Refusals of the request itself that say nothing about its records: the same on every call (a wrong base URL,
# a body Marketo cannot read). Others (702 no such program, 709 a tag value, 1008 a partition, 1003 ...) are about
# what one call carries, and never pause the sending of the rest.
_SYSTEMIC: Final = frozenset({"609", "610", "612"})
# Adobe: "An API call that returns this response code is not counted against your daily quota, or your rate limit".
NOT_COUNTED: Final = frozenset({"601", "602", "604", "605", "608", "611"})


def classify_code(code: str | None) -> CodeKind:
    """What a response-level (or HTTP-level) code means; record-level 1xxx codes at response level reject."""
    if code in TOKEN_CODES:
        return CodeKind.TOKEN
    if code in _ACCESS:
        return CodeKind.ACCESS
    if code in _QUOTA:
        return CodeKind.QUOTA
    if code in _REJECTED or (code is not None and len(code) == 4 and code.startswith("1")):  # noqa: PLR2004
        return CodeKind.REJECTED
    return CodeKind.TRANSIENT


def code_label(code: str | None) -> str:
    """`code` as a bounded metric label: the codes the table knows, else `other`."""
    return code if code in ERROR_TEXT else "other"


class TokenRefusedError(RetryableError):
    """601 or 602: the access token is invalid or expired. Renewed and sent again at once; not an attempt."""

    counts_as_attempt = False

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"Marketo error {code}: {message}", retry_after_s=0.0, reason=f"rest_{code}")
        self.code = code
        self.counted = False


class RestAccessError(RetryableError):
    """Marketo refuses this client (603, or the identity service refusing the client id and secret): pause."""

    reason = "access_denied"
    pauses_sending = True

    def __init__(self, code: str | None, message: str, *, counted: bool = True) -> None:
        super().__init__(f"Marketo error {code or 'identity'}: {message}")
        self.code = code
        self.counted = counted


class QuotaSpentError(RestAccessError):
    """607: the day's calls are spent; sending pauses until Marketo's day turns (midnight America/Chicago)."""

    reason = "quota"

    def __init__(self, message: str) -> None:
        super().__init__("607", message)
        self.retry_after_s = seconds_to_next_day()


class RestTransientError(RetryableError):
    """Marketo could not serve the call now (604, 606, 608, 611, 615, 713, ...): back off and try again."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"Marketo error {code}: {message}", reason=f"rest_{code_label(code)}")
        self.code = code
        self.counted = code not in NOT_COUNTED


class RestRejectedError(PermanentError):
    """The request as a whole will never be accepted: every record of the call fails, none is split off."""

    splits = False

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"Marketo error {code}: {message}")
        self.code = code
        self.counted = code not in NOT_COUNTED
        self.refuses_everything = code in _SYSTEMIC


def response_error(code: str, message: str) -> RetryableError | PermanentError:
    """The pipeline error for a response-level `code`, with its policy."""
    match classify_code(code):
        case CodeKind.TOKEN:
            return TokenRefusedError(code, message)
        case CodeKind.ACCESS:
            return RestAccessError(code, message)
        case CodeKind.QUOTA:
            return QuotaSpentError(message)
        case CodeKind.REJECTED:
            return RestRejectedError(code, message)
        case CodeKind.TRANSIENT:
            return RestTransientError(code, message)
