"""The records that flow between stages: frozen, slotted, validated only at the edges."""

from __future__ import annotations

import dataclasses
import enum
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

_Built = TypeVar("_Built")


def quick(cls: type[_Built]) -> type[_Built]:
    """A frozen, slotted dataclass built faster: its `__init__` fills the slots through their descriptors.

    Same fields, defaults, order, equality, hash and freezing as `dataclass(frozen=True, slots=True)` gives;
    the generated `__init__` calls `object.__setattr__` per field, which costs about a microsecond for the
    records built for every event, tens of thousands a second. Only for classes without `__post_init__`.
    """
    setters = [(f.name, cls.__dict__[f.name].__set__) for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    head = ", ".join(p.name if p.default is p.empty else f"{p.name}=_defaults[{p.name!r}]" for p in params)
    body = "".join(f"        _set_{name}(self, {name})\n" for name, _ in setters)
    source = (
        f"def _make(_defaults, {', '.join(f'_set_{name}' for name, _ in setters)}):\n"
        f"    def __init__(self, {head}):\n{body}"
        "    return __init__\n"
    )
    namespace: dict[str, Any] = {}
    exec(source, namespace)  # noqa: S102 - the source is built from the class's own field names
    make: Callable[..., Any] = namespace["_make"]
    defaults = {p.name: p.default for p in params if p.default is not p.empty}
    init = make(defaults, *(setter for _, setter in setters))
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = init  # type: ignore[method-assign]
    return cls


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


@quick
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


@quick
@dataclass(frozen=True, slots=True)
class Source:
    """Where an input message was read: what its offset commit waits for."""

    topic: str
    partition: int
    offset: int


@quick
@dataclass(frozen=True, slots=True)
class RawMessage:
    """An input message as Kafka delivered it; dead letters carry its bytes unchanged."""

    source: Source
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp_ms: int | None = None


@quick
@dataclass(frozen=True, slots=True)
class LeadChange:
    """A validated lead event."""

    event_id: str
    key: str
    lead: Lead
    workspace: str | None
    return_lead: bool
    message: RawMessage
    lookup: frozenset[str] = frozenset()  # the identity values Marketo looks the lead up by
    identities: frozenset[str] = frozenset()  # those, and an Email the event sets as an attribute


@dataclass(frozen=True, slots=True)
class MObjectChange:
    """A validated MObject event."""

    event_id: str
    key: str
    mobject: MObject
    operation: SyncOperation
    message: RawMessage


Event = LeadChange | MObjectChange


@dataclass(frozen=True, slots=True)
class InvalidEvent:
    """An input message that cannot become an event; it is dead-lettered with this reason."""

    reason: DeadLetterReason
    error: str
    message: RawMessage


@quick
@dataclass(frozen=True, slots=True)
class Record:
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


@quick
@dataclass(frozen=True, slots=True)
class RecordOutcome:
    """What Marketo says it did with one record of a call."""

    status: RecordStatus
    lead_id: int | None = None
    mobject_id: int | None = None
    external_key: Attrib | None = None
    error: str | None = None
    error_code: str | None = None
    lead: LeadData | None = None
    guid: str | None = None  # REST's marketoGUID of an Opportunity or role


@dataclass(frozen=True, slots=True)
class RecordError:
    """Why a record FAILED: Marketo's code when it gave one."""

    code: str | None
    message: str


@quick
@dataclass(frozen=True, slots=True)
class RecordResult:
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


@dataclass(frozen=True, slots=True)
class Route:
    """Which call carries a record, and what every record of that call shares (`params`), at most `max_records`.

    SOAP: the operation, and the MObject operation of syncMObjects. REST: Sync Leads' (action, lookupField,
    partitionName), an object sync's action. Records of different routes never share a call.
    """

    operation: CallName
    params: tuple[str, ...] = ()
    max_records: int = 1


@dataclass(frozen=True, slots=True)
class Batch:
    """The records of one Marketo call, in the order they became ready."""

    route: Route
    records: tuple[Record, ...]

    @property
    def operation(self) -> CallName:
        """The call that carries the batch."""
        return self.route.operation
