"""The simulator's side of the wire: any conforming request in, WSDL-valid replies and faults out.

Requests are matched by namespace and local name, never by prefix, so envelopes from any SOAP
client are understood; the body element is validated against the WSDL's schema first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from lxml import etree

from pipeline.marketo.document import ResponseError, parse_document
from pipeline.marketo.fault import FAULT_TEXT
from pipeline.marketo.namespace import MKTOWS, SOAP_ENV, XSI
from pipeline.marketo.schema import types_schema
from pipeline.marketo.signing import AuthHeader
from pipeline.marketo.xmltext import escape_text
from pipeline.records import Operation
from pipeline.sim.leads import LeadInput
from pipeline.sim.mobjects import MObjectInput, MObjectOutcome

MAX_REQUEST_BYTES: Final = 32 * 1024 * 1024
_NIL: Final = f"{{{XSI}}}nil"
_OPERATIONS: Final = {f"{{{MKTOWS}}}params{op.value[0].upper()}{op.value[1:]}": op for op in Operation}
_SERVER_CODES: Final = frozenset({"10001", "20011"})
_HEAD: Final = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    f'<SOAP-ENV:Envelope xmlns:SOAP-ENV="{SOAP_ENV}" xmlns:xsi="{XSI}" xmlns:ns1="{MKTOWS}"><SOAP-ENV:Body>'
)
_TAIL: Final = "</SOAP-ENV:Body></SOAP-ENV:Envelope>"


class SoapFaultError(Exception):
    """Answer the call with Marketo fault `code`."""

    def __init__(self, code: str, message: str | None = None) -> None:
        text = FAULT_TEXT.get(code, "Error")
        super().__init__(f"{code} {message or text}")
        self.code = code
        self.message = f"{message or text} ({code})"


@dataclass(frozen=True, slots=True)
class SimRequest:
    """A parsed call: its operation, headers and records."""

    operation: Operation
    auth: AuthHeader | None
    workspace: str | None
    leads: tuple[LeadInput, ...] = ()
    return_lead: bool = False
    cookie: str | None = None
    dedup: bool = True
    mobjects: tuple[MObjectInput, ...] = ()
    mobject_operation: str = "UPSERT"

    @property
    def records(self) -> int:
        """How many records the call carries."""
        return len(self.mobjects) if self.operation is Operation.SYNC_MOBJECTS else len(self.leads)


def _text(parent: etree._Element, tag: str) -> str | None:
    child = parent.find(tag)
    if child is None or child.get(_NIL) in {"true", "1"}:
        return None
    return child.text or ""


def _bool(text: str | None, default: bool) -> bool:  # noqa: FBT001
    return default if text is None else text.strip() in {"true", "1"}


def _pairs(parent: etree._Element | None, item: str, name: str, value: str) -> tuple[tuple[str, str], ...]:
    if parent is None:
        return ()
    return tuple((_text(el, name) or "", _text(el, value) or "") for el in parent.iterchildren(item))


def _lead(element: etree._Element) -> LeadInput:
    lead_id = _text(element, "Id")
    return LeadInput(
        id=int(lead_id) if lead_id else None,
        email=_text(element, "Email"),
        foreign_sys_person_id=_text(element, "ForeignSysPersonId"),
        foreign_sys_type=_text(element, "ForeignSysType"),
        attributes=_pairs(element.find("leadAttributeList"), "attribute", "attrName", "attrValue"),
    )


def _key(element: etree._Element | None) -> tuple[str, str] | None:
    if element is None:
        return None
    return (_text(element, "name") or "", _text(element, "value") or "")


def _mobject(element: etree._Element) -> MObjectInput:
    object_id = _text(element, "id")
    type_list = element.find("typeAttribList")
    type_attribs = tuple(
        (_text(t, "attrType") or "", _pairs(t.find("attrList"), "attrib", "name", "value"))
        for t in (type_list.iterchildren("typeAttrib") if type_list is not None else ())
    )
    association_list = element.find("associationList")
    associations: list[dict[str, Any]] = []
    for assoc in association_list.iterchildren("mObjAssociation") if association_list is not None else ():
        assoc_id, key = _text(assoc, "id"), _key(assoc.find("externalKey"))
        associations.append(
            {
                "mObjType": _text(assoc, "mObjType"),
                "id": int(assoc_id) if assoc_id else None,
                "externalKey": None if key is None else {"name": key[0], "value": key[1]},
            }
        )
    return MObjectInput(
        type=_text(element, "type") or "",
        id=int(object_id) if object_id else None,
        external_key=_key(element.find("externalKey")),
        attribs=_pairs(element.find("attribList"), "attrib", "name", "value"),
        type_attribs=type_attribs,
        associations=tuple(associations),
    )


def _headers(envelope: etree._Element) -> tuple[AuthHeader | None, str | None]:
    header = envelope.find(f"{{{SOAP_ENV}}}Header")
    auth: AuthHeader | None = None
    workspace: str | None = None
    for element in header.iterchildren(tag=etree.Element) if header is not None else ():
        if element.tag == f"{{{MKTOWS}}}AuthenticationHeader":
            if not types_schema().validate(element):
                raise SoapFaultError("20014", "AuthenticationHeader is malformed")
            auth = AuthHeader(
                user_id=_text(element, "mktowsUserId") or "",
                signature=_text(element, "requestSignature") or "",
                timestamp=_text(element, "requestTimestamp") or "",
            )
        elif element.tag == f"{{{MKTOWS}}}MktowsContextHeader":
            workspace = _text(element, "targetWorkspace")
        elif element.get(f"{{{SOAP_ENV}}}mustUnderstand") in {"1", "true"}:
            raise SoapFaultError("20012", f"Header {etree.QName(element).text} not understood")
    return auth, workspace


def parse_request(data: bytes, *, validate: bool = True) -> SimRequest:
    """Read a call; raises SoapFaultError with 20012 (not understood), 20017 (invalid) or 20019 (unsupported)."""
    try:
        envelope = parse_document(data, max_bytes=MAX_REQUEST_BYTES)
    except ResponseError as exc:
        raise SoapFaultError("20012", str(exc)) from exc
    if envelope.tag != f"{{{SOAP_ENV}}}Envelope":
        raise SoapFaultError("20012", "Not a SOAP 1.1 envelope")
    body = envelope.find(f"{{{SOAP_ENV}}}Body")
    payload = next(body.iterchildren(tag=etree.Element), None) if body is not None else None
    if payload is None:
        raise SoapFaultError("20012", "Empty SOAP body")
    operation = _OPERATIONS.get(etree.QName(payload).text)
    if operation is None:
        raise SoapFaultError("20019", f"Unsupported operation: {etree.QName(payload).localname}")
    auth, workspace = _headers(envelope)
    if validate and not types_schema().validate(payload):
        error = types_schema().error_log.last_error
        raise SoapFaultError("20017", f"Invalid request: {error.message if error else 'schema violation'}")
    if operation is Operation.SYNC_MOBJECTS:
        object_list = payload.find("mObjectList")
        return SimRequest(
            operation,
            auth,
            workspace,
            mobjects=tuple(_mobject(m) for m in object_list.iterchildren("mObject")) if object_list is not None else (),
            mobject_operation=(_text(payload, "operation") or "UPSERT").strip(),
        )
    if operation is Operation.SYNC_LEAD:
        record = payload.find("leadRecord")
        if record is None:
            raise SoapFaultError("20104")
        return SimRequest(
            operation,
            auth,
            workspace,
            leads=(_lead(record),),
            return_lead=_bool(_text(payload, "returnLead"), default=False),
            cookie=_text(payload, "marketoCookie"),
        )
    lead_list = payload.find("leadRecordList")
    leads = tuple(_lead(r) for r in lead_list.iterchildren("leadRecord")) if lead_list is not None else ()
    return SimRequest(
        operation, auth, workspace, leads=leads, dedup=_bool(_text(payload, "dedupEnabled"), default=True)
    )


def _nil_or(tag: str, value: str | None) -> str:
    return f'<{tag} xsi:nil="true"/>' if value is None else f"<{tag}>{escape_text(value)}</{tag}>"


def _sync_status(lead_id: int, status: str, error: str | None) -> str:
    return f"<syncStatus><leadId>{lead_id:d}</leadId><status>{status}</status>{_nil_or('error', error)}</syncStatus>"


def render_sync_multiple_leads(statuses: list[tuple[int, str, str | None]]) -> bytes:
    """`successSyncMultipleLeads`: one syncStatus per lead, in request order."""
    items = "".join(_sync_status(*s) for s in statuses)
    body = (
        f"<ns1:successSyncMultipleLeads><result><syncStatusList>{items}</syncStatusList></result>"
        "</ns1:successSyncMultipleLeads>"
    )
    return (_HEAD + body + _TAIL).encode()


def _lead_record(lead: dict[str, Any] | None) -> str:
    if lead is None:
        return '<leadRecord xsi:nil="true"/>'
    attributes = "".join(
        f"<attribute><attrName>{escape_text(name)}</attrName><attrType>string</attrType>"
        f"<attrValue>{escape_text(value)}</attrValue></attribute>"
        for name, value in lead["attributes"].items()
    )
    return (
        f"<leadRecord><Id>{lead['Id']:d}</Id>{_nil_or('Email', lead['Email'])}"
        f"{_nil_or('ForeignSysPersonId', lead['ForeignSysPersonId'])}"
        f"{_nil_or('ForeignSysType', lead['ForeignSysType'])}"
        f"<leadAttributeList>{attributes}</leadAttributeList></leadRecord>"
    )


def render_sync_lead(lead_id: int, status: str, error: str | None, lead: dict[str, Any] | None) -> bytes:
    """`successSyncLead`: the lead id, its status, and the lead record when returnLead was asked."""
    result = f"<leadId>{lead_id:d}</leadId>{_sync_status(lead_id, status, error)}{_lead_record(lead)}"
    return (_HEAD + f"<ns1:successSyncLead><result>{result}</result></ns1:successSyncLead>" + _TAIL).encode()


def _mobj_status(outcome: MObjectOutcome) -> str:
    key = ""
    if outcome.external_key is not None:
        name, value = outcome.external_key
        key = f"<externalKey><name>{escape_text(name)}</name><value>{escape_text(value)}</value></externalKey>"
    error = "" if outcome.error is None else f"<error>{escape_text(outcome.error)}</error>"
    return f"<mObjStatus><id>{outcome.id:d}</id>{key}<status>{outcome.status}</status>{error}</mObjStatus>"


def render_sync_mobjects(outcomes: list[MObjectOutcome]) -> bytes:
    """`successSyncMObjects`: one mObjStatus per object, in request order."""
    items = "".join(_mobj_status(o) for o in outcomes)
    body = (
        f"<ns1:successSyncMObjects><result><mObjStatusList>{items}</mObjStatusList></result></ns1:successSyncMObjects>"
    )
    return (_HEAD + body + _TAIL).encode()


def render_fault(code: str, message: str) -> bytes:
    """A SOAP 1.1 Fault as Marketo sends it: faultstring "code - text", detail/serviceException."""
    side = "Server" if code in _SERVER_CODES else "Client"
    text = FAULT_TEXT.get(code, "Error")
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<SOAP-ENV:Envelope xmlns:SOAP-ENV="{SOAP_ENV}"><SOAP-ENV:Body>'
        f"<SOAP-ENV:Fault><faultcode>SOAP-ENV:{side}</faultcode><faultstring>{code} - {escape_text(text)}</faultstring>"
        f'<detail><ns1:serviceException xmlns:ns1="{MKTOWS}"><name>mktServiceException</name>'
        f"<message>{escape_text(message)}</message><code>{code}</code></ns1:serviceException></detail>"
        "</SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>"
    ).encode()
