"""What each REST call does to the simulated instance: the documented rules, applied to the shared store.

Each handler runs without awaiting, so a call's changes are atomic among concurrent calls. Each returns the
`result` array, how many records the call carried, and the identity values they touched (for `/_sim/calls`).
Where Adobe's documentation does not say which code Marketo gives, the code below is marked SIMULATOR'S CHOICE.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Final

import orjson

from pipeline.sim.catalog import LOOKUP_FIELDS, by_rest
from pipeline.sim.leads import StoredLead, email_key
from pipeline.sim.reasons import RecordSkippedError, RestCallError

if TYPE_CHECKING:
    from pipeline.sim.rest import RestCall
    from pipeline.sim.server import Simulator

MAX_RECORDS: Final = 300  # Sync Leads, Opportunities, Roles, and Get Leads' filterValues
MAX_MATCHES: Final = 1000  # "If more than 1,000 leads match the filter ... 1003, Too many results"
ACTIONS: Final = frozenset({"createOnly", "updateOnly", "createOrUpdate", "createDuplicate"})
OBJECT_ACTIONS: Final = frozenset({"createOnly", "updateOnly", "createOrUpdate"})
# SIMULATOR'S CHOICE: the shape of a Munchkin cookie ("id:287-GTJ-838&token:_mch-marketo.com-1396310362214-46169");
# anything else is the "invalid cookie value" of 1012.
_COOKIE: Final = re.compile(r"^id:[^&\s]+&token:_mch-[^&\s]+$")
_DEFAULT_FIELDS: Final = ("id", "email", "updatedAt", "createdAt", "firstName", "lastName")

Result = tuple[list[Any], int, tuple[str, ...]]


def skipped(exc: RecordSkippedError, **extra: Any) -> dict[str, Any]:  # noqa: ANN401 - JSON
    """A skipped record's entry in `result`."""
    return {**extra, "status": "skipped", "reasons": [{"code": exc.code, "message": exc.message}]}


def _shown(value: object) -> str:
    """A value a client sent, as an error message may quote it: text in short, anything else by its type."""
    # Never repr(): a list nested a thousand deep has none.
    return value[:80] if isinstance(value, str) else f"<{type(value).__name__}>"


def _input(payload: object, limit: int | None) -> list[Any]:
    if not isinstance(payload, dict):
        raise RestCallError("609", "Invalid JSON: the body is not an object")
    records = payload.get("input")
    if not isinstance(records, list) or not records:
        raise RestCallError("701", "input cannot be blank")
    if limit is not None and len(records) > limit:
        # SIMULATOR'S CHOICE: more records than a call takes is refused as a whole, with 1003.
        raise RestCallError("1003", f"Invalid data: {len(records)} records; a call takes at most {limit}")
    return records


# --- leads -----------------------------------------------------------------------------------------------------------


def _partition(sim: Simulator, name: object) -> str | None:
    if name is None:
        return None
    if not isinstance(name, str) or name not in set(sim.settings.workspaces.values()):
        # SIMULATOR'S CHOICE: a partition the API user cannot reach, or that does not exist, is 1008.
        raise RestCallError("1008", f"Access denied to partition '{_shown(name)}'")
    return name


def _values(sim: Simulator, record: dict[str, Any]) -> dict[str, str]:
    """The record's fields under their SOAP names (the store's), text as SOAP carries it; null clears (empty)."""
    fields = by_rest(sim.settings.lead_fields, sim.settings.custom_fields)
    values: dict[str, str] = {}
    for name, value in record.items():
        known = fields.get(name)
        if known is None:
            raise RecordSkippedError("1006", f"Field '{name}' not found")
        if name in {"id", "email"}:
            continue
        if known.read_only:
            raise RecordSkippedError("1003", f"Field '{name}' is read only")  # SIMULATOR'S CHOICE of the code
        if isinstance(value, dict | list):
            raise RecordSkippedError("1001", f"Invalid value for '{name}'")
        values[known.soap or name] = "" if value is None else _soap_text(value)
    return values


def _soap_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _found(sim: Simulator, lookup: str, value: object) -> list[StoredLead]:
    if lookup == "id":
        lead = sim.leads.get(value) if isinstance(value, int) and not isinstance(value, bool) else None
        return [] if lead is None else [lead]
    if not isinstance(value, str | int) or isinstance(value, bool) or value == "":
        raise RecordSkippedError("1003", f"Invalid data: the lookup field {lookup} has no value")
    if lookup == "email":
        return sim.leads.with_email(str(value))
    return sim.leads.with_attribute(by_rest(None)[lookup].soap or lookup, _soap_text(value))


def _sync_one(sim: Simulator, record: object, action: str, lookup: str, partition: str | None) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise RecordSkippedError("1003", "Invalid data: a record is not an object")
    if "id" in record and action != "updateOnly":
        raise RecordSkippedError("1003", "Invalid data: id is only allowed with updateOnly")
    email = record.get("email")
    if email is not None and (not isinstance(email, str) or not email.isascii()):
        raise RecordSkippedError("1003", "Invalid data: email must be ASCII text")  # SIMULATOR'S CHOICE of the code
    values = _values(sim, record)
    if action == "createDuplicate":
        found: list[StoredLead] = []
    else:
        if lookup not in record:
            raise RecordSkippedError("1003", f"Invalid data: the lookup field {lookup} is missing")
        found = _found(sim, lookup, record[lookup])
    if len(found) > 1 and action != "createOnly":
        raise RecordSkippedError("1007", "Multiple leads match the lookup criteria")
    if found and action == "createOnly":
        raise RecordSkippedError("1005", "Lead already exists")
    if not found and action == "updateOnly":
        raise RecordSkippedError("1004", "Lead not found")
    if found and partition is not None and found[0].partition != partition:
        raise RecordSkippedError("1010", "Partition update not allowed")
    lead = found[0] if found else sim.leads.create(partition or sim.settings.workspaces["Default"])
    sim.leads.apply(lead, email=email, attributes=values)
    return {"id": lead.id, "status": "updated" if found else "created"}


def sync_leads(sim: Simulator, call: RestCall) -> Result:
    """Sync Leads: createOnly, updateOnly, createOrUpdate or createDuplicate, by `lookupField`, in a partition."""
    payload = call.json_body()
    records = _input(payload, MAX_RECORDS if sim.settings.max_leads_per_call is not None else None)
    action = payload.get("action", "createOrUpdate")
    lookup = payload.get("lookupField", "email")
    if not isinstance(action, str) or action not in ACTIONS:  # a list or an object cannot even be looked up
        raise RestCallError("1003", f"Invalid data: action '{_shown(action)}'")
    if not isinstance(lookup, str) or lookup not in by_rest(sim.settings.lead_fields, sim.settings.custom_fields):
        raise RestCallError("1006", f"Field '{_shown(lookup)}' not found")
    if lookup not in LOOKUP_FIELDS:
        raise RestCallError("1011", f"Field '{lookup}' not supported")
    partition = _partition(sim, payload.get("partitionName")) if action in {"createOnly", "createOrUpdate"} else None
    result, touched = [], []
    for record in records:
        try:
            entry = _sync_one(sim, record, action, lookup, partition)
        except RecordSkippedError as exc:
            result.append(skipped(exc))
            continue
        result.append(entry)
        touched += _lead_identities(sim.leads.get(entry["id"]))
    return result, len(records), tuple(touched)


def _lead_identities(lead: StoredLead | None) -> list[str]:
    if lead is None:
        return []
    found = [f"id:{lead.id}"]
    if lead.email:
        found.append(f"email:{email_key(lead.email)}")
    return found


def _typed(data_type: str, value: str) -> object:
    """A stored text as REST types it (SIMULATOR'S CHOICE: text that does not parse stays text)."""
    try:
        if data_type == "integer":
            return int(value)
        if data_type in {"currency", "float"}:
            return float(value)
    except ValueError:
        return value
    if data_type == "boolean" and value in {"true", "false"}:
        return value == "true"
    return value


def lead_json(sim: Simulator, lead: StoredLead, fields: list[str]) -> dict[str, Any]:
    """A lead as Get Leads returns it: the asked fields that have a value."""
    catalog = by_rest(sim.settings.lead_fields, sim.settings.custom_fields)
    out: dict[str, Any] = {"id": lead.id}
    for name in fields:
        if name == "email":
            if lead.email is not None:
                out["email"] = lead.email
            continue
        field = catalog.get(name)
        value = lead.attributes.get(field.soap or name) if field is not None else None
        if field is not None and value:
            out[name] = _typed(field.data_type, value)
    return out


def get_leads(sim: Simulator, call: RestCall) -> Result:
    """Get Leads by filter type (GET, or POST with `_method=GET` and the query in a form body)."""
    form = call.form()
    filter_type, given = form.get("filterType"), form.get("filterValues")
    if not filter_type or not given:
        raise RestCallError("1003", "Invalid data: filterType and filterValues are required")
    if filter_type not in LOOKUP_FIELDS:
        raise RestCallError("1011", f"Field '{filter_type}' not supported")
    values = [v for v in given.split(",") if v]
    if len(values) > MAX_RECORDS:
        raise RestCallError("1003", f"Invalid data: {len(values)} filter values; at most {MAX_RECORDS}")
    fields = [f for f in form.get("fields", "").split(",") if f] or list(_DEFAULT_FIELDS)
    matched: dict[int, StoredLead] = {}
    for value in values:
        key: object = int(value) if filter_type == "id" and value.isdigit() else value
        for lead in _found(sim, filter_type, key) if filter_type != "id" or isinstance(key, int) else []:
            matched[lead.id] = lead
    if len(matched) > MAX_MATCHES:
        raise RestCallError("1003", "Too many results match the filter")
    return [lead_json(sim, lead, fields) for lead in matched.values()], 0, ()


def associate_lead(sim: Simulator, call: RestCall) -> Result:
    """Associate Lead: the cookie's web activity is the lead's from now on."""
    lead_id = call.match.get("id", "")
    lead = sim.leads.get(int(lead_id)) if lead_id.isdigit() else None
    if lead is None:
        raise RestCallError("1004", "Lead not found")  # SIMULATOR'S CHOICE: a response-level 1004
    cookie = call.form().get("cookie", "")
    if not _COOKIE.match(cookie):
        raise RestCallError("1012", f"Invalid cookie value '{cookie}'")
    sim.leads.associate(lead, cookie)
    return [], 1, (f"id:{lead.id}", f"cookie:{cookie}")


# --- opportunities, roles, programs ----------------------------------------------------------------------------------


def _objects(sim: Simulator, call: RestCall) -> tuple[str, list[Any]]:
    payload = call.json_body()
    records = _input(payload, MAX_RECORDS if sim.settings.max_mobjects_per_call is not None else None)
    action = payload.get("action", "createOrUpdate")
    dedupe = payload.get("dedupeBy", "dedupeFields")
    if not isinstance(action, str) or action not in OBJECT_ACTIONS:
        raise RestCallError("1003", f"Invalid data: action '{_shown(action)}'")
    if dedupe not in ("dedupeFields", "idField") or (dedupe == "idField" and action != "updateOnly"):
        raise RestCallError("1003", "Invalid data: dedupeBy idField is valid only with updateOnly")
    return action, records


def sync_opportunities(sim: Simulator, call: RestCall) -> Result:
    """Sync Opportunities: deduplicated by externalOpportunityId; answers each record's seq and marketoGUID."""
    action, records = _objects(sim, call)
    result, touched = [], []
    for seq, record in enumerate(records):
        try:
            status, stored = sim.mobjects.sync_opportunity(record, action)
        except RecordSkippedError as exc:
            result.append(skipped(exc, seq=seq))
            continue
        result.append({"seq": seq, "status": status, "marketoGUID": stored.guid})
        touched.append(
            f"mobj:Opportunity:externalOpportunityId={stored.external_key[1] if stored.external_key else ''}"
        )
    return result, len(records), tuple(touched)


def sync_roles(sim: Simulator, call: RestCall) -> Result:
    """Sync Opportunity Roles: deduplicated by (externalOpportunityId, leadId, role); both must exist."""
    action, records = _objects(sim, call)
    result = []
    for seq, record in enumerate(records):
        try:
            status, stored = sim.mobjects.sync_role(record, action, lead_exists=lambda n: sim.leads.get(n) is not None)
        except RecordSkippedError as exc:
            result.append(skipped(exc, seq=seq))
            continue
        result.append({"seq": seq, "status": status, "marketoGUID": stored.guid})
    return result, len(records), ()


def _json_list(form: dict[str, str], name: str) -> list[Any]:
    text = form.get(name)
    if not text:
        return []
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise RestCallError("609", f"Invalid JSON in {name}: {exc}") from exc
    if not isinstance(value, list):
        raise RestCallError("1003", f"Invalid data: {name} is not an array")
    return value


def update_program(sim: Simulator, call: RestCall) -> Result:
    """Update Program: costs appended (or all replaced with costsDestructiveUpdate), tags set, name, description."""
    if call.content_type != "application/x-www-form-urlencoded":
        raise RestCallError("612", f"Invalid Content Type: {call.content_type or 'none'}")
    program_id = call.match.get("id", "")
    form = call.form()
    program = sim.mobjects.program(int(program_id)) if program_id.isdigit() else None
    if program is None:
        raise RestCallError("702", f"Program {program_id} not found")  # SIMULATOR'S CHOICE of the code
    sim.mobjects.update_program(
        program,
        costs=_json_list(form, "costs"),
        destructive=form.get("costsDestructiveUpdate", "false").lower() == "true",
        tags=_json_list(form, "tags"),
        names={k: form[k] for k in ("name", "description") if k in form},
        allowed_tags=sim.settings.program_tags,
    )
    return [sim.mobjects.program_json(program)], 1, (f"mobj:Program:{program.id}",)
