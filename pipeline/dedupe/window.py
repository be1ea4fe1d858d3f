"""Events of one precedence key that arrive within the window merge into one record (DESIGN 2.2)."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from pipeline.identity import lead_identities
from pipeline.records import (
    Association,
    Attrib,
    Event,
    EventKind,
    ForeignSysType,
    Lead,
    LeadChange,
    MObject,
    MObjectChange,
    Record,
    SyncOperation,
    TypeAttrib,
)


@dataclass(slots=True)
class _OpenLead:
    events: list[LeadChange]
    deadline: float
    workspace: str | None
    id: int | None = None
    email: str | None = None
    foreign_sys_person_id: str | None = None
    foreign_sys_type: ForeignSysType | None = None
    cookie: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    return_lead: bool = False

    def absorb(self, change: LeadChange) -> None:
        # Later wins, attribute by attribute; an identity the later event leaves out is kept.
        lead = change.lead
        self.events.append(change)
        if lead.id is not None:
            self.id = lead.id
        if lead.email is not None:
            self.email = lead.email
        if lead.foreign_sys_person_id is not None:
            self.foreign_sys_person_id, self.foreign_sys_type = lead.foreign_sys_person_id, lead.foreign_sys_type
        if lead.cookie is not None:
            self.cookie = lead.cookie
        self.attributes.update(lead.attributes)
        self.return_lead = self.return_lead or change.return_lead

    def close(self, key: str) -> Record:
        lead = Lead(
            id=self.id,
            email=self.email,
            foreign_sys_person_id=self.foreign_sys_person_id,
            foreign_sys_type=self.foreign_sys_type,
            cookie=self.cookie,
            attributes=tuple(self.attributes.items()),
        )
        return Record(
            key=key,
            kind=EventKind.LEAD,
            events=tuple(self.events),
            identities=lead_identities(lead),
            lead=lead,
            workspace=self.workspace,
            return_lead=self.return_lead,
        )


@dataclass(slots=True)
class _OpenMObject:
    events: list[MObjectChange]
    deadline: float
    operation: SyncOperation
    type: str
    id: int | None = None
    external_key: Attrib | None = None
    attribs: dict[str, str] = field(default_factory=dict)
    type_attribs: list[TypeAttrib] = field(default_factory=list)
    associations: list[Association] = field(default_factory=list)

    def absorb(self, change: MObjectChange) -> None:
        mobject = change.mobject
        self.events.append(change)
        self.id = mobject.id if mobject.id is not None else self.id
        self.external_key = mobject.external_key or self.external_key
        self.attribs.update((a.name, a.value) for a in mobject.attribs)
        self.type_attribs.extend(mobject.type_attribs)  # costs add up; Marketo updates tags by Type
        self.associations.extend(a for a in mobject.associations if a not in self.associations)

    def close(self, key: str) -> Record:
        mobject = MObject(
            type=self.type,
            id=self.id,
            external_key=self.external_key,
            attribs=tuple(Attrib(n, v) for n, v in self.attribs.items()),
            type_attribs=tuple(self.type_attribs),
            associations=tuple(self.associations),
        )
        return Record(
            key=key,
            kind=EventKind.MOBJECT,
            events=tuple(self.events),
            identities=frozenset({key}),
            mobject=mobject,
            mobject_operation=self.operation,
        )


@dataclass(slots=True)
class _Single:
    """A key's only event so far: most keys never see a second one, and their record is this event's lead."""

    event: LeadChange
    deadline: float

    def close(self, key: str) -> Record:
        event = self.event
        lead = event.lead
        # Positional: the fields in Record's order (key, kind, events, identities, lead, workspace, return_lead).
        return Record(key, EventKind.LEAD, (event,), lead_identities(lead), lead, event.workspace, event.return_lead)


class DedupeWindow:
    """Open records by key, released in the order they opened once their window has passed."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._open: OrderedDict[str, _Single | _OpenLead | _OpenMObject] = OrderedDict()
        self.merged = 0  # events absorbed into a record that was already open
        self.pending_events = 0

    def __len__(self) -> int:
        return len(self._open)

    def add(self, event: Event, now: float) -> list[Record]:
        """Merge `event` into its key's open record, or open one; returns records this closes early.

        An MObject event whose operation differs from the open record's closes that record first:
        INSERT then UPDATE are two calls, in that order.
        """
        self.pending_events += 1
        key = event.key
        current = self._open.get(key)
        if current is None:
            if isinstance(event, LeadChange):
                self._open[key] = _Single(event, now + self.window_s)
            else:
                self._open[key] = self._opened(event, now)
            return []
        released: list[Record] = []
        if type(current) is _Single:  # a second event: the key's record becomes a merge
            current = self._open[key] = self._merging(current)
        elif (
            isinstance(event, MObjectChange)
            and isinstance(current, _OpenMObject)
            and current.operation != event.operation
        ):
            released.append(self._close(key))
            self._open[key] = self._opened(event, now)
            return released
        self.merged += 1
        current.absorb(event)  # type: ignore[arg-type,union-attr]
        return released

    def _opened(self, event: MObjectChange, now: float) -> _OpenMObject:
        opened = _OpenMObject(
            events=[], deadline=now + self.window_s, operation=event.operation, type=event.mobject.type
        )
        opened.absorb(event)
        return opened

    @staticmethod
    def _merging(single: _Single) -> _OpenLead:
        first = single.event
        opened = _OpenLead(events=[], deadline=single.deadline, workspace=first.workspace)
        opened.absorb(first)
        return opened

    def _close(self, key: str) -> Record:
        record = self._open.pop(key).close(key)
        self.pending_events -= len(record.events)
        return record

    def expired(self, now: float) -> list[Record]:
        """Records whose window has passed, oldest first."""
        due = []
        for key, current in self._open.items():
            if current.deadline > now:
                break
            due.append(key)
        return [self._close(key) for key in due]

    def drain(self) -> list[Record]:
        """Every open record, now (shutdown, rebalance)."""
        return [self._close(key) for key in list(self._open)]

    def next_deadline(self) -> float | None:
        """When the oldest open record is due."""
        if not self._open:
            return None
        return next(iter(self._open.values())).deadline
