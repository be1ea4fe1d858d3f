"""The simulator's MObjects: Programs (UPDATE only: costs, tags and channel), Opportunities and their person roles.

INSERT creates new objects and skips existing ones; UPDATE changes existing ones and skips new ones;
UPSERT does both. An object is found by its id or by its external key. Each call runs without awaiting.

Associations follow the syncMObjects documentation: an Opportunity may name its Company, an OpportunityPersonRole
its Lead and its Opportunity (instead of the OpportunityId and PersonId attributes, or beside them), each by id
or external key; the objects named must exist, and an object has one association of each type (a new one replaces
the old). SIMULATOR'S CHOICE: the simulator keeps no Companies, so any Company named is taken as it is.
"""

from __future__ import annotations

import copy
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from pipeline.sim.reasons import RecordSkippedError, RestCallError

TYPES: Final = frozenset({"Program", "Opportunity", "OpportunityPersonRole"})
# Which objects each type may be associated with (the seed's mObjAssociation row), and the attribute each fills.
ASSOCIATIONS: Final[dict[str, dict[str, str | None]]] = {
    "Program": {},
    "Opportunity": {"Company": None},
    "OpportunityPersonRole": {"Lead": "PersonId", "Opportunity": "OpportunityId"},
}
CHANNEL: Final = "Channel"  # a Program's channel travels as a Tag whose Type is Channel (getMObjects' replies)
_COST_REQUIRED: Final = ("Month", "Amount")
_TAG_REQUIRED: Final = ("Type", "Value")
_ROLE_REQUIRED: Final = ("OpportunityId", "PersonId")
_ROLE_OBJECT: Final = {"OpportunityId": "Opportunity", "PersonId": "Lead"}
_GUIDS: Final = uuid.UUID("6d1c8d2e-7c1a-4c53-9a57-0d1f1d0b6b1e")
# The REST fields of an Opportunity and of a role (opportunities.md, opportunity-roles.md); the store keeps their
# SOAP names, the REST name with a capital first letter (`closeDate` is `CloseDate`).
OPPORTUNITY_FIELDS: Final = frozenset(
    {
        "externalOpportunityId",
        "name",
        "description",
        "type",
        "stage",
        "amount",
        "closeDate",
        "isClosed",
        "isWon",
        "probability",
        "expectedRevenue",
        "fiscalQuarter",
        "fiscalYear",
        "forecastCategoryName",
        "leadSource",
        "lastActivityDate",
        "nextStep",
        "quantity",
        "externalCompanyId",
        "externalSalesPersonId",
        "externalCreatedDate",
    }
)
ROLE_FIELDS: Final = frozenset({"externalOpportunityId", "leadId", "role", "isPrimary", "externalCreatedDate"})


@dataclass(frozen=True, slots=True)
class MObjectInput:
    """An `mObject` as a request carried it."""

    type: str
    id: int | None = None
    external_key: tuple[str, str] | None = None
    attribs: tuple[tuple[str, str], ...] = ()
    type_attribs: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    associations: tuple[dict[str, Any], ...] = ()


@dataclass(slots=True)
class StoredMObject:
    """One object of the simulated instance."""

    type: str
    id: int
    external_key: tuple[str, str] | None = None
    attribs: dict[str, str] = field(default_factory=dict)
    type_attribs: list[dict[str, Any]] = field(default_factory=list)
    associations: list[dict[str, Any]] = field(default_factory=list)

    @property
    def guid(self) -> str:
        """The object's marketoGUID, as REST names it (derived from its type and id)."""
        return str(uuid.uuid5(_GUIDS, f"{self.type}:{self.id}"))

    def snapshot(self) -> tuple[object, ...]:
        """A copy of everything a sync can change, to tell UPDATED from UNCHANGED.

        A role's Lead and Opportunity associations are left out: its PersonId and OpportunityId say which they are,
        whichever way (id, external key, attribute) the request named them.
        """
        return (
            self.external_key,
            copy.deepcopy(self.attribs),
            copy.deepcopy(self.type_attribs),
            [a for a in self.associations if ASSOCIATIONS[self.type].get(a.get("mObjType", "")) is None],
        )

    def to_json(self) -> dict[str, Any]:
        """The object as `GET /_sim/mobjects` shows it."""
        key = None if self.external_key is None else {"name": self.external_key[0], "value": self.external_key[1]}
        return {
            "type": self.type,
            "id": self.id,
            "externalKey": key,
            "attribs": dict(self.attribs),
            "typeAttribs": copy.deepcopy(self.type_attribs),
            "associations": copy.deepcopy(self.associations),
        }


@dataclass(frozen=True, slots=True)
class MObjectOutcome:
    """One `mObjStatus`."""

    status: str
    id: int = 0
    external_key: tuple[str, str] | None = None
    error: str | None = None


class LeadFinder(Protocol):
    """How the object store looks up the leads that roles name (the simulator's LeadStore)."""

    def find(self, lead_id: int | None, key: tuple[str, str] | None) -> int | None:
        """The id of the lead with this id, or whose attribute `key[0]` holds `key[1]`; None when there is none."""
        ...


class _NoLeads:
    def find(self, lead_id: int | None, key: tuple[str, str] | None) -> int | None:
        del lead_id, key
        return None


class MObjectStore:
    """Objects by (type, id), with an index on (type, external key name, value)."""

    def __init__(
        self,
        programs: tuple[int, ...] | None = None,
        *,
        leads: LeadFinder | None = None,
        tags: dict[str, tuple[str, ...]] | None = None,
        channels: tuple[str, ...] | None = None,
    ) -> None:
        # None: every positive id names an existing Program (they are made in Marketo's UI, not the API).
        self.programs = programs
        self.leads: LeadFinder = _NoLeads() if leads is None else leads  # an empty LeadStore is falsy
        # The tag values and channels a Program may take; None: any (they are defined in Marketo Admin).
        self.tags = tags
        self.channels = channels
        self._objects: dict[tuple[str, int], StoredMObject] = {}
        self._by_key: dict[tuple[str, str, str], int] = {}
        self._by_value: dict[tuple[str, str], int] = {}  # (type, external key value): how REST finds an Opportunity
        self._roles: dict[tuple[int, int, str], int] = {}  # (opportunity id, lead id, role): a role's REST key
        self._next_id = 1
        self._next_cost_id = 1

    def all(self) -> list[StoredMObject]:
        """Every object, in creation order."""
        return list(self._objects.values())

    def _find(self, obj: MObjectInput) -> StoredMObject | None:
        if obj.id is not None:
            found = self._objects.get((obj.type, obj.id))
            if found is None and obj.type == "Program" and self._program_exists(obj.id):
                found = StoredMObject(type="Program", id=obj.id)
                self._objects[("Program", obj.id)] = found
            return found
        if obj.external_key is not None:
            object_id = self._by_key.get((obj.type, *obj.external_key))
            return None if object_id is None else self._objects[(obj.type, object_id)]
        return None

    def _program_exists(self, program_id: int) -> bool:
        return program_id > 0 if self.programs is None else program_id in self.programs

    def sync(self, obj: MObjectInput, operation: str) -> MObjectOutcome:
        """Apply one object under INSERT, UPDATE or UPSERT."""
        key = obj.external_key
        if obj.type not in TYPES:
            return MObjectOutcome("FAILED", obj.id or 0, key, f"Unknown MObject type: {obj.type}")
        if obj.type == "Program" and operation != "UPDATE":
            return MObjectOutcome("FAILED", obj.id or 0, key, "Program supports the UPDATE operation only")
        if obj.type == "Program" and obj.id is None:
            return MObjectOutcome("FAILED", 0, key, "Program id is required")
        found = self._find(obj)
        if found is None:
            if operation == "UPDATE":
                return MObjectOutcome("SKIPPED", obj.id or 0, key, None)
            return self._create(obj)
        if operation == "INSERT":
            return MObjectOutcome("SKIPPED", found.id, key, None)
        before = found.snapshot()
        role_key = _role_key(found)
        error = self._apply(found, obj)
        if error is not None:
            return MObjectOutcome("FAILED", found.id, key, error)
        if _role_key(found) != role_key:  # moved to another lead, opportunity or role: found under its new key
            if self._roles.get(role_key) == found.id:  # type: ignore[arg-type]
                del self._roles[role_key]  # type: ignore[arg-type]
            self._index(found)
        status = "UNCHANGED" if found.snapshot() == before else "UPDATED"
        return MObjectOutcome(status, found.id, key, None)

    def _create(self, obj: MObjectInput) -> MObjectOutcome:
        stored = StoredMObject(type=obj.type, id=self._next_id, external_key=obj.external_key)
        error = self._apply(stored, obj)
        if error is None and obj.type == "OpportunityPersonRole":
            missing = [name for name in _ROLE_REQUIRED if not stored.attribs.get(name)]
            if missing:
                error = f"Required attribute missing: {missing[0]} (or a {_ROLE_OBJECT[missing[0]]} association)"
        if error is not None:
            return MObjectOutcome("FAILED", 0, obj.external_key, error)
        self._next_id += 1
        self._objects[(obj.type, stored.id)] = stored
        self._index(stored)
        return MObjectOutcome("CREATED", stored.id, obj.external_key, None)

    def _index(self, stored: StoredMObject) -> None:
        self._objects[(stored.type, stored.id)] = stored
        if stored.external_key is not None:
            self._by_key[(stored.type, *stored.external_key)] = stored.id
            self._by_value[(stored.type, stored.external_key[1])] = stored.id
        key = _role_key(stored)
        if key[0] and key[1]:
            self._roles[key] = stored.id  # type: ignore[index]

    def _apply(self, stored: StoredMObject, obj: MObjectInput) -> str | None:
        """Change `stored` as `obj` says; a message instead when `obj` is invalid (nothing changed then)."""
        new_type_attribs = copy.deepcopy(stored.type_attribs)
        for attr_type, pairs in obj.type_attribs:
            error = self._apply_type_attrib(stored.type, new_type_attribs, attr_type, dict(pairs))
            if error is not None:
                return error
        attribs = dict(obj.attribs)
        associations = {a.get("mObjType"): a for a in stored.associations}
        for kind, attribute in ASSOCIATIONS[stored.type].items():
            if attribute is not None and attribute in attribs:  # named by attribute now: the old link is stale
                associations.pop(kind, None)
        for association in obj.associations:
            resolved = self._associate(stored.type, association)
            if isinstance(resolved, str):
                return resolved
            kind, object_id = resolved
            attribute = ASSOCIATIONS[stored.type][kind]
            if attribute is not None:
                given = _int(attribs.get(attribute))
                if given is not None and given != object_id:
                    # SIMULATOR'S CHOICE: the docs do not say which wins when both name the object; neither does.
                    return f"{attribute} {given} and the associated {kind} {object_id} disagree"
                attribs[attribute] = str(object_id)
            associations[kind] = association  # SIMULATOR'S CHOICE: of two of one type in a request, the later
        error = self._check_references(stored.type, attribs)
        if error is not None:
            return error
        stored.type_attribs = new_type_attribs
        stored.attribs.update(attribs)
        stored.associations = list(associations.values())
        return None

    def _associate(self, object_type: str, association: dict[str, Any]) -> tuple[str, int | None] | str:
        """The associated object's type and id (None for a Company); a message when it may not be, or is not there."""
        kind = association.get("mObjType")
        allowed = ASSOCIATIONS[object_type]
        if kind not in allowed:
            named = ", ".join(allowed) or "nothing"
            return f"{object_type} cannot be associated with {kind}: only with {named}"
        key = association.get("externalKey")
        external = None if key is None else (key["name"], key["value"])
        if association.get("id") is None and external is None:
            return f"The {kind} association needs an id or an externalKey"
        if kind == "Company":
            return kind, None
        if kind == "Lead":
            found = self.leads.find(association.get("id"), external)
        else:
            target = self._find(MObjectInput(kind, association.get("id"), external))
            found = None if target is None else target.id
        if found is None:
            return f"Associated {kind} not found: {association.get('id') or external}"
        return kind, found

    def _check_references(self, object_type: str, attribs: dict[str, str]) -> str | None:
        """A role's OpportunityId and PersonId must name an Opportunity and a lead that exist."""
        if object_type != "OpportunityPersonRole":
            return None
        opportunity, person = attribs.get("OpportunityId"), attribs.get("PersonId")
        if opportunity and ((number := _int(opportunity)) is None or ("Opportunity", number) not in self._objects):
            return f"Opportunity not found: OpportunityId {opportunity}"
        if person and ((number := _int(person)) is None or self.leads.find(number, None) is None):
            return f"Lead not found: PersonId {person}"
        return None

    def _apply_type_attrib(
        self, object_type: str, type_attribs: list[dict[str, Any]], attr_type: str, values: dict[str, str]
    ) -> str | None:
        if object_type != "Program":
            return f"typeAttribList applies to Program only, not {object_type}"
        if attr_type == "Cost":
            return self._apply_cost(type_attribs, values)
        if attr_type == "Tag":
            return self._check_tag(values) or _apply_tag(type_attribs, values)
        return f"Unknown attrType: {attr_type} (expected Cost or Tag)"

    def _check_tag(self, values: dict[str, str]) -> str | None:
        """A tag's value, or a channel, must already be defined: the API cannot create them (the seed)."""
        tag_type, value = values.get("Type"), values.get("Value")
        if tag_type is None or value is None:
            return None  # _apply_tag names what is missing
        if tag_type == CHANNEL:
            if self.channels is not None and value not in self.channels:
                return f"Channel {value!r} is not defined"
        elif self.tags is not None and value not in self.tags.get(tag_type, ()):
            return f"Tag value {value!r} is not defined for tag type {tag_type!r}"
        return None

    def _apply_cost(self, type_attribs: list[dict[str, Any]], values: dict[str, str]) -> str | None:
        missing = [name for name in _COST_REQUIRED if name not in values]
        if missing:
            return f"Cost requires {missing[0]}"
        if "Id" not in values:
            type_attribs.append({"attrType": "Cost", "attribs": {**values, "Id": str(self._next_cost_id)}})
            self._next_cost_id += 1
            return None
        for entry in type_attribs:
            if entry["attrType"] == "Cost" and entry["attribs"].get("Id") == values["Id"]:
                entry["attribs"].update(values)
                return None
        return f"Cost Id not found: {values['Id']}"

    # --- what the REST front-end needs (pipeline.sim.restapi) ------------------------------------------------------

    def sync_opportunity(self, record: object, action: str) -> tuple[str, StoredMObject]:
        """Sync Opportunities, one record: found by its externalOpportunityId; raises RecordSkippedError."""
        fields = _rest_record(record, OPPORTUNITY_FIELDS)
        external = fields.get("externalOpportunityId")
        if not isinstance(external, str) or not external:
            raise RecordSkippedError("1003", "Invalid data: externalOpportunityId is required")
        found_id = self._by_value.get(("Opportunity", external))
        found = None if found_id is None else self._objects[("Opportunity", found_id)]
        _check_action(action, found is not None)
        if found is None:
            if not isinstance(fields.get("name"), str) or not fields["name"]:
                raise RecordSkippedError("1003", "Invalid data: name must not be null")  # SIMULATOR'S CHOICE
            found = StoredMObject("Opportunity", self._next_id, ("externalOpportunityId", external))
            self._next_id += 1
            self._index(found)
        for name, value in fields.items():
            if name == "externalCompanyId":
                company = {"mObjType": "Company", "id": None, "externalKey": {"name": name, "value": _text(value)}}
                found.associations = [a for a in found.associations if a.get("mObjType") != "Company"] + [company]
            elif name != "externalOpportunityId":
                found.attribs[_soap_field(name)] = _text(value)
        return ("updated" if found_id is not None else "created"), found

    def sync_role(
        self, record: object, action: str, *, lead_exists: Callable[[int], bool]
    ) -> tuple[str, StoredMObject]:
        """Sync Opportunity Roles, one record: keyed by (externalOpportunityId, leadId, role); both must exist."""
        fields = _rest_record(record, ROLE_FIELDS)
        external, lead_id, role = fields.get("externalOpportunityId"), fields.get("leadId"), fields.get("role")
        if not isinstance(external, str) or type(lead_id) is not int or not isinstance(role, str) or not role:
            raise RecordSkippedError("1003", "Invalid data: externalOpportunityId, leadId and role are required")
        opportunity = self._by_value.get(("Opportunity", external))
        if opportunity is None:
            raise RecordSkippedError("1013", f"Opportunity {external} not found")  # SIMULATOR'S CHOICE of the code
        if not lead_exists(lead_id):
            raise RecordSkippedError("1004", f"Lead {lead_id} not found")
        found_id = self._roles.get((opportunity, lead_id, role))
        _check_action(action, found_id is not None)
        if found_id is None:
            attribs = {"OpportunityId": str(opportunity), "PersonId": str(lead_id), "Role": role}
            stored = StoredMObject("OpportunityPersonRole", self._next_id, None, attribs)
            self._next_id += 1
            self._index(stored)
        else:
            stored = self._objects[("OpportunityPersonRole", found_id)]
        for name in ("isPrimary", "externalCreatedDate"):
            if name in fields:
                stored.attribs[_soap_field(name)] = _text(fields[name])
        return ("updated" if found_id is not None else "created"), stored

    def program(self, program_id: int) -> StoredMObject | None:
        """The Program with this id, when it exists."""
        return self._find(MObjectInput("Program", program_id))

    def update_program(
        self,
        program: StoredMObject,
        *,
        costs: list[Any],
        destructive: bool,
        tags: list[Any],
        names: dict[str, str],
        allowed_tags: dict[str, tuple[str, ...]] | None,
    ) -> None:
        """Update Program: costs appended (all replaced when `destructive`), tags set by type, name, description.

        Raises RestCallError (nothing changed) for a malformed cost or a tag value Marketo does not define.
        """
        entries = [_cost_entry(cost) for cost in costs]
        tag_values = [_tag(tag, allowed_tags) for tag in tags]
        if destructive:
            program.type_attribs = [t for t in program.type_attribs if t["attrType"] != "Cost"]
        for entry in entries:
            program.type_attribs.append({"attrType": "Cost", "attribs": {**entry, "Id": str(self._next_cost_id)}})
            self._next_cost_id += 1
        for tag_type, tag_value in tag_values:
            _apply_tag(program.type_attribs, {"Type": tag_type, "Value": tag_value})
        for name, value in names.items():
            program.attribs[_soap_field(name)] = value

    @staticmethod
    def program_json(program: StoredMObject) -> dict[str, Any]:
        """A program as the Asset API returns it."""
        costs = [
            {"startDate": f"{t['attribs']['Month']}-01", "cost": _number(t["attribs"]["Amount"])}
            | ({"note": t["attribs"]["Note"]} if t["attribs"].get("Note") else {})
            for t in program.type_attribs
            if t["attrType"] == "Cost"
        ]
        tags = [
            {"tagType": t["attribs"]["Type"], "tagValue": t["attribs"]["Value"]}
            for t in program.type_attribs
            if t["attrType"] == "Tag" and t["attribs"]["Type"] != CHANNEL
        ]
        channel = next(
            (
                t["attribs"]["Value"]
                for t in program.type_attribs
                if t["attrType"] == "Tag" and t["attribs"]["Type"] == CHANNEL
            ),
            None,
        )
        return {
            "id": program.id,
            "name": program.attribs.get("Name", f"Program {program.id}"),
            "description": program.attribs.get("Description", ""),
            "type": "Default",
            "channel": channel,
            "workspace": "Default",
            "tags": tags or None,
            "costs": costs or None,
        }


def _role_key(stored: StoredMObject) -> tuple[int | None, int | None, str]:
    """A role's REST key (opportunity id, lead id, role); (None, None, "") for any other object."""
    if stored.type != "OpportunityPersonRole":
        return None, None, ""
    attribs = stored.attribs
    return _int(attribs.get("OpportunityId")), _int(attribs.get("PersonId")), attribs.get("Role", "")


def _rest_record(record: object, allowed: frozenset[str]) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise RecordSkippedError("1003", "Invalid data: a record is not an object")
    for name in record:
        if name not in allowed:
            raise RecordSkippedError("1006", f"Field '{name}' not found")
    return record


def _check_action(action: str, exists: bool) -> None:  # noqa: FBT001
    if exists and action == "createOnly":
        raise RecordSkippedError("1017", "Object already exists")  # SIMULATOR'S CHOICE of the code
    if not exists and action == "updateOnly":
        raise RecordSkippedError("1013", "Object not found")


def _soap_field(rest_name: str) -> str:
    return rest_name[:1].upper() + rest_name[1:]


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _int(text: str | None) -> int | None:
    try:
        return int(float(text)) if text else None
    except (ValueError, OverflowError):  # not a number, or not a finite one ("1e999", "inf")
        return None


def _number(text: str) -> int | float:
    try:
        number = float(text)
    except ValueError:
        return 0
    if not math.isfinite(number):
        return 0
    return int(number) if number.is_integer() and abs(number) < 2**53 else number


def _cost_entry(cost: object) -> dict[str, str]:
    if not isinstance(cost, dict):
        raise RestCallError("1003", "Invalid data: a cost is not an object")
    start, amount, note = cost.get("startDate"), cost.get("cost"), cost.get("note")
    if not isinstance(start, str) or len(start) != len("2026-01-01") or start[4] != "-" or start[7] != "-":
        raise RestCallError("1003", f"Invalid data: cost startDate {start!r} is not YYYY-MM-DD")
    if isinstance(amount, bool) or not isinstance(amount, int | float):
        raise RestCallError("1003", f"Invalid data: cost {amount!r} is not a number")
    # SIMULATOR'S CHOICE: costs are kept by month, as SOAP keeps them (a start date's day is not kept).
    entry = {"Month": start[:7], "Amount": _text(amount)}
    if isinstance(note, str) and note:
        entry["Note"] = note
    return entry


def _tag(tag: object, allowed: dict[str, tuple[str, ...]] | None) -> tuple[str, str]:
    if not isinstance(tag, dict) or not isinstance(tag.get("tagType"), str) or not isinstance(tag.get("tagValue"), str):
        raise RestCallError("1003", "Invalid data: a tag needs tagType and tagValue")
    tag_type, tag_value = tag["tagType"], tag["tagValue"]
    if tag_type == CHANNEL:
        # A program's channel is not one of its tags over REST (Update Program takes none), whatever the tags allow.
        raise RestCallError("709", "A program's channel is not a tag: Update Program cannot change it")
    if allowed is not None and tag_value not in allowed.get(tag_type, ()):
        # "Each tag uses a value from a list configured in Marketo Admin"; SIMULATOR'S CHOICE of the code.
        raise RestCallError("709", f"Tag value {tag_value!r} is not defined for tag type {tag_type!r}")
    return tag_type, tag_value


def _apply_tag(type_attribs: list[dict[str, Any]], values: dict[str, str]) -> str | None:
    missing = [name for name in _TAG_REQUIRED if name not in values]
    if missing:
        return f"Tag requires {missing[0]}"
    for entry in type_attribs:
        if entry["attrType"] == "Tag" and entry["attribs"]["Type"] == values["Type"]:
            entry["attribs"]["Value"] = values["Value"]
            return None
    type_attribs.append({"attrType": "Tag", "attribs": dict(values)})
    return None
