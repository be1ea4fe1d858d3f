"""Marketo replies parsed into one `RecordOutcome` per record, in request order; faults raised typed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from lxml import etree

from pipeline.marketo.document import DEFAULT_MAX_BYTES, ResponseError, parse_document
from pipeline.marketo.fault import code_in_text, fault_error, parse_fault
from pipeline.marketo.namespace import MKTOWS, SOAP_ENV, XSI
from pipeline.records import Attrib, Operation, RecordStatus

_ENVELOPE: Final = f"{{{SOAP_ENV}}}Envelope"
_BODY: Final = f"{{{SOAP_ENV}}}Body"
_FAULT: Final = f"{{{SOAP_ENV}}}Fault"
_NIL: Final = f"{{{XSI}}}nil"
_SUCCESS: Final = {op: f"{{{MKTOWS}}}success{op.value[0].upper()}{op.value[1:]}" for op in Operation}
_LEAD_STATUSES: Final = frozenset({RecordStatus.CREATED, RecordStatus.UPDATED, RecordStatus.FAILED})
_STATUS_BY_TEXT: Final = {status.value: status for status in RecordStatus}

LeadData = dict[str, object]


@dataclass(frozen=True, slots=True)
class RecordOutcome:
    """What Marketo says it did with one record of a call."""

    status: RecordStatus
    lead_id: int | None = None
    mobject_id: int | None = None
    external_key: Attrib | None = None
    error: str | None = None
    error_code: str | None = None
    lead: LeadData | None = None


def _text(parent: etree._Element, tag: str) -> str | None:
    child = parent.find(tag)
    if child is None or child.get(_NIL) in {"true", "1"}:
        return None
    return child.text or ""


def _required(parent: etree._Element, tag: str) -> str:
    value = _text(parent, tag)
    if value is None:
        msg = f"<{etree.QName(parent).localname}> lacks <{tag}>"
        raise ResponseError(msg)
    return value


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError as exc:
        msg = f"{what} {text!r} is not an integer"
        raise ResponseError(msg) from exc


def _status(text: str, allowed: frozenset[RecordStatus] | None = None) -> RecordStatus:
    status = _STATUS_BY_TEXT.get(text.strip())
    if status is None or (allowed is not None and status not in allowed):
        msg = f"unknown status {text!r}"
        raise ResponseError(msg)
    return status


def _error(parent: etree._Element) -> tuple[str | None, str | None]:
    message = _text(parent, "error")
    if not message:
        return None, None
    return message, code_in_text(message)


def _sync_status(element: etree._Element) -> RecordOutcome:
    message, code = _error(element)
    # A FAILED record may come back with leadId 0: no lead was touched.
    lead_id = _int(_required(element, "leadId"), "leadId")
    return RecordOutcome(
        status=_status(_required(element, "status"), _LEAD_STATUSES),
        lead_id=lead_id or None,
        error=message,
        error_code=code,
    )


def _lead_record(element: etree._Element | None) -> LeadData | None:
    if element is None or element.get(_NIL) in {"true", "1"}:
        return None
    lead_id = _text(element, "Id")
    attributes: dict[str, str | None] = {}
    attribute_list = element.find("leadAttributeList")
    if attribute_list is not None:
        for attribute in attribute_list.iterchildren("attribute"):
            attributes[_required(attribute, "attrName")] = _text(attribute, "attrValue")
    return {
        "Id": _int(lead_id, "Id") if lead_id else None,
        "Email": _text(element, "Email"),
        "ForeignSysPersonId": _text(element, "ForeignSysPersonId"),
        "ForeignSysType": _text(element, "ForeignSysType"),
        "attributes": attributes,
    }


def _mobj_status(element: etree._Element) -> RecordOutcome:
    message, code = _error(element)
    key_element = element.find("externalKey")
    external_key = None
    if key_element is not None:
        external_key = Attrib(_required(key_element, "name"), _required(key_element, "value"))
    mobject_id = _int(_required(element, "id"), "id")
    return RecordOutcome(
        status=_status(_required(element, "status")),
        mobject_id=mobject_id or None,
        external_key=external_key,
        error=message,
        error_code=code,
    )


def _result(payload: etree._Element) -> etree._Element:
    result = payload.find("result")
    if result is None:
        msg = f"<{etree.QName(payload).localname}> has no <result>"
        raise ResponseError(msg)
    return result


def _outcomes(operation: Operation, result: etree._Element) -> list[RecordOutcome]:
    match operation:
        case Operation.SYNC_MULTIPLE_LEADS:
            status_list = result.find("syncStatusList")
            if status_list is None:
                msg = "result has no <syncStatusList>"
                raise ResponseError(msg)
            return [_sync_status(s) for s in status_list.iterchildren("syncStatus")]
        case Operation.SYNC_LEAD:
            status = result.find("syncStatus")
            if status is None:
                msg = "result has no <syncStatus>"
                raise ResponseError(msg)
            outcome = _sync_status(status)
            lead = _lead_record(result.find("leadRecord"))
            lead_id = outcome.lead_id or (_int(_required(result, "leadId"), "leadId") or None)
            return [
                RecordOutcome(outcome.status, lead_id, error=outcome.error, error_code=outcome.error_code, lead=lead)
            ]
        case Operation.SYNC_MOBJECTS:
            status_list = result.find("mObjStatusList")
            if status_list is None:
                msg = "result has no <mObjStatusList>"
                raise ResponseError(msg)
            return [_mobj_status(s) for s in status_list.iterchildren("mObjStatus")]


def parse_reply(
    operation: Operation, data: bytes, *, expected: int, max_bytes: int = DEFAULT_MAX_BYTES
) -> list[RecordOutcome]:
    """One outcome per record, in request order.

    Raises the classified fault error for a SOAP Fault, and ResponseError for anything that is not a
    well-formed reply to `operation` with exactly `expected` statuses.
    """
    root = parse_document(data, max_bytes=max_bytes)
    if root.tag != _ENVELOPE:
        msg = f"root element is <{etree.QName(root).text}>, not a SOAP 1.1 Envelope"
        raise ResponseError(msg)
    body = root.find(_BODY)
    payload = next(body.iterchildren(tag=etree.Element), None) if body is not None else None
    if payload is None:
        msg = "SOAP envelope has an empty or missing Body"
        raise ResponseError(msg)
    if payload.tag == _FAULT:
        raise fault_error(parse_fault(payload))
    if payload.tag != _SUCCESS[operation]:
        msg = f"reply to {operation} carries <{etree.QName(payload).text}>"
        raise ResponseError(msg)
    outcomes = _outcomes(operation, _result(payload))
    if len(outcomes) != expected:
        msg = f"reply to {operation} has {len(outcomes)} statuses for {expected} records"
        raise ResponseError(msg)
    return outcomes
