"""Events of one precedence key that arrive within the window merge into one record (DESIGN 2.2).

A merge must give Marketo the state that applying the events one by one in partition order would give. So an
event merges into its key's open record only when:

- it is looked up as the record is: each of its Id, foreign id, cookie and Email is absent or the record's
  (Marketo looks a lead up by Id, then foreign id, then Email, and applies the merge in one lookup), and no
  event of the record moved its lead to another Email (an `Email` attribute: the next lookup would miss it);
- no record opened after this one, and still open, reaches the same lead (the same component of linked identity
  values, or a reference to it): merging would move the event ahead of that record;
- it asks for the lead back (`return_lead`) as the record does: that routes a call to syncLead;
- it is not an INSERT (Marketo skips an INSERT of an object that exists, so later INSERTs never win);
- the record holds fewer than `max_events` events (a result names each event: its size is bounded).

Otherwise the record is closed early, together with every record opened before it (records leave in the order
they opened, always), and the event opens a new record.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Collection
from typing import Final

from msgspec import Struct, field

from pipeline.dedupe.links import IdentityLinks
from pipeline.identity import mobject_identities, mobject_references
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

DEFAULT_MAX_EVENTS: Final = 500
_WindowKey = tuple[str, int, str]  # topic, partition, precedence key
_NO_REFERENCES: Final[frozenset[str]] = frozenset()


class _OpenLead(Struct):
    seq: int
    events: list[LeadChange]
    deadline: float
    workspace: str | None
    values: frozenset[str]
    lookup: frozenset[str]
    id: int | None = None
    email: str | None = None
    foreign_sys_person_id: str | None = None
    foreign_sys_type: ForeignSysType | None = None
    cookie: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    return_lead: bool = False

    @property
    def references(self) -> frozenset[str]:
        return _NO_REFERENCES

    def absorb(self, change: LeadChange, values: frozenset[str]) -> None:
        # Later wins, attribute by attribute. The identity fields are the ones every event of the record is looked
        # up by (the window merges no other): they stay as the first event gave them, as Marketo keeps them.
        lead = change.lead
        self.events.append(change)
        self.values |= values
        if self.id is None:
            self.id = lead.id
        if self.email is None:
            self.email = lead.email
        if self.foreign_sys_person_id is None:
            self.foreign_sys_person_id, self.foreign_sys_type = lead.foreign_sys_person_id, lead.foreign_sys_type
        if self.cookie is None:
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
            identities=self.values,
            lead=lead,
            workspace=self.workspace,
            return_lead=self.return_lead,
        )


class _OpenMObject(Struct):
    seq: int
    events: list[MObjectChange]
    deadline: float
    operation: SyncOperation
    type: str
    values: frozenset[str]
    references: frozenset[str]
    id: int | None = None
    external_key: Attrib | None = None
    attribs: dict[str, str] = field(default_factory=dict)
    type_attribs: list[TypeAttrib] = field(default_factory=list)
    associations: list[Association] = field(default_factory=list)

    @property
    def lookup(self) -> frozenset[str]:
        return self.values

    def absorb(self, change: MObjectChange, values: frozenset[str]) -> None:
        mobject = change.mobject
        self.events.append(change)
        self.values |= values
        self.id = mobject.id if mobject.id is not None else self.id
        self.external_key = mobject.external_key or self.external_key
        self.attribs.update((a.name, a.value) for a in mobject.attribs)
        self.type_attribs.extend(mobject.type_attribs)  # costs add up; Marketo updates tags by Type
        self.associations.extend(a for a in mobject.associations if a not in self.associations)
        self.references |= mobject_references(mobject)

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
            identities=self.values,
            mobject=mobject,
            mobject_operation=self.operation,
            references=self.references,
        )


class _Single(Struct):
    """A key's only event so far: most keys never see a second one, and their record is this event's lead."""

    seq: int
    event: LeadChange
    deadline: float
    values: frozenset[str]
    lookup: frozenset[str]

    @property
    def references(self) -> frozenset[str]:
        return _NO_REFERENCES

    def close(self, key: str) -> Record:
        event = self.event
        # Positional: the fields in Record's order (key, kind, events, identities, lead, workspace, return_lead).
        return Record(key, EventKind.LEAD, (event,), self.values, event.lead, event.workspace, event.return_lead)


_Open = _Single | _OpenLead | _OpenMObject


def _returns_lead(current: _Open) -> bool:
    if isinstance(current, _Single):
        return current.event.return_lead
    return isinstance(current, _OpenLead) and current.return_lead


def event_identities(event: Event) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """The identity values an event names itself by, the ones it is looked up by, and the ones it refers to."""
    if isinstance(event, LeadChange):
        return event.identities, event.lookup, _NO_REFERENCES
    values = mobject_identities(event.mobject, event.key)
    return values, values, mobject_references(event.mobject)


class DedupeWindow:
    """Open records by key, released in the order they opened once their window has passed.

    `links` learns which identity values name one lead from every event; `on_link` hears each merge of two
    components (root kept, roots absorbed), which the ordering gate needs.
    """

    def __init__(
        self,
        window_s: float,
        *,
        links: IdentityLinks | None = None,
        on_link: Callable[[str, list[str]], None] | None = None,
        max_events: int = DEFAULT_MAX_EVENTS,
    ) -> None:
        self.window_s = window_s
        self.links = links if links is not None else IdentityLinks()
        self._on_link = on_link
        self.max_events = max_events
        # By (topic, partition, precedence key): a record's events all come from one partition, where "later" has a
        # meaning, and a partition given up in a rebalance takes its records with it.
        self._open: OrderedDict[_WindowKey, _Open] = OrderedDict()
        self._latest: dict[str, int] = {}  # component root -> the latest seq of an open record that reaches it
        self._root_of = self.links.root_of
        self._seq = 0
        self.merged = 0  # events absorbed into a record that was already open
        self.pending_events = 0

    def __len__(self) -> int:
        return len(self._open)

    def holds(self, root: str) -> bool:
        """Whether an open record reaches the component `root` stands for."""
        return root in self._latest

    def add(self, event: Event, now: float) -> list[Record]:
        """Merge `event` into its key's open record, or open one; returns the records this closes early."""
        self.pending_events += 1
        if type(event) is LeadChange:  # the common case, spelled out: this runs for every event
            lookup, values, references = event.lookup, event.identities, _NO_REFERENCES
        else:
            values, lookup, references = event_identities(event)
        if len(values) == 1:
            (value,) = values
            root = self._root_of(value, value)
            if root is not value:  # a linked value: its component is in use
                self.links.touch(root)
        else:
            root = self._link(values)
        source = event.message.source
        key = (source.topic, source.partition, event.key)
        current = self._open.get(key)
        if current is None:
            if type(event) is LeadChange:  # spelled out, as above
                self._seq = seq = self._seq + 1
                self._open[key] = _Single(seq, event, now + self.window_s, values, lookup)
                self._latest[root] = seq  # the newest record there is: the latest of its component
            else:
                self._opened(key, event, (values, lookup, references), root, now)
            return []
        if not self._may_merge(current, event, lookup, references, root):
            released = self._close_through(key)
            self._opened(key, event, (values, lookup, references), root, now)
            return released
        self.merged += 1
        if type(current) is _Single:  # a second event: the key's record becomes a merge
            current = self._open[key] = self._merging(current)
        current.absorb(event, values)  # type: ignore[arg-type,union-attr]
        self._reach(current.seq, root, current.references)
        return []

    def _link(self, values: frozenset[str]) -> str:
        """Link an event's values: they name one lead. Returns the root of their component."""
        if len(values) < 2:  # noqa: PLR2004 - a lone value links nothing: the common case costs one lookup
            (value,) = values
            return self.links.root_of(value, value)
        root, absorbed = self.links.link(values)
        if absorbed:
            latest = self._latest
            for old in absorbed:
                if old in latest:
                    latest[root] = max(latest.get(root, -1), latest.pop(old))
            if self._on_link is not None:
                self._on_link(root, absorbed)
        return root

    def _may_merge(
        self, current: _Open, event: Event, lookup: frozenset[str], references: frozenset[str], root: str
    ) -> bool:
        if not lookup <= current.lookup or current.values != current.lookup:
            return False  # looked up otherwise, or the record moved its lead to another Email (an attribute)
        if isinstance(event, LeadChange) and event.return_lead != _returns_lead(current):
            return False  # asking for the lead back routes a call to syncLead, which treats an Email otherwise
        if isinstance(event, MObjectChange):
            if not isinstance(current, _OpenMObject) or current.operation != event.operation:
                return False  # INSERT then UPDATE are two calls, in that order
            if event.operation is SyncOperation.INSERT:
                return False
        seq = current.seq
        latest = self._latest
        if latest.get(root, -1) > seq:
            return False
        if references and any(latest.get(r, -1) > seq for r in self.links.roots(references)):
            return False
        events = 1 if type(current) is _Single else len(current.events)  # type: ignore[union-attr]
        return events < self.max_events

    def _opened(
        self,
        key: _WindowKey,
        event: Event,
        names: tuple[frozenset[str], frozenset[str], frozenset[str]],
        root: str,
        now: float,
    ) -> None:
        values, lookup, references = names
        self._seq = seq = self._seq + 1
        deadline = now + self.window_s
        if isinstance(event, LeadChange):
            self._open[key] = _Single(seq, event, deadline, values, lookup)
            self._latest[root] = seq  # the newest record there is: the latest of its component
            return
        opened = _OpenMObject(seq, [], deadline, event.operation, event.mobject.type, values, frozenset())
        opened.absorb(event, values)
        self._open[key] = opened
        self._reach(seq, root, references)

    def _reach(self, seq: int, root: str, references: frozenset[str]) -> None:
        """Record `seq` is open and reaches `root`'s component (and those it refers to)."""
        latest = self._latest
        if latest.get(root, -1) < seq:
            latest[root] = seq
        for reached in self.links.roots(references) if references else ():
            if latest.get(reached, -1) < seq:
                latest[reached] = seq

    @staticmethod
    def _merging(single: _Single) -> _OpenLead:
        first = single.event
        opened = _OpenLead(single.seq, [], single.deadline, first.workspace, single.values, single.lookup)
        opened.absorb(first, single.values)
        return opened

    def _close(self, key: _WindowKey) -> Record:
        current = self._open.pop(key)
        record = current.close(key[2])
        self._forget(current)
        self.pending_events -= len(record.events)
        return record

    def _forget(self, current: _Open) -> None:
        """`current` is open no more: it reaches its component no longer."""
        latest, seq, references = self._latest, current.seq, current.references
        # A record's own values are linked: any of them names its component.
        value = next(iter(current.values))
        root = self._root_of(value, value)
        if latest.get(root) == seq:
            del latest[root]
        for reached in self.links.roots(references) if references else ():
            if latest.get(reached) == seq:
                del latest[reached]

    def _close_through(self, last: _WindowKey) -> list[Record]:
        """Close every record opened up to and including `last`'s, in the order they opened."""
        released = []
        while self._open:
            key = next(iter(self._open))
            released.append(self._close(key))
            if key == last:
                break
        return released

    def expired(self, now: float) -> list[Record]:
        """Records whose window has passed, oldest first."""
        due = []
        for key, current in self._open.items():
            if current.deadline > now:
                break
            due.append(key)
        return [self._close(key) for key in due]

    def drain(self) -> list[Record]:
        """Every open record, now (shutdown)."""
        return [self._close(key) for key in list(self._open)]

    def revoke(self, partitions: Collection[tuple[str, int]]) -> int:
        """Drop the open records of `partitions` (given up in a rebalance); returns how many events they held."""
        dropped = 0
        for key in [key for key in self._open if (key[0], key[1]) in partitions]:
            current = self._open.pop(key)
            events = 1 if type(current) is _Single else len(current.events)  # type: ignore[union-attr]
            self.pending_events -= events
            dropped += events
        # Records left the middle of the order: which open record is the latest of each component is found again.
        self._latest.clear()
        for current in self._open.values():
            value = next(iter(current.values))
            self._reach(current.seq, self._root_of(value, value), current.references)
        return dropped

    def next_deadline(self) -> float | None:
        """When the oldest open record is due."""
        if not self._open:
            return None
        return next(iter(self._open.values())).deadline
