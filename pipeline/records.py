"""The records that flow between stages: frozen, slotted, validated only at the edges."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Operation(enum.StrEnum):
    """The Marketo calls the pipeline makes."""

    SYNC_LEAD = "syncLead"
    SYNC_MULTIPLE_LEADS = "syncMultipleLeads"
    SYNC_MOBJECTS = "syncMObjects"


class ForeignSysType(enum.StrEnum):
    """The foreign systems Marketo knows (WSDL `ForeignSysType`)."""

    CUSTOM = "CUSTOM"
    SFDC = "SFDC"
    NETSUITE = "NETSUITE"


class SyncOperation(enum.StrEnum):
    """The modes of syncMObjects (WSDL `SyncOperationEnum`)."""

    INSERT = "INSERT"
    UPDATE = "UPDATE"
    UPSERT = "UPSERT"


class RecordStatus(enum.StrEnum):
    """What Marketo did with one record."""

    CREATED = "CREATED"
    UPDATED = "UPDATED"
    FAILED = "FAILED"
    UNCHANGED = "UNCHANGED"
    SKIPPED = "SKIPPED"


@dataclass(frozen=True, slots=True)
class Lead:
    """A lead as Marketo receives it: identity fields and attribute values already rendered as text."""

    id: int | None = None
    email: str | None = None
    foreign_sys_person_id: str | None = None
    foreign_sys_type: ForeignSysType | None = None
    cookie: str | None = None
    attributes: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Attrib:
    """A name/value pair (WSDL `Attrib`): MObject attributes and external keys."""

    name: str
    value: str


@dataclass(frozen=True, slots=True)
class TypeAttrib:
    """A typed attribute group of a Program: `Cost` or `Tag` (WSDL `TypeAttrib`)."""

    attr_type: str
    attribs: tuple[Attrib, ...] = ()


@dataclass(frozen=True, slots=True)
class Association:
    """A link from an MObject to a Company, Lead or Opportunity (WSDL `MObjAssociation`)."""

    mobj_type: str
    id: int | None = None
    external_key: Attrib | None = None


@dataclass(frozen=True, slots=True)
class MObject:
    """A Marketo object: Program, Opportunity or OpportunityPersonRole (WSDL `MObject`)."""

    type: str
    id: int | None = None
    external_key: Attrib | None = None
    attribs: tuple[Attrib, ...] = ()
    type_attribs: tuple[TypeAttrib, ...] = field(default=())
    associations: tuple[Association, ...] = ()
