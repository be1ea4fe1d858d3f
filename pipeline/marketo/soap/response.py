"""Marketo replies parsed into one `RecordOutcome` per record, in request order; faults raised typed."""

from __future__ import annotations

from typing import Final

from lxml import etree

from pipeline.marketo.soap.document import DEFAULT_MAX_BYTES, ResponseError, child_map, parse_document, text_of
from pipeline.marketo.soap.fault import code_in_text, fault_error, parse_fault
from pipeline.marketo.soap.namespace import MKTOWS, SOAP_ENV, XSI
from pipeline.records import Attrib, LeadData, Operation, RecordOutcome, RecordStatus

_ENVELOPE: Final = f"{{{SOAP_ENV}}}Envelope"
_BODY: Final = f"{{{SOAP_ENV}}}Body"
_FAULT: Final = f"{{{SOAP_ENV}}}Fault"
_NIL: Final = f"{{{XSI}}}nil"
_SUCCESS: Final = {op: f"{{{MKTOWS}}}success{op.value[0].upper()}{op.value[1:]}" for op in Operation}
_LEAD_STATUSES: Final = frozenset({RecordStatus.CREATED, RecordStatus.UPDATED, RecordStatus.FAILED})
_STATUS_BY_TEXT: Final = {status.value: status for status in RecordStatus}


def _required(parent: etree._Element, children: dict[str, etree._Element], tag: str) -> str:
    value = text_of(children.get(tag))
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


def _error(children: dict[str, etree._Element]) -> tuple[str | None, str | None]:
    message = text_of(children.get("error"))
    if not message:
        return None, None
    return message, code_in_text(message)


def _sync_status(element: etree._Element) -> RecordOutcome:
    # The hottest loop of a reply: children read in one pass rather than looked up by name.
    lead_id = status = message = None
    for child in element:
        tag = child.tag
        if tag == "leadId":
            lead_id = child.text
        elif tag == "status":
            status = child.text
        elif tag == "error":
            message = child.text or None  # xsi:nil or empty: no error
    if lead_id is None or status is None:
        msg = "<syncStatus> lacks <leadId> or <status>"
        raise ResponseError(msg)
    # A FAILED record may come back with leadId 0: no lead was touched.
    return RecordOutcome(
        status=_status(status, _LEAD_STATUSES),
        lead_id=_int(lead_id, "leadId") or None,
        error=message,
        error_code=code_in_text(message) if message else None,
    )


# A whole list read by four XPath queries in C, when every status is plain: exactly one leadId and one status,
# each with text, and no error text (a clean reply, by far the most common). Anything else is read element by
# element, with its precise complaint.
_PLAIN_STATUSES: Final = etree.XPath("count(syncStatus[count(leadId) = 1 and count(status) = 1])")
_LEAD_IDS: Final = etree.XPath("syncStatus/leadId/text()", smart_strings=False)
_STATUS_TEXTS: Final = etree.XPath("syncStatus/status/text()", smart_strings=False)
_ANY_ERROR: Final = etree.XPath("boolean(syncStatus/error/text())")


def _sync_statuses(status_list: etree._Element) -> list[RecordOutcome]:
    count = len(status_list)
    lead_ids: list[str] = _LEAD_IDS(status_list)
    texts: list[str] = _STATUS_TEXTS(status_list)
    if len(lead_ids) == len(texts) == count == _PLAIN_STATUSES(status_list) and not _ANY_ERROR(status_list):
        return [
            RecordOutcome(_status(status, _LEAD_STATUSES), _int(lead_id, "leadId") or None)
            for lead_id, status in zip(lead_ids, texts, strict=True)
        ]
    return [_sync_status(s) for s in status_list.iterchildren("syncStatus")]


def _lead_record(element: etree._Element | None) -> LeadData | None:
    if element is None or element.get(_NIL) in {"true", "1"}:
        return None
    children = child_map(element)
    lead_id = text_of(children.get("Id"))
    attributes: dict[str, str | None] = {}
    attribute_list = children.get("leadAttributeList")
    for attribute in attribute_list if attribute_list is not None else ():
        parts = child_map(attribute)
        attributes[_required(attribute, parts, "attrName")] = text_of(parts.get("attrValue"))
    return {
        "Id": _int(lead_id, "Id") if lead_id else None,
        "Email": text_of(children.get("Email")),
        "ForeignSysPersonId": text_of(children.get("ForeignSysPersonId")),
        "ForeignSysType": text_of(children.get("ForeignSysType")),
        "attributes": attributes,
    }


# DELETED is in the WSDL's MObjStatusEnum, but this service only syncs: an object Marketo reports deleted was not
# synced as the event asked, so its record fails (dead-lettered as rejected, for an operator to look at).
_DELETED: Final = "DELETED"
_DELETED_ERROR: Final = "Marketo answered DELETED: the object was deleted, not synced"


def _mobj_status(element: etree._Element) -> RecordOutcome:
    children = child_map(element)
    message, code = _error(children)
    key_element = children.get("externalKey")
    external_key = None
    if key_element is not None:
        key_parts = child_map(key_element)
        external_key = Attrib(_required(key_element, key_parts, "name"), _required(key_element, key_parts, "value"))
    # Later API versions make the id nillable (a FAILED object has none): no id then, as an id of 0 reads.
    id_text = text_of(children.get("id"))
    mobject_id = _int(id_text, "id") if id_text else None
    status_text = _required(element, children, "status").strip()
    if status_text == _DELETED:
        status, message = RecordStatus.FAILED, message or _DELETED_ERROR
    else:
        status = _status(status_text)
    return RecordOutcome(
        status=status,
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
            return _sync_statuses(status_list)
        case Operation.SYNC_LEAD:
            status = result.find("syncStatus")
            if status is None:
                msg = "result has no <syncStatus>"
                raise ResponseError(msg)
            outcome = _sync_status(status)
            lead = _lead_record(result.find("leadRecord"))
            lead_id = outcome.lead_id or (_int(_required(result, child_map(result), "leadId"), "leadId") or None)
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
