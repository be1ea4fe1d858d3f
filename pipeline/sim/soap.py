"""The simulator's side of the wire: any request Marketo would understand in, WSDL-valid replies and faults out.

Requests are matched by namespace and local name, never by prefix, so envelopes from any SOAP client are understood.
Marketo reads a request as a generated SOAP binding does: it ignores elements the WSDL does not declare (a real
client's lower-case `foreignSysPersonId` beside `Email` was answered CREATED, the element ignored) and checks the
types and required elements of what it reads. So does the simulator: the call's authentication is checked first,
then the body is validated against the WSDL's schema once the undeclared elements are set aside (`conform`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from lxml import etree

from pipeline.marketo.soap.document import ResponseError, child_map, pair_of, pairs_of, parse_document, text_of
from pipeline.marketo.soap.fault import FAULT_TEXT
from pipeline.marketo.soap.namespace import MKTOWS, SOAP_ENV, XSI
from pipeline.marketo.soap.schema import content_models, types_schema
from pipeline.marketo.soap.signing import AuthHeader
from pipeline.records import Operation
from pipeline.sim.leads import LeadInput
from pipeline.sim.mobjects import MObjectInput, MObjectOutcome
from pipeline.xmltext import escape_text

MAX_REQUEST_BYTES: Final = 32 * 1024 * 1024
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
    return text_of(parent.find(tag))


def _bool(text: str | None, default: bool) -> bool:  # noqa: FBT001
    return default if text is None else text.strip() in {"true", "1"}


def _int(text: str | None) -> int | None:
    return int(text) if text else None


_LEAD_TAGS: Final = ("leadRecord", "Id", "Email", "ForeignSysPersonId", "ForeignSysType", "attrName", "attrValue")
_LEAD_FIELDS: Final = {
    "Id": "id",
    "Email": "email",
    "ForeignSysPersonId": "foreign_sys_person_id",
    "ForeignSysType": "foreign_sys_type",
}


def _leads(parent: etree._Element) -> tuple[LeadInput, ...]:
    """Every `leadRecord` under `parent`, read in one pass over the elements that matter.

    The simulator's hottest loop: `iter` filters tags in C, and the schema (validated first) makes
    the order certain: a record's fields, then each attribute's name before its value.
    """
    leads: list[LeadInput] = []
    fields: dict[str, Any] | None = None
    attributes: list[tuple[str, str]] = []
    name = ""
    for element in parent.iter(*_LEAD_TAGS):
        tag = element.tag
        if tag == "attrValue":
            attributes.append((name, element.text or ""))
        elif tag == "attrName":
            name = element.text or ""
        elif tag == "leadRecord":
            if fields is not None:
                leads.append(LeadInput(attributes=tuple(attributes), **fields))
            fields, attributes = {}, []
        elif fields is not None:
            text = element.text or None  # xsi:nil or empty: not given
            fields[_LEAD_FIELDS[tag]] = int(text) if tag == "Id" and text else text  # type: ignore[index]
    if fields is not None:
        leads.append(LeadInput(attributes=tuple(attributes), **fields))
    return tuple(leads)


def _key(element: etree._Element | None) -> tuple[str, str] | None:
    return None if element is None else pair_of(element, "name", "value")


def _association(element: etree._Element) -> dict[str, Any]:
    children = child_map(element)
    key = _key(children.get("externalKey"))
    return {
        "mObjType": text_of(children.get("mObjType")),
        "id": _int(text_of(children.get("id"))),
        "externalKey": None if key is None else {"name": key[0], "value": key[1]},
    }


def _mobject(element: etree._Element) -> MObjectInput:
    children = child_map(element)
    type_list = children.get("typeAttribList")
    type_attribs = tuple(
        (text_of(parts.get("attrType")) or "", pairs_of(parts.get("attrList"), "name", "value"))
        for parts in (child_map(t) for t in (type_list if type_list is not None else ()))
    )
    associations = children.get("associationList")
    return MObjectInput(
        type=text_of(children.get("type")) or "",
        id=_int(text_of(children.get("id"))),
        external_key=_key(children.get("externalKey")),
        attribs=pairs_of(children.get("attribList"), "name", "value"),
        type_attribs=type_attribs,
        associations=tuple(_association(a) for a in (associations if associations is not None else ())),
    )


def conform(element: etree._Element, type_name: str) -> None:
    """Set aside what a generated binding ignores: children `type_name` does not declare, and attributes, at any depth.

    SIMULATOR'S CHOICE: the declared ones are put in the WSDL's order. Bindings commonly read a sequence in any
    order; no recorded request shows what Marketo does with one out of order.
    """
    for name in [n for n in element.attrib if not n.startswith(f"{{{XSI}}}")]:  # the WSDL declares no attribute
        del element.attrib[name]
    declared = content_models()[1].get(type_name)
    if declared is None:  # a simple type: text only
        return
    order = {name: (n, child_type) for n, (name, child_type) in enumerate(declared)}
    kept: list[tuple[int, etree._Element]] = []
    for child in list(element):
        known = order.get(child.tag) if isinstance(child.tag, str) else None
        element.remove(child)
        if known is not None:
            conform(child, known[1])
            kept.append((known[0], child))
    kept.sort(key=lambda pair: pair[0])  # stable: repeated elements keep their order
    element.extend(child for _, child in kept)


def _valid(element: etree._Element) -> bool:
    """Whether `element` is valid as the WSDL declares it, once what Marketo ignores is set aside."""
    if types_schema().validate(element):
        return True  # the common case, a request made from the WSDL: no copy, no walk
    conform(element, content_models()[0][etree.QName(element).localname])
    return bool(types_schema().validate(element))


def _schema_error() -> str:
    """What the last validation found wrong."""
    error = types_schema().error_log.last_error
    return error.message if error else "schema violation"


def _headers(envelope: etree._Element) -> tuple[AuthHeader | None, str | None, str | None]:
    """The authentication, the target workspace, and what is wrong with the context header (read after auth)."""
    header = envelope.find(f"{{{SOAP_ENV}}}Header")
    auth: AuthHeader | None = None
    workspace: str | None = None
    problem: str | None = None
    for element in header.iterchildren(tag=etree.Element) if header is not None else ():
        if element.tag == f"{{{MKTOWS}}}AuthenticationHeader":
            if not _valid(element):
                raise SoapFaultError("20014", "AuthenticationHeader is malformed")
            auth = AuthHeader(
                user_id=_text(element, "mktowsUserId") or "",
                signature=_text(element, "requestSignature") or "",
                timestamp=_text(element, "requestTimestamp") or "",
            )
        elif element.tag == f"{{{MKTOWS}}}MktowsContextHeader":
            if _valid(element):
                workspace = _text(element, "targetWorkspace")
            else:  # SIMULATOR'S CHOICE: refused as an invalid request (20017), as an invalid body is
                problem = f"Invalid MktowsContextHeader: {_schema_error()}"
        elif element.get(f"{{{SOAP_ENV}}}mustUnderstand") in {"1", "true"}:
            raise SoapFaultError("20012", f"Header {etree.QName(element).text} not understood")
    return auth, workspace, problem


@dataclass(frozen=True, slots=True)
class SimEnvelope:
    """A request read as far as its call and headers: enough to check who sends it before reading the rest."""

    operation: Operation
    auth: AuthHeader | None
    workspace: str | None
    payload: etree._Element
    header_problem: str | None = None


def read_envelope(data: bytes) -> SimEnvelope:
    """The call and its headers; raises SoapFaultError with 20012 (not understood) or 20019 (unsupported)."""
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
    auth, workspace, problem = _headers(envelope)
    return SimEnvelope(operation, auth, workspace, payload, problem)


def read_call(envelope: SimEnvelope, *, validate: bool = True) -> SimRequest:
    """The call's records; raises SoapFaultError with 20017 (what Marketo reads is invalid) or 20104."""
    operation, auth, workspace, payload = envelope.operation, envelope.auth, envelope.workspace, envelope.payload
    if envelope.header_problem is not None:
        raise SoapFaultError("20017", envelope.header_problem)
    if validate and not _valid(payload):
        raise SoapFaultError("20017", f"Invalid request: {_schema_error()}")
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
        leads = _leads(payload)
        if len(leads) != 1:
            raise SoapFaultError("20104")
        return SimRequest(
            operation,
            auth,
            workspace,
            leads=leads,
            return_lead=_bool(_text(payload, "returnLead"), default=False),
            cookie=_text(payload, "marketoCookie"),
        )
    return SimRequest(
        operation, auth, workspace, leads=_leads(payload), dedup=_bool(_text(payload, "dedupEnabled"), default=True)
    )


def parse_request(data: bytes, *, validate: bool = True) -> SimRequest:
    """Read a whole call (`read_envelope`, then `read_call`), for callers that check no signature."""
    return read_call(read_envelope(data), validate=validate)


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
