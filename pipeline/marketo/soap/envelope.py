"""SOAP envelopes for syncLead, syncMultipleLeads and syncMObjects, exactly as Marketo's WSDL shapes them.

The body of a call is serialized once (`SoapRequest`); every attempt wraps it in a freshly signed header
(`render_envelope`), so a retry costs a signature, not a rebuild. Serialization writes text directly:
element names are the WSDL's constants, every value goes through `escape_text`, and the tests validate
what comes out against the WSDL's schema. A value that XML cannot carry raises `UnencodableRecordError`
naming the record, so the caller can fail that record alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from pipeline.errors import PermanentError
from pipeline.marketo.soap.namespace import MKTOWS, SOAP_ENV
from pipeline.marketo.soap.signing import AuthHeader, Credentials, sign_request
from pipeline.records import Association, Attrib, Lead, MObject, Operation, SyncOperation, TypeAttrib
from pipeline.xmltext import UnencodableTextError, escape_text, needs_escaping

MAX_LEADS_PER_CALL = 300
MAX_MOBJECTS_PER_CALL = 100

_PROLOGUE = (
    f'<?xml version="1.0" encoding="UTF-8"?>\n<SOAP-ENV:Envelope xmlns:SOAP-ENV="{SOAP_ENV}" xmlns:ns1="{MKTOWS}">'
)


class UnencodableRecordError(PermanentError):
    """Record `index` of a call holds a value XML cannot carry; only that record can fail for it."""

    def __init__(self, index: int, field: str, reason: str) -> None:
        super().__init__(f"record {index}: field {field}: {reason}")
        self.index = index
        self.field = field
        self.reason = reason


class _FieldError(Exception):
    def __init__(self, field: str, cause: UnencodableTextError) -> None:
        super().__init__(field)
        self.field = field
        self.reason = str(cause)


@dataclass(frozen=True, slots=True)
class SoapRequest:
    """One Marketo call's body, serialized, ready to be signed and sent any number of times."""

    operation: Operation
    body: str
    records: int
    workspace: str | None = None


def _esc(value: str, field: str) -> str:
    try:
        return escape_text(value)
    except UnencodableTextError as exc:
        raise _FieldError(field, exc) from exc


def _lead_values(lead: Lead) -> list[str]:
    values = [value for pair in lead.attributes for value in pair]
    if lead.email is not None:
        values.append(lead.email)
    if lead.foreign_sys_person_id is not None:
        values.append(lead.foreign_sys_person_id)
    return values


_NAME_TO_VALUE: Final = "</attrName><attrValue>"
_BETWEEN_ATTRIBUTES: Final = "</attrValue></attribute><attribute><attrName>"


def _lead_xml(lead: Lead, out: list[str]) -> None:
    # One probe over all values decides whether any needs escaping: most leads need none.
    esc = _esc if needs_escaping("".join(_lead_values(lead))) else _plain
    out.append("<leadRecord>")
    if lead.id is not None:
        out.append(f"<Id>{lead.id:d}</Id>")
    if lead.email is not None:
        out.append(f"<Email>{esc(lead.email, 'Email')}</Email>")
    if lead.foreign_sys_person_id is not None:
        out.append(f"<ForeignSysPersonId>{esc(lead.foreign_sys_person_id, 'ForeignSysPersonId')}</ForeignSysPersonId>")
    if lead.foreign_sys_type is not None:
        out.append(f"<ForeignSysType>{lead.foreign_sys_type.value}</ForeignSysType>")
    if lead.attributes and esc is _plain:  # name and value of each pair joined in C
        out.append("<leadAttributeList><attribute><attrName>")
        out.append(_BETWEEN_ATTRIBUTES.join(map(_NAME_TO_VALUE.join, lead.attributes)))
        out.append("</attrValue></attribute></leadAttributeList>")
    elif lead.attributes:
        out.append("<leadAttributeList>")
        out.extend(
            f"<attribute><attrName>{esc(name, 'attribute name')}</attrName>"
            f"<attrValue>{esc(value, name)}</attrValue></attribute>"
            for name, value in lead.attributes
        )
        out.append("</leadAttributeList>")
    out.append("</leadRecord>")


def _plain(value: str, _field: str) -> str:
    return value


def _attrib_xml(element: str, attrib: Attrib) -> str:
    name = _esc(attrib.name, f"{element} name")
    return f"<{element}><name>{name}</name><value>{_esc(attrib.value, attrib.name)}</value></{element}>"


def _type_attrib_xml(type_attrib: TypeAttrib) -> str:
    attribs = "".join(_attrib_xml("attrib", a) for a in type_attrib.attribs)
    attr_list = f"<attrList>{attribs}</attrList>" if type_attrib.attribs else ""
    return f"<typeAttrib><attrType>{_esc(type_attrib.attr_type, 'attrType')}</attrType>{attr_list}</typeAttrib>"


def _association_xml(association: Association) -> str:
    parts = [f"<mObjAssociation><mObjType>{_esc(association.mobj_type, 'mObjType')}</mObjType>"]
    if association.id is not None:
        parts.append(f"<id>{association.id:d}</id>")
    if association.external_key is not None:
        parts.append(_attrib_xml("externalKey", association.external_key))
    parts.append("</mObjAssociation>")
    return "".join(parts)


def _mobject_xml(mobject: MObject, out: list[str]) -> None:
    out.append(f"<mObject><type>{_esc(mobject.type, 'type')}</type>")
    if mobject.id is not None:
        out.append(f"<id>{mobject.id:d}</id>")
    if mobject.external_key is not None:
        out.append(_attrib_xml("externalKey", mobject.external_key))
    if mobject.attribs:
        out.append(f"<attribList>{''.join(_attrib_xml('attrib', a) for a in mobject.attribs)}</attribList>")
    if mobject.type_attribs:
        out.append(f"<typeAttribList>{''.join(_type_attrib_xml(t) for t in mobject.type_attribs)}</typeAttribList>")
    if mobject.associations:
        associations = "".join(_association_xml(a) for a in mobject.associations)
        out.append(f"<associationList>{associations}</associationList>")
    out.append("</mObject>")


def sync_multiple_leads_request(leads: Sequence[Lead], *, dedup_enabled: bool) -> SoapRequest:
    """A syncMultipleLeads body for 1..300 leads, in order; raises UnencodableRecordError naming the record."""
    if not 0 < len(leads) <= MAX_LEADS_PER_CALL:
        msg = f"syncMultipleLeads carries 1 to {MAX_LEADS_PER_CALL} leads, not {len(leads)}"
        raise ValueError(msg)
    out = ["<ns1:paramsSyncMultipleLeads><leadRecordList>"]
    for index, lead in enumerate(leads):
        if lead.cookie is not None:
            msg = f"record {index}: syncMultipleLeads cannot carry a Marketo cookie; route it to syncLead"
            raise ValueError(msg)
        try:
            _lead_xml(lead, out)
        except _FieldError as exc:
            raise UnencodableRecordError(index, exc.field, exc.reason) from exc
    dedup = "true" if dedup_enabled else "false"
    out.append(f"</leadRecordList><dedupEnabled>{dedup}</dedupEnabled></ns1:paramsSyncMultipleLeads>")
    return SoapRequest(Operation.SYNC_MULTIPLE_LEADS, "".join(out), len(leads))


def sync_lead_request(lead: Lead, *, return_lead: bool, workspace: str | None = None) -> SoapRequest:
    """A syncLead body: the lead, returnLead, and its cookie as `marketoCookie`; the workspace goes in a header."""
    out = ["<ns1:paramsSyncLead>"]
    try:
        _lead_xml(lead, out)
        out.append(f"<returnLead>{'true' if return_lead else 'false'}</returnLead>")
        if lead.cookie is not None:
            out.append(f"<marketoCookie>{_esc(lead.cookie, 'marketoCookie')}</marketoCookie>")
        if workspace is not None:
            _esc(workspace, "workspace")
    except _FieldError as exc:
        raise UnencodableRecordError(0, exc.field, exc.reason) from exc
    out.append("</ns1:paramsSyncLead>")
    return SoapRequest(Operation.SYNC_LEAD, "".join(out), 1, workspace)


def sync_mobjects_request(mobjects: Sequence[MObject], *, operation: SyncOperation) -> SoapRequest:
    """A syncMObjects body for 1..100 objects under one operation; raises UnencodableRecordError."""
    if not 0 < len(mobjects) <= MAX_MOBJECTS_PER_CALL:
        msg = f"syncMObjects carries 1 to {MAX_MOBJECTS_PER_CALL} objects, not {len(mobjects)}"
        raise ValueError(msg)
    out = ["<ns1:paramsSyncMObjects><mObjectList>"]
    for index, mobject in enumerate(mobjects):
        try:
            _mobject_xml(mobject, out)
        except _FieldError as exc:
            raise UnencodableRecordError(index, exc.field, exc.reason) from exc
    out.append(f"</mObjectList><operation>{operation.value}</operation></ns1:paramsSyncMObjects>")
    return SoapRequest(Operation.SYNC_MOBJECTS, "".join(out), len(mobjects))


def render_envelope(request: SoapRequest, auth: AuthHeader) -> bytes:
    """The complete UTF-8 envelope for one attempt: signed header, optional workspace header, body."""
    header = (
        "<SOAP-ENV:Header><ns1:AuthenticationHeader>"
        f"<mktowsUserId>{escape_text(auth.user_id)}</mktowsUserId>"
        f"<requestSignature>{escape_text(auth.signature)}</requestSignature>"
        f"<requestTimestamp>{escape_text(auth.timestamp)}</requestTimestamp>"
        "</ns1:AuthenticationHeader>"
    )
    if request.workspace is not None:
        header += (
            "<ns1:MktowsContextHeader>"
            f"<targetWorkspace>{escape_text(request.workspace)}</targetWorkspace>"
            "</ns1:MktowsContextHeader>"
        )
    text = f"{_PROLOGUE}{header}</SOAP-ENV:Header><SOAP-ENV:Body>{request.body}</SOAP-ENV:Body></SOAP-ENV:Envelope>"
    return text.encode()


def build_envelope(request: SoapRequest, credentials: Credentials, now: datetime | None = None) -> bytes:
    """Sign afresh and render: what every attempt of a call sends."""
    return render_envelope(request, sign_request(credentials, now))
