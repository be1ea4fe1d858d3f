"""REST requests for a batch's records: Sync Leads, Associate Lead, Get Leads, Sync Opportunities and Roles, programs.

A request is built once and sent any number of times (each attempt adds the current access token). A record that
REST cannot carry (a lead known only by its cookie, an unknown workspace, a field Marketo does not have) is refused
alone with the reason, never the call.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote, urlencode

import orjson

from pipeline.marketo.call import Encoded, Refusal
from pipeline.marketo.rest.fields import FieldMap
from pipeline.marketo.rest.route import (
    CREATE_DUPLICATE,
    UNSENDABLE,
    UPDATE_ONLY,
    RestRouting,
    lead_action,
)
from pipeline.records import Attrib, Lead, MObject, Record, RestOperation, Route, SyncOperation

JSON: Final = "application/json"
FORM: Final = "application/x-www-form-urlencoded"
# Marketo refuses bodies over 1 MB with HTTP 413 (rest-api.md): a larger body is split before it is sent.
MAX_BODY_BYTES: Final = 1_000_000
LEAD_FIELDS_RETURNED: Final = ("id", "email")
MAX_ID: Final = 2**31 - 1  # Marketo's ids are 32-bit integers
MAX_EXACT: Final = 2**53  # the largest whole numbers a double holds exactly


@dataclass(frozen=True, slots=True)
class RestRequest:
    """One REST call, ready to send: its path, query, body, and the records whose outcomes it returns."""

    operation: RestOperation
    path: str
    body: bytes
    records: int
    content_type: str = JSON
    query: str = ""  # already encoded, without the "?"
    lead_ids: tuple[int, ...] = ()  # Get Leads: the ids asked for, in record order
    fields: tuple[str, ...] = ()  # Get Leads: the REST fields asked for
    action: str = ""  # Sync calls: createOnly / updateOnly / createOrUpdate / createDuplicate


class _RefusedError(Exception):
    def __init__(self, message: str, code: str | None = None, *, invalid: bool = True) -> None:
        super().__init__(message)
        self.code = code
        self.invalid = invalid


def _json(payload: object) -> bytes:
    return orjson.dumps(payload)


# --- leads -----------------------------------------------------------------------------------------------------------


def _lead_refusal(record: Record, routing: RestRouting) -> str | None:
    """Why a lead record cannot go over REST at all, or None."""
    lead = record.lead
    if lead is None:
        return "not a lead"
    action, _ = lead_action(lead, routing)
    if action == UNSENDABLE:
        if lead.foreign_sys_person_id is not None:
            return "ForeignSysPersonId needs marketo.fsp_field over REST (the custom field that holds it)"
        return "a lead known only by its Marketo cookie has no REST path: give its Id, Email or ForeignSysPersonId"
    if record.workspace is not None and record.workspace not in routing.partitions:
        return f"workspace {record.workspace!r} has no lead partition in marketo.partitions"
    return None


def _encode_each(
    records: Sequence[Record], encode: Callable[[Record], dict[str, object]]
) -> tuple[list[dict[str, object]], list[int], list[Refusal]]:
    """Each record's `input` entry, the positions sent, and a refusal for each record `encode` refuses alone."""
    inputs: list[dict[str, object]] = []
    sent: list[int] = []
    refused: list[Refusal] = []
    for index, record in enumerate(records):
        try:
            inputs.append(encode(record))
        except _RefusedError as exc:
            refused.append(Refusal(index, exc.code, str(exc), invalid=exc.invalid))
            continue
        sent.append(index)
    return inputs, sent, refused


def _put(out: dict[str, object], name: str, value: object) -> None:
    """Set `name` once: Marketo wants keys unique in a record; a second, different value cannot be sent."""
    if name in out:
        held = out[name]
        same = held == value or (
            isinstance(held, str) and isinstance(value, str) and held.strip().lower() == value.strip().lower()
        )
        if not same:
            msg = f"field {name} is given twice with different values"
            raise _RefusedError(msg)
        return
    out[name] = value


def lead_input(lead: Lead, lookup: str, fields: FieldMap, fsp_field: str | None) -> dict[str, object]:
    """One record of Sync Leads' `input`: its lookup value first, then its fields under their REST names.

    Raises _RefusedError for a field Marketo does not have (1006), or one REST cannot carry as given.
    """
    out: dict[str, object] = {}
    if lookup == "id" and lead.id is not None:
        out["id"] = lead.id
    if lead.foreign_sys_person_id is not None and fsp_field:
        out[fsp_field] = lead.foreign_sys_person_id
    if lead.email is not None:
        out["email"] = lead.email
    by_soap = fields.by_soap
    for name, value in lead.attributes:
        rest = by_soap.get(name) or fields.rest_name(name)
        if rest is None:
            raise _RefusedError(f"Field '{name}' not found", "1006", invalid=False)
        if rest == "id":
            msg = "Id is the lead's key, not a field to set"
            raise _RefusedError(msg)
        if rest in out:
            _put(out, rest, value or None)
        else:
            out[rest] = value or None  # SOAP clears a field with an empty value, REST with null
    return out


def build_sync_leads(
    route: Route, records: Sequence[Record], fields: FieldMap, routing: RestRouting
) -> Encoded[RestRequest]:
    """Sync Leads (`POST /rest/v1/leads.json`) for records of one (action, lookupField, partitionName)."""
    action, lookup, partition = route.params

    def encode(record: Record) -> dict[str, object]:
        reason = _lead_refusal(record, routing)
        if reason is not None:
            raise _RefusedError(reason)
        return lead_input(record.lead or Lead(), lookup, fields, routing.fsp_field)

    inputs, sent, refused = _encode_each(records, encode)
    if not inputs:
        return Encoded(None, (), tuple(refused))
    body: dict[str, object] = {"action": action}
    if action != CREATE_DUPLICATE:
        body["lookupField"] = lookup
    if partition and action != UPDATE_ONLY:
        body["partitionName"] = partition
    body["input"] = inputs
    request = RestRequest(RestOperation.SYNC_LEADS, "/rest/v1/leads.json", _json(body), len(inputs), action=action)
    return Encoded(request, tuple(sent), tuple(refused))


def associate_request(lead_id: int, cookie: str) -> RestRequest:
    """Associate Lead: attach a Munchkin cookie to a synced lead (`POST /rest/v1/leads/{id}/associate.json`)."""
    return RestRequest(
        RestOperation.ASSOCIATE_LEAD,
        f"/rest/v1/leads/{lead_id:d}/associate.json",
        b"",
        1,
        query=urlencode({"cookie": cookie}, quote_via=quote),
    )


def get_leads_request(lead_ids: Sequence[int], fields: Sequence[str]) -> RestRequest:
    """Get Leads by id, as the documented POST with `_method=GET` (the values never make the URI too long)."""
    asked = tuple(dict.fromkeys((*LEAD_FIELDS_RETURNED, *fields)))
    form = {"filterType": "id", "filterValues": ",".join(map(str, lead_ids)), "fields": ",".join(asked)}
    return RestRequest(
        RestOperation.GET_LEADS,
        "/rest/v1/leads.json",
        urlencode(form).encode(),
        len(lead_ids),
        content_type=FORM,
        query="_method=GET",
        lead_ids=tuple(lead_ids),
        fields=asked,
    )


def describe_request() -> RestRequest:
    """Describe Lead: every lead field with its REST and SOAP names."""
    return RestRequest(RestOperation.DESCRIBE_LEADS, "/rest/v1/leads/describe.json", b"", 0)


# --- opportunities and roles ---------------------------------------------------------------------------------------


def rest_field(soap_name: str) -> str:
    """An Opportunity or role attribute's REST name: the SOAP name with a lower-case first letter (`CloseDate`)."""
    return soap_name[:1].lower() + soap_name[1:]


def _attribs(attribs: Sequence[Attrib], out: dict[str, object], skip: frozenset[str] = frozenset()) -> None:
    for attrib in attribs:
        if attrib.name not in skip:
            _put(out, rest_field(attrib.name), attrib.value or None)


def _association_key(mobject: MObject, mobj_type: str) -> tuple[str | None, int | None]:
    """The external key value and the id of `mobject`'s association with a `mobj_type`, when it has one."""
    for association in mobject.associations:
        if association.mobj_type == mobj_type:
            key = association.external_key
            return (None if key is None else key.value), association.id
    return None, None


def opportunity_input(mobject: MObject) -> dict[str, object]:
    """One record of Sync Opportunities: `externalOpportunityId` from the external key, fields, `externalCompanyId`."""
    if mobject.external_key is None:
        msg = "REST finds an Opportunity by its externalOpportunityId: give its externalKey (a SOAP id cannot go)"
        raise _RefusedError(msg)
    if mobject.type_attribs:
        msg = "typeAttribs belong to Programs, not Opportunities"
        raise _RefusedError(msg)
    out: dict[str, object] = {"externalOpportunityId": mobject.external_key.value}
    for association in mobject.associations:
        if association.mobj_type != "Company":
            msg = f"an Opportunity is associated with a Company, not a {association.mobj_type}"
            raise _RefusedError(msg)
        if association.external_key is None:
            msg = "REST links a Company by its externalCompanyId: give the association's externalKey"
            raise _RefusedError(msg)
        _put(out, "externalCompanyId", association.external_key.value)
    _attribs(mobject.attribs, out)
    return out


def _attrib_value(mobject: MObject, name: str) -> str | None:
    for attrib in mobject.attribs:
        if attrib.name == name:
            return attrib.value
    return None


def _lead_id(mobject: MObject) -> int:
    key, lead_id = _association_key(mobject, "Lead")
    text = str(lead_id) if lead_id is not None else (key or _attrib_value(mobject, "PersonId"))
    try:
        number = float(text) if text is not None else 0.0
    except ValueError:
        number = 0.0
    if not number.is_integer() or not 0 < number <= MAX_ID:
        msg = "a role needs its lead's Id (a Lead association or PersonId)"
        raise _RefusedError(msg)
    return int(number)


def role_input(mobject: MObject) -> dict[str, object]:
    """One record of Sync Opportunity Roles: the compound key (externalOpportunityId, leadId, role) and fields."""
    external, _ = _association_key(mobject, "Opportunity")
    external = external or _attrib_value(mobject, "ExternalOpportunityId")
    if not external:
        msg = (
            "REST finds a role's Opportunity by its externalOpportunityId: associate the Opportunity by its "
            "externalKey (an OpportunityId cannot go)"
        )
        raise _RefusedError(msg)
    out: dict[str, object] = {"externalOpportunityId": external, "leadId": _lead_id(mobject)}
    skip = frozenset({"OpportunityId", "PersonId", "ExternalOpportunityId"})
    _attribs(mobject.attribs, out, skip)
    return out


def build_sync_objects(route: Route, records: Sequence[Record]) -> Encoded[RestRequest]:
    """Sync Opportunities or Sync Opportunity Roles (`dedupeBy: dedupeFields`) for records of one action."""
    roles = route.operation is RestOperation.SYNC_OPPORTUNITY_ROLES

    def encode(record: Record) -> dict[str, object]:
        if record.mobject is None:
            msg = "not an object"
            raise _RefusedError(msg)
        return role_input(record.mobject) if roles else opportunity_input(record.mobject)

    inputs, sent, refused = _encode_each(records, encode)
    if not inputs:
        return Encoded(None, (), tuple(refused))
    action = route.params[0]
    path = "/rest/v1/opportunities/roles.json" if roles else "/rest/v1/opportunities.json"
    body = _json({"action": action, "dedupeBy": "dedupeFields", "input": inputs})
    operation = RestOperation.SYNC_OPPORTUNITY_ROLES if roles else RestOperation.SYNC_OPPORTUNITIES
    request = RestRequest(operation, path, body, len(inputs), action=action)
    return Encoded(request, tuple(sent), tuple(refused))


# --- programs --------------------------------------------------------------------------------------------------------


def _number(text: str, what: str) -> int | float:
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):  # JSON has no NaN nor infinity: it would go as null
        msg = f"{what} {text!r} is not a number"
        raise _RefusedError(msg)
    # A whole number goes as an integer while JSON writers take it as one (and keep every digit of it).
    return int(number) if number.is_integer() and abs(number) <= MAX_EXACT else number


def _cost(values: dict[str, str]) -> dict[str, object]:
    if "Id" in values:
        msg = "REST appends program costs or replaces them all: it cannot change one cost by its Id"
        raise _RefusedError(msg)
    month, amount = values.get("Month"), values.get("Amount")
    if not month or amount is None:
        msg = "a Cost needs Month and Amount"
        raise _RefusedError(msg)
    start = f"{month}-01" if len(month) == len("2026-01") else month  # SOAP gives a month, REST a start date
    cost: dict[str, object] = {"startDate": start, "cost": _number(amount, "Amount")}
    if values.get("Note"):
        cost["note"] = values["Note"]
    return cost


def program_form(mobject: MObject) -> dict[str, str]:
    """The form of a program update: costs appended, tags set, name and description."""
    costs: list[dict[str, object]] = []
    tags: list[dict[str, str]] = []
    for type_attrib in mobject.type_attribs:
        values = {a.name: a.value for a in type_attrib.attribs}
        if type_attrib.attr_type == "Cost":
            costs.append(_cost(values))
        elif type_attrib.attr_type == "Tag" and values.get("Type") and values.get("Value") is not None:
            tags.append({"tagType": values["Type"], "tagValue": values["Value"]})
        else:
            msg = f"a program's {type_attrib.attr_type} needs Month and Amount (Cost) or Type and Value (Tag)"
            raise _RefusedError(msg)
    form: dict[str, str] = {}
    for attrib in mobject.attribs:
        if attrib.name not in {"Name", "Description"}:
            msg = f"REST updates a program's name, description, costs and tags, not {attrib.name}"
            raise _RefusedError(msg)
        form[rest_field(attrib.name)] = attrib.value
    if costs:
        form["costs"] = orjson.dumps(costs).decode()
    if tags:
        form["tags"] = orjson.dumps(tags).decode()
    if not form:
        msg = "nothing to update: no cost, tag, name or description"
        raise _RefusedError(msg)
    return form


def build_update_program(records: Sequence[Record]) -> Encoded[RestRequest]:
    """Update Program (`POST /rest/asset/v1/program/{id}.json`, a form): one program per call."""
    record = records[0]
    mobject = record.mobject
    try:
        if mobject is None or mobject.id is None:
            raise _RefusedError("a Program is named by its id")  # noqa: TRY301
        if record.mobject_operation not in {None, SyncOperation.UPDATE}:
            raise _RefusedError("a Program can only be updated")  # noqa: TRY301
        form = program_form(mobject)
    except _RefusedError as exc:
        return Encoded(None, (), (Refusal(0, exc.code, str(exc), invalid=exc.invalid),))
    path = f"/rest/asset/v1/program/{mobject.id:d}.json"
    request = RestRequest(RestOperation.UPDATE_PROGRAM, path, urlencode(form).encode(), 1, content_type=FORM)
    refused = tuple(Refusal(i, None, "one program per call", invalid=False) for i in range(1, len(records)))
    return Encoded(request, (0,), refused)


def build_request(
    route: Route, records: Sequence[Record], fields: FieldMap, routing: RestRouting
) -> Encoded[RestRequest]:
    """The call that carries `records` along `route`, and the records it cannot carry."""
    if route.operation is RestOperation.SYNC_LEADS:
        return build_sync_leads(route, records, fields, routing)
    if route.operation is RestOperation.UPDATE_PROGRAM:
        return build_update_program(records)
    return build_sync_objects(route, records)
