"""The simulator's MObjects: Programs (UPDATE only: costs and tags), Opportunities and their person roles.

INSERT creates new objects and skips existing ones; UPDATE changes existing ones and skips new ones;
UPSERT does both. An object is found by its id or by its external key. Each call runs without awaiting.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Final

TYPES: Final = frozenset({"Program", "Opportunity", "OpportunityPersonRole"})
_COST_REQUIRED: Final = ("Month", "Amount")
_TAG_REQUIRED: Final = ("Type", "Value")
_ROLE_REQUIRED: Final = ("OpportunityId", "PersonId")


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

    def snapshot(self) -> tuple[object, ...]:
        """A copy of everything a sync can change, to tell UPDATED from UNCHANGED."""
        return (
            self.external_key,
            copy.deepcopy(self.attribs),
            copy.deepcopy(self.type_attribs),
            list(self.associations),
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


class MObjectStore:
    """Objects by (type, id), with an index on (type, external key name, value)."""

    def __init__(self, programs: tuple[int, ...] | None = None) -> None:
        # None: every positive id names an existing Program (they are made in Marketo's UI, not the API).
        self.programs = programs
        self._objects: dict[tuple[str, int], StoredMObject] = {}
        self._by_key: dict[tuple[str, str, str], int] = {}
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
        error = self._apply(found, obj)
        if error is not None:
            return MObjectOutcome("FAILED", found.id, key, error)
        status = "UNCHANGED" if found.snapshot() == before else "UPDATED"
        return MObjectOutcome(status, found.id, key, None)

    def _create(self, obj: MObjectInput) -> MObjectOutcome:
        if obj.type == "OpportunityPersonRole":
            given = {name for name, _ in obj.attribs}
            missing = [name for name in _ROLE_REQUIRED if name not in given]
            if missing:
                return MObjectOutcome("FAILED", 0, obj.external_key, f"Required attribute missing: {missing[0]}")
        stored = StoredMObject(type=obj.type, id=self._next_id, external_key=obj.external_key)
        error = self._apply(stored, obj)
        if error is not None:
            return MObjectOutcome("FAILED", 0, obj.external_key, error)
        self._next_id += 1
        self._objects[(obj.type, stored.id)] = stored
        if obj.external_key is not None:
            self._by_key[(obj.type, *obj.external_key)] = stored.id
        return MObjectOutcome("CREATED", stored.id, obj.external_key, None)

    def _apply(self, stored: StoredMObject, obj: MObjectInput) -> str | None:
        """Change `stored` as `obj` says; a message instead when `obj` is invalid (nothing changed then)."""
        new_type_attribs = copy.deepcopy(stored.type_attribs)
        for attr_type, pairs in obj.type_attribs:
            error = self._apply_type_attrib(stored.type, new_type_attribs, attr_type, dict(pairs))
            if error is not None:
                return error
        stored.type_attribs = new_type_attribs
        stored.attribs.update(obj.attribs)
        for association in obj.associations:
            if association not in stored.associations:
                stored.associations.append(association)
        return None

    def _apply_type_attrib(
        self, object_type: str, type_attribs: list[dict[str, Any]], attr_type: str, values: dict[str, str]
    ) -> str | None:
        if object_type != "Program":
            return f"typeAttribList applies to Program only, not {object_type}"
        if attr_type == "Cost":
            return self._apply_cost(type_attribs, values)
        if attr_type == "Tag":
            return _apply_tag(type_attribs, values)
        return f"Unknown attrType: {attr_type} (expected Cost or Tag)"

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
