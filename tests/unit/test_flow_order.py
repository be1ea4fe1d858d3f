"""Marketo's final state against a reference model: what the flow sends, applied in any order it allows, must
leave Marketo where applying the events one by one in partition order leaves it."""

from __future__ import annotations

import contextlib
import random
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pipeline.flow import Flow, FlowLimits
from pipeline.records import Batch, Event, Lead, LeadChange, Operation
from pipeline.sim.leads import LeadInput, LeadRejectedError, LeadStore, SyncContext
from tests.unit.events import lead_event

EMAILS = ("a@x.com", "b@x.com", "A@X.com ", "c@x.com", None)
FOREIGN = ("s1", "s2", None)
COOKIES = ("c1", "c2", None)


def _apply_lead(store: LeadStore, lead: Lead, *, single: bool, workspace: str | None) -> None:
    """One record (or event) as Marketo applies it: syncLead or syncMultipleLeads, by the route it takes."""
    fsp_type = lead.foreign_sys_type.value if lead.foreign_sys_type is not None else None
    given = LeadInput(lead.id, lead.email, lead.foreign_sys_person_id, fsp_type, lead.attributes)
    context = SyncContext(dedup=True, single=single, cookie=lead.cookie if single else None, workspace=workspace)
    with contextlib.suppress(LeadRejectedError):
        store.sync(given, context)


def _state(store: LeadStore) -> list[tuple[Any, ...]]:
    return sorted(
        (
            (lead.email or "").strip().lower(),
            lead.foreign_sys_person_id or "",
            tuple(sorted(lead.cookies)),
            tuple(sorted(lead.attributes.items())),
        )
        for lead in store.all()
    )


@st.composite
def streams(draw: st.DrawFn) -> list[Event]:
    events = []
    for n in range(draw(st.integers(1, 40))):
        email = draw(st.sampled_from(EMAILS))
        foreign = draw(st.sampled_from(FOREIGN))
        cookie = draw(st.sampled_from(COOKIES)) if draw(st.integers(0, 3)) == 0 else None
        if email is None and foreign is None and cookie is None:
            email = "d@x.com"
        attributes = {"A": str(n)}  # every event sets A: the final A says which event Marketo applied last
        if draw(st.integers(0, 9)) == 0:
            attributes["Email"] = draw(st.sampled_from(("a@x.com", "b@x.com", "e@x.com")))
        if draw(st.booleans()):
            attributes[draw(st.sampled_from(("B", "C")))] = str(n)
        fields: dict[str, Any] = {"Email": email, "attributes": attributes}
        if foreign is not None:
            fields |= {"ForeignSysPersonId": foreign, "ForeignSysType": "SFDC"}
        if cookie is not None:
            fields["MarketoCookie"] = cookie
        if draw(st.integers(0, 5)) == 0:
            fields["workspace"] = "Default"
        if draw(st.integers(0, 5)) == 0:
            fields["return_lead"] = True
        events.append(lead_event(f"e{n}", **fields))
    return events


def _apply(store: LeadStore, batch: Batch) -> None:
    for record in batch.records:
        assert record.lead is not None
        _apply_lead(store, record.lead, single=record.operation is Operation.SYNC_LEAD, workspace=record.workspace)


class _Calls:
    """The calls the flow sends, at Marketo in any order the flow allows: applied whenever, answered whenever."""

    def __init__(self, flow: Flow, rnd: random.Random) -> None:
        self.flow = flow
        self.rnd = rnd
        self.marketo = LeadStore()
        self.out: list[tuple[Batch, bool]] = []  # sent and not answered; True once Marketo applied them

    def step(self, now: float) -> None:
        choice = self.rnd.randrange(4)
        if choice == 0:
            self.flow.release(now)
        elif choice == 1 and self.flow.ready:
            self.out.append((self.flow.take(), False))
        elif choice == 2 and self.out:  # Marketo applies one call in flight, whichever
            n = self.rnd.randrange(len(self.out))
            batch, applied = self.out[n]
            if not applied:
                _apply(self.marketo, batch)
                self.out[n] = (batch, True)
        elif choice == 3 and self.out:
            self.answer(self.rnd.randrange(len(self.out)), now)

    def answer(self, n: int, now: float) -> None:
        """The answer to call `n` comes back, after Marketo applied it."""
        batch, applied = self.out.pop(n)
        if not applied:
            _apply(self.marketo, batch)
        self.flow.complete(batch.records, now)

    def finish(self, now: float) -> None:
        self.flow.drain(now)
        while self.flow.ready or self.out:
            while self.flow.ready:
                self.out.append((self.flow.take(), False))
            self.answer(self.rnd.randrange(len(self.out)), now)


@settings(max_examples=1000, deadline=None)
@given(streams(), st.randoms(use_true_random=False), st.sampled_from((0.0, 0.3, 1.0)), st.sampled_from((2, 3, 500)))
def test_marketo_ends_where_the_events_applied_in_order_leave_it(
    events: list[Event], rnd: random.Random, window_s: float, max_record_events: int
) -> None:
    reference = LeadStore()
    for event in events:
        assert isinstance(event, LeadChange)
        single = event.lead.cookie is not None or event.workspace is not None or event.return_lead
        _apply_lead(reference, event.lead, single=single, workspace=event.workspace)
    calls = _Calls(Flow(FlowLimits(window_s, 0.5, 3, 100, max_record_events=max_record_events)), rnd)
    now = 0.0
    for event in events:
        now += rnd.choice((0.0, 0.1, 0.5))
        calls.flow.add(event, now)
        for _ in range(rnd.randrange(3)):
            calls.step(now)
    calls.finish(now)
    # Where Marketo holds two leads with one Email (an Email changed) when an Email matches, it takes the most
    # recently added: which that is depends on the order in which events no key linked yet created them, which
    # Kafka does not keep either (they may be on different partitions). No order the flow could keep decides it:
    # streams whose in-order run meets such a match are left out. A run of the flow that meets one where the
    # in-order run does not still fails: that would be an order the flow broke.
    assume(reference.duplicate_matches == 0)
    assert _state(calls.marketo) == _state(reference)


def test_the_example_of_three_events_under_two_keys_ends_at_the_last() -> None:
    # e1 and e3 share a key, e2 links to them through the Email: merging e3 into e1 would let e2 land last.
    flow = Flow(FlowLimits(1.0, 0.5, 300, 100))
    first = lead_event("e1", ForeignSysPersonId="s", ForeignSysType="SFDC", Email="a@x.com", attributes={"N": "1"})
    flow.add(first, 0.0)
    flow.add(lead_event("e2", Email="a@x.com", attributes={"N": "2"}), 0.1)
    flow.add(lead_event("e3", ForeignSysPersonId="s", ForeignSysType="SFDC", attributes={"N": "3"}), 0.2)
    flow.drain(0.3)
    marketo = LeadStore()
    sent = 0
    while flow.ready:
        batch = flow.take()
        _apply(marketo, batch)
        sent += len(batch.records)
        flow.complete(batch.records, 0.4)
    assert sent == 3
    assert [lead.attributes["N"] for lead in marketo.all()] == ["3"]


def test_an_event_asking_for_the_lead_back_does_not_turn_a_merge_into_a_sync_lead() -> None:
    # syncLead changes the Email of a lead found by its foreign id; syncMultipleLeads does not. Merged with e2,
    # e1 would go as syncLead and move the lead to b@x.com, where the events applied one by one leave a@x.com.
    events = [
        lead_event("e0", ForeignSysPersonId="s1", ForeignSysType="SFDC", Email="a@x.com", attributes={"A": "0"}),
        lead_event("e1", ForeignSysPersonId="s1", ForeignSysType="SFDC", Email="b@x.com", attributes={"A": "1"}),
        lead_event("e2", ForeignSysPersonId="s1", ForeignSysType="SFDC", return_lead=True, attributes={"A": "2"}),
    ]
    reference = LeadStore()
    for event in events:
        assert isinstance(event, LeadChange)
        _apply_lead(reference, event.lead, single=event.return_lead, workspace=None)
    calls = _Calls(Flow(FlowLimits(1.0, 0.5, 300, 100)), random.Random(1))
    calls.flow.add(events[0], 0.0)
    calls.flow.release(1.0)
    calls.finish(1.0)
    for event in events[1:]:
        calls.flow.add(event, 1.1)
    calls.finish(1.2)
    assert _state(calls.marketo) == _state(reference)
