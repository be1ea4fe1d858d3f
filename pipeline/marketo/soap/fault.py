"""SOAP faults from Marketo: parsed by `code`, classified once into what the pipeline does about them."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Final

from lxml import etree

from pipeline.errors import PermanentError, RetryableError
from pipeline.marketo.day import seconds_to_next_day


class FaultKind(enum.StrEnum):
    """What a fault means for the call that drew it."""

    TRANSIENT = "transient"  # try the same call again after a backoff
    ACCESS = "access"  # credentials or quota: stop sending, not ready, retry slowly
    REJECTED = "rejected"  # the call can never succeed as it is: split it to find the record at fault


FAULT_TEXT: Final[dict[str, str]] = {
    "10001": "Internal error",
    "20011": "Internal error",
    "20012": "Request not understood",
    "20013": "Access denied",
    "20014": "Authentication failed",
    "20015": "Request limit exceeded",
    "20016": "Request expired",
    "20017": "Invalid request",
    "20019": "Unsupported operation",
    "20022": "Time range in query filter exceeded limit",
    "20023": "Rate limit exceeded",
    "20024": "Concurrency limit exceeded",
    "20101": "Lead key required",
    "20102": "Lead key bad",
    "20103": "Lead not found",
    "20104": "Lead detail required",
    "20105": "Lead attribute bad",
    "20106": "Lead sync failed",
    "20107": "Activity key bad",
    "20108": "Lead owner not found",
    "20109": "Parameter required",
    "20110": "Parameter bad",
    "20111": "List not found",
    "20113": "Campaign not found",
    "20114": "Parameter bad",
}

_TRANSIENT: Final = frozenset({"10001", "20011", "20016", "20023", "20024"})
_ACCESS: Final = frozenset({"20013", "20014", "20015"})
_REJECTED: Final = frozenset({"20012", "20017", "20019", "20022"})
_LEADING_CODE: Final = re.compile(r"^\s*(\d{5})\b")
_TRAILING_CODE: Final = re.compile(r"\((\d{5})\)\s*$")


def classify_fault(code: str | None) -> FaultKind:
    """Transient for internal errors, expiry and limits; access for 20013-20015; rejected for request errors.

    A code the table does not know is transient: the retry budget bounds it, and no record is
    dead-lettered on a guess.
    """
    if code in _ACCESS:
        return FaultKind.ACCESS
    if code in _REJECTED or (code is not None and code.startswith("201")):
        return FaultKind.REJECTED
    return FaultKind.TRANSIENT


def code_in_text(text: str) -> str | None:
    """A five-digit code Marketo put at the start ("20014 - ...") or end ("... (20105)") of a text."""
    match = _TRAILING_CODE.search(text) or _LEADING_CODE.search(text)
    return match.group(1) if match else None


@dataclass(frozen=True, slots=True)
class Fault:
    """One SOAP fault: Marketo's code (the key to act on), its message and the faultstring."""

    code: str | None
    message: str
    fault_string: str = ""

    @property
    def kind(self) -> FaultKind:
        """What the pipeline does about this fault."""
        return classify_fault(self.code)

    def __str__(self) -> str:
        return f"{self.code or 'no code'}: {self.message}"


class TransientFaultError(RetryableError):
    """Marketo could not serve the call now (internal error, expiry, rate or concurrency limit).

    Its metric label names the code when the table knows it, else `fault_other`: a broken endpoint cannot
    invent label values.
    """

    def __init__(self, fault: Fault) -> None:
        known = fault.code if fault.code in FAULT_TEXT else "other"
        super().__init__(f"Marketo fault {fault}", reason=f"fault_{known}")
        self.fault = fault
        self.code = fault.code


class RequestExpiredError(TransientFaultError):
    """20016: Marketo found the request's timestamp too old.

    Each attempt is signed afresh, so a repeat means this clock and Marketo's disagree: retried with the usual
    backoff, never at once. `clock_skew_s` is this clock minus Marketo's (from the reply's Date header), when known.
    """

    clock_skew_s: float | None = None


class AccessFaultError(RetryableError):
    """Marketo refuses this client (access denied, bad credentials, daily quota): pause all sending."""

    reason = "access_denied"
    pauses_sending = True

    def __init__(self, fault: Fault) -> None:
        super().__init__(f"Marketo fault {fault}")
        self.fault = fault
        self.code = fault.code


class QuotaFaultError(AccessFaultError):
    """20015: the day's calls are spent; sending pauses until Marketo's day turns (midnight America/Chicago)."""

    reason = "quota"

    def __init__(self, fault: Fault) -> None:
        super().__init__(fault)
        self.retry_after_s = seconds_to_next_day()


class RejectedFaultError(PermanentError):
    """Marketo rejected the whole call; some record in it is at fault."""

    def __init__(self, fault: Fault) -> None:
        super().__init__(f"Marketo fault {fault}")
        self.fault = fault
        self.code = fault.code


MarketoFaultError = TransientFaultError | AccessFaultError | RejectedFaultError
EXPIRED_CODE: Final = "20016"
QUOTA_CODE: Final = "20015"


def fault_error(fault: Fault) -> MarketoFaultError:
    """The pipeline error that carries `fault` with its policy."""
    match fault.kind:
        case FaultKind.ACCESS:
            return QuotaFaultError(fault) if fault.code == QUOTA_CODE else AccessFaultError(fault)
        case FaultKind.REJECTED:
            return RejectedFaultError(fault)
        case FaultKind.TRANSIENT:
            return RequestExpiredError(fault) if fault.code == EXPIRED_CODE else TransientFaultError(fault)


def _child_text(element: etree._Element, local_name: str) -> str | None:
    for child in element.iterchildren(tag=etree.Element):
        if etree.QName(child).localname == local_name:
            return (child.text or "").strip()
    return None


def _find_local(element: etree._Element, local_name: str) -> etree._Element | None:
    for child in element.iterchildren(tag=etree.Element):
        if etree.QName(child).localname == local_name:
            return child
    return None


def parse_fault(fault_element: etree._Element) -> Fault:
    """Read a SOAP 1.1 Fault: `detail/serviceException/{code, message}`, else the code in faultstring."""
    fault_string = _child_text(fault_element, "faultstring") or ""
    code: str | None = None
    message = fault_string
    detail = _find_local(fault_element, "detail")
    exception = _find_local(detail, "serviceException") if detail is not None else None
    if exception is not None:
        code = _child_text(exception, "code") or None
        message = _child_text(exception, "message") or fault_string
    if code is None:
        code = code_in_text(fault_string)
    return Fault(code=code, message=message, fault_string=fault_string)
