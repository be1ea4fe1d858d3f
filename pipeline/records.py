"""The records that flow between stages: frozen, validated only at the edges.

Each is a frozen `msgspec.Struct`: fields, defaults, order, equality, hashing and freezing as a frozen slotted
dataclass has them, built in C. Several are built for every event, tens of thousands a second, where a
dataclass's `__init__` (one `object.__setattr__` per field) cost about four times as much. Copy one with a change
through `msgspec.structs.replace`.
"""

from __future__ import annotations

import enum

from msgspec import Struct


class Operation(enum.StrEnum):
    """The Marketo calls the pipeline makes."""

    SYNC_LEAD = "syncLead"
    SYNC_MULTIPLE_LEADS = "syncMultipleLeads"
    SYNC_MOBJECTS = "syncMObjects"


class RestOperation(enum.StrEnum):
    """The REST calls the pipeline makes (Adobe's names, camel-cased)."""

    SYNC_LEADS = "syncLeads"
    ASSOCIATE_LEAD = "associateLead"
    GET_LEADS = "getLeads"
    DESCRIBE_LEADS = "describeLeads"
    SYNC_OPPORTUNITIES = "syncOpportunities"
    SYNC_OPPORTUNITY_ROLES = "syncOpportunityRoles"
    UPDATE_PROGRAM = "updateProgram"


CallName = Operation | RestOperation


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


class Lead(Struct, frozen=True):
    """A lead as Marketo receives it: identity fields and attribute values already rendered as text."""

    id: int | None = None
    email: str | None = None
    foreign_sys_person_id: str | None = None
    foreign_sys_type: ForeignSysType | None = None
    cookie: str | None = None
    attributes: tuple[tuple[str, str], ...] = ()


class Attrib(Struct, frozen=True):
    """A name/value pair (WSDL `Attrib`): MObject attributes and external keys."""

    name: str
    value: str


class TypeAttrib(Struct, frozen=True):
    """A typed attribute group of a Program: `Cost` or `Tag` (WSDL `TypeAttrib`)."""

    attr_type: str
    attribs: tuple[Attrib, ...] = ()


class Association(Struct, frozen=True):
    """A link from an MObject to a Company, Lead or Opportunity (WSDL `MObjAssociation`)."""

    mobj_type: str
    id: int | None = None
    external_key: Attrib | None = None


class MObject(Struct, frozen=True):
    """A Marketo object: Program, Opportunity or OpportunityPersonRole (WSDL `MObject`)."""

    type: str
    id: int | None = None
    external_key: Attrib | None = None
    attribs: tuple[Attrib, ...] = ()
    type_attribs: tuple[TypeAttrib, ...] = ()
    associations: tuple[Association, ...] = ()


class EventKind(enum.StrEnum):
    """What an input event changes."""

    LEAD = "lead"
    MOBJECT = "mobject"


class DeadLetterReason(enum.StrEnum):
    """Why an event went to the dead-letter topic (`dlq.reason`)."""

    INVALID_JSON = "invalid_json"
    INVALID_EVENT = "invalid_event"
    MARKETO_REJECTED = "marketo_rejected"
    RETRIES_EXHAUSTED = "retries_exhausted"
    INTERNAL_ERROR = "internal_error"  # an unexpected exception while handling this event or record


class Source(Struct, frozen=True):
    """Where an input message was read: what its offset commit waits for."""

    topic: str
    partition: int
    offset: int


class RawMessage(Struct, frozen=True):
    """An input message as Kafka delivered it; dead letters carry its bytes unchanged."""

    source: Source
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp_ms: int | None = None


class LeadChange(Struct, frozen=True):
    """A validated lead event."""

    event_id: str
    key: str
    lead: Lead
    workspace: str | None
    return_lead: bool
    message: RawMessage
    lookup: frozenset[str] = frozenset()  # the identity values Marketo looks the lead up by
    identities: frozenset[str] = frozenset()  # those, and an Email the event sets as an attribute


class MObjectChange(Struct, frozen=True):
    """A validated MObject event."""

    event_id: str
    key: str
    mobject: MObject
    operation: SyncOperation
    message: RawMessage


Event = LeadChange | MObjectChange


class InvalidEvent(Struct, frozen=True):
    """An input message that cannot become an event; it is dead-lettered with this reason."""

    reason: DeadLetterReason
    error: str
    message: RawMessage


class Record(Struct, frozen=True):
    """One or more events of one lead or object merged in the dedupe window: what one Marketo record carries."""

    key: str
    kind: EventKind
    events: tuple[Event, ...]
    identities: frozenset[str]
    lead: Lead | None = None
    workspace: str | None = None
    return_lead: bool = False
    mobject: MObject | None = None
    mobject_operation: SyncOperation | None = None
    references: frozenset[str] = frozenset()  # identities of other objects or leads this record refers to

    @property
    def operation(self) -> Operation:
        """The Marketo call that can carry this record (DESIGN 2.3)."""
        if self.kind is EventKind.MOBJECT:
            return Operation.SYNC_MOBJECTS
        lead = self.lead
        if self.workspace is not None or self.return_lead or (lead is not None and lead.cookie is not None):
            return Operation.SYNC_LEAD
        return Operation.SYNC_MULTIPLE_LEADS


LeadData = dict[str, object]


class RecordOutcome(Struct, frozen=True):
    """What Marketo says it did with one record of a call."""

    status: RecordStatus
    lead_id: int | None = None
    mobject_id: int | None = None
    external_key: Attrib | None = None
    error: str | None = None
    error_code: str | None = None
    lead: LeadData | None = None
    guid: str | None = None  # REST's marketoGUID of an Opportunity or role


class RecordError(Struct, frozen=True):
    """Why a record FAILED: Marketo's code when it gave one."""

    code: str | None
    message: str


class RecordResult(Struct, frozen=True):
    """What became of one record: its result message and, when FAILED, its dead letters."""

    record: Record
    status: RecordStatus
    attempts: int
    lead_id: int | None = None
    mobject_id: int | None = None
    error: RecordError | None = None
    lead_data: dict[str, object] | None = None
    dead_letter: DeadLetterReason | None = None
    abandoned: bool = False  # its partition was given up before it was sent: no result, the next owner sends it
    operation: CallName | None = None  # the call that carried it, when it is not the record's SOAP call
    guid: str | None = None


class Route(Struct, frozen=True):
    """Which call carries a record, and what every record of that call shares (`params`), at most `max_records`.

    SOAP: the operation, and the MObject operation of syncMObjects. REST: Sync Leads' (action, lookupField,
    partitionName), an object sync's action. Records of different routes never share a call.
    """

    operation: CallName
    params: tuple[str, ...] = ()
    max_records: int = 1


class Batch(Struct, frozen=True):
    """The records of one Marketo call, in the order they became ready."""

    route: Route
    records: tuple[Record, ...]

    @property
    def operation(self) -> CallName:
        """The call that carries the batch."""
        return self.route.operation
