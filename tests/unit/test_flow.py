from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.flow import HOLD_WINDOWS, Flow, FlowLimits
from pipeline.records import Batch, CallName, Event, Operation, Record
from tests.unit.events import lead_event, mobject_event


def _flow(window_ms: int, max_wait_ms: int, max_leads: int = 300, max_mobjects: int = 100) -> Flow:
    return Flow(FlowLimits(window_ms / 1000, max_wait_ms / 1000, max_leads, max_mobjects))


def _sent(flow: Flow) -> list[list[str]]:
    batches = []
    while flow.ready:
        batches.append([record.key for record in flow.take().records])
    return batches


def test_a_partial_batch_waits_while_records_in_the_window_could_join_it() -> None:
    flow = _flow(window_ms=1000, max_wait_ms=500)
    flow.add(lead_event("a", Email="a@x.com"), now=0.0)
    flow.add(lead_event("b", Email="b@x.com"), now=0.3)
    flow.release(1.0)  # a leaves the window; b, still in it, will join a's batch
    assert _sent(flow) == []
    flow.release(1.3)  # b leaves: nothing left that could join before the batch is due at 1.5
    assert _sent(flow) == [["email:a@x.com", "email:b@x.com"]]


def test_a_partial_batch_waits_when_new_events_could_still_join_it() -> None:
    # No dedupe window: a record can join the batch as soon as its event is read, so the batch waits its time.
    flow = _flow(window_ms=0, max_wait_ms=500)
    flow.add(lead_event("a", Email="a@x.com"), now=0.0)
    flow.release(0.0)
    assert _sent(flow) == []
    flow.release(0.5)
    assert _sent(flow) == [["email:a@x.com"]]


def test_a_partial_batch_waits_while_the_gate_holds_a_record_that_could_join() -> None:
    flow = _flow(window_ms=100, max_wait_ms=100)
    flow.add(lead_event("a", Email="a@x.com"), now=0.0)
    flow.release(0.1)
    [first] = flow.take().records
    flow.add(lead_event("b", Email="a@x.com"), now=0.15)  # the same lead: waits in the gate for a's result
    flow.add(lead_event("c", Email="c@x.com"), now=0.15)
    flow.release(0.25)
    assert flow.sizes()["gate_waiting"] == 1
    assert _sent(flow) == []  # b may join c's batch once a is answered
    flow.complete([first], 0.26)
    flow.release(0.26)
    assert _sent(flow) == [["email:c@x.com", "email:a@x.com"]]


def test_under_backpressure_a_partial_batch_waits_for_the_backlog_but_not_for_ever() -> None:
    flow = _flow(window_ms=1000, max_wait_ms=500)
    flow.add(lead_event("a", Email="a@x.com"), now=0.0)
    flow.release(1.0, held=True)  # reading is paused: the events behind the pause would fill this batch
    flow.release(1.5, held=True)
    assert _sent(flow) == []
    assert flow.next_deadline(held=True) == 1.5 + HOLD_WINDOWS * 1.0  # the tick sleeps until then, it does not spin
    flow.release(1.5 + HOLD_WINDOWS * 1.0, held=True)  # its time, then four windows at most
    assert _sent(flow) == [["email:a@x.com"]]


def test_a_full_batch_goes_at_once_and_syncLead_records_go_alone() -> None:  # noqa: N802 - the call's name
    flow = _flow(window_ms=0, max_wait_ms=10_000, max_leads=3)
    for n in range(4):
        flow.add(lead_event(f"e{n}", Email=f"{n}@x.com"), now=0.0)
    flow.add(lead_event("c", MarketoCookie="ck-1"), now=0.0)
    flow.release(0.0)
    assert _sent(flow) == [["email:0@x.com", "email:1@x.com", "email:2@x.com"], ["cookie:ck-1"]]


def test_while_draining_what_one_set_of_results_releases_goes_in_one_batch() -> None:
    flow = _flow(window_ms=100, max_wait_ms=100)
    for n in range(200):
        flow.add(lead_event(f"a{n}", Email=f"{n}@x.com"), now=0.0)
    flow.release(0.1)
    first = flow.take()
    for n in range(200):
        flow.add(lead_event(f"b{n}", Email=f"{n}@x.com"), now=0.2)  # the same leads: they wait in the gate
    flow.release(0.3)
    flow.drain(0.3)
    assert not flow.ready
    flow.complete(first.records, 0.4)
    assert [len(batch) for batch in _sent(flow)] == [200]


def test_draining_sends_everything_open_and_what_the_gate_releases_later() -> None:
    flow = _flow(window_ms=10_000, max_wait_ms=10_000)
    flow.add(lead_event("a", Email="a@x.com"), now=0.0)
    flow.drain(0.1)
    [[first]] = [batch.records for batch in [flow.take()]]
    flow.add(lead_event("b", Email="a@x.com"), now=0.2)  # read before the stop, released by the drain
    flow.release(0.2)
    assert not flow.ready  # it waits for a in the gate
    flow.complete([first], 0.3)
    assert _sent(flow) == [["email:a@x.com"]]
    assert flow.next_deadline() is None


# --- properties over random event streams and clocks -------------------------------------------------

EMAILS = ("a@x.com", "b@x.com", "A@X.com ", "c@x.com", None)
IDS = (1, 2, 3, None)
FSP = ("S-1", "S-2", None)
COOKIES = ("ck-1", None)


@st.composite
def lead_events(draw: st.DrawFn, event_id: str) -> Event:
    fields: dict[str, Any] = {
        "Id": draw(st.sampled_from(IDS)),
        "Email": draw(st.sampled_from(EMAILS)),
        "ForeignSysPersonId": draw(st.sampled_from(FSP)),
        "MarketoCookie": draw(st.sampled_from(COOKIES)) if draw(st.integers(0, 9)) == 0 else None,
        "attributes": {draw(st.sampled_from(("A", "B", "C"))): draw(st.integers(0, 9))},
    }
    fields["ForeignSysType"] = "SFDC" if fields["ForeignSysPersonId"] else None
    if not any(fields[k] for k in ("Id", "Email", "ForeignSysPersonId", "MarketoCookie")):
        fields["Email"] = "d@x.com"
    if draw(st.integers(0, 19)) == 0:
        fields["workspace"] = "EMEA"
    partition = draw(st.integers(0, 2))
    return lead_event(f"{event_id}@p{partition}", partition=partition, **fields)


@st.composite
def mobject_events(draw: st.DrawFn, event_id: str) -> Event:
    kind = draw(st.sampled_from(("Opportunity", "Program")))
    if kind == "Program":
        return mobject_event(f"{event_id}@p0", "UPDATE", type="Program", id=draw(st.integers(1, 3)))
    operation = draw(st.sampled_from(("INSERT", "UPDATE", "UPSERT")))
    key = {"name": "ExtId", "value": f"O-{draw(st.integers(1, 3))}"}
    return mobject_event(f"{event_id}@p0", operation, type="Opportunity", externalKey=key, attribs={"Stage": "x"})


@dataclass(slots=True)
class Step:
    """One thing that happens: an event arrives, the clock moves, a batch goes out or comes back."""

    kind: str
    event: Event | None = None
    seconds: float = 0.0
    pick: int = 0
    held: bool = False


@st.composite
def steps(draw: st.DrawFn) -> list[Step]:
    counter = itertools.count()
    found = []
    for _ in range(draw(st.integers(1, 120))):
        kind = draw(st.sampled_from(("event", "event", "event", "tick", "take", "complete", "revoke")))
        if kind == "event":
            make = lead_events if draw(st.integers(0, 5)) else mobject_events
            found.append(Step("event", event=draw(make(f"e{next(counter)}"))))
        elif kind == "tick":
            found.append(Step("tick", seconds=draw(st.floats(0, 2.0)), held=draw(st.booleans())))
        else:
            found.append(Step(kind, pick=draw(st.integers(0, 1000))))
    return found


@dataclass(slots=True)
class Harness:
    """Drives a Flow as the service does, and checks its promises at every step."""

    flow: Flow
    max_leads: int
    max_mobjects: int
    now: float = 0.0
    out: list[Batch] = field(default_factory=list)  # taken and not completed: in flight
    sent: list[Record] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    given_up: set[str] = field(default_factory=set)  # events whose partition was revoked after they were read

    def apply(self, step: Step) -> None:
        if step.kind == "event":
            assert step.event is not None
            self.events.append(step.event.event_id)
            self.flow.add(step.event, self.now)
        elif step.kind == "tick":
            self.now += step.seconds
            self.flow.release(self.now, held=step.held)
        elif step.kind == "take" and self.flow.ready:
            self.out.append(self.flow.take())
            self.check_batch(self.out[-1])
        elif step.kind == "complete" and self.out:
            self.complete(self.out.pop(step.pick % len(self.out)))
        elif step.kind == "revoke":
            self.revoke(step.pick % 3)
        self.check_in_flight()

    def revoke(self, partition: int) -> None:
        """A rebalance takes `partition` away (and may give it back later: its next events are a new ownership)."""
        self.flow.revoke([("leads.changes", partition)], self.now)
        self.given_up |= {e for e in self.events if e.endswith(f"@p{partition}")}

    def complete(self, batch: Batch) -> None:
        self.sent.extend(batch.records)
        self.flow.complete(batch.records, self.now)

    def check_batch(self, batch: Batch) -> None:
        limits: dict[CallName, int] = {Operation.SYNC_LEAD: 1, Operation.SYNC_MULTIPLE_LEADS: self.max_leads}
        limit = limits.get(batch.operation, self.max_mobjects)
        assert 1 <= len(batch.records) <= limit
        assert {record.operation for record in batch.records} == {batch.operation}
        assert len({record.mobject_operation for record in batch.records}) == 1

    def check_in_flight(self) -> None:
        seen: set[str] = set()
        for batch in self.out:
            for record in batch.records:
                assert not (record.identities & seen), f"{record.key} shares an identity with a record out"
                seen |= record.identities

    def finish(self) -> None:
        """Drain, then send and complete everything, as a stop does."""
        self.flow.drain(self.now)
        while self.out or self.flow.ready:
            while self.flow.ready:
                self.out.append(self.flow.take())
                self.check_batch(self.out[-1])
                self.check_in_flight()
            self.complete(self.out.pop(0))


@settings(max_examples=300, deadline=None)
@given(steps(), st.integers(1, 4), st.integers(1, 3), st.sampled_from((0, 300, 1000)), st.sampled_from((0, 500)))
def test_every_event_ends_in_exactly_one_batch_within_limits_and_identities_never_overlap_in_flight(
    script: list[Step], max_leads: int, max_mobjects: int, window_ms: int, max_wait_ms: int
) -> None:
    harness = Harness(_flow(window_ms, max_wait_ms, max_leads, max_mobjects), max_leads, max_mobjects)
    for step in script:
        harness.apply(step)
    harness.finish()
    carried = [event.event_id for record in harness.sent for event in record.events]
    assert len(carried) == len(set(carried))  # no event in two batches
    kept = [event_id for event_id in harness.events if event_id not in harness.given_up]
    assert set(kept) <= set(carried)  # every event of a partition kept ends in a batch
    assert set(carried) <= set(harness.events)
    assert harness.flow.sizes() == {
        "window_records": 0,
        "gate_records": 0,
        "gate_waiting": 0,
        "batcher_records": 0,
        "outbox_batches": 0,
    }


@settings(max_examples=200, deadline=None)
@given(steps())
def test_records_sharing_an_identity_complete_in_the_order_they_left_the_window(script: list[Step]) -> None:
    harness = Harness(_flow(300, 500, 3, 2), 3, 2)
    for step in script:
        harness.apply(step)
    harness.finish()
    # For each identity value, the records carrying it were sent in the order of their first events' arrival.
    order = {event_id: n for n, event_id in enumerate(harness.events)}
    last: dict[str, int] = {}
    for record in harness.sent:
        first = min(order[event.event_id] for event in record.events)
        for value in record.identities:
            assert last.get(value, -1) < first, f"{record.key} overtook an earlier record of {value}"
            last[value] = first


def test_a_revoked_partition_leaves_the_flow_and_what_waited_for_it_goes() -> None:
    flow = _flow(window_ms=100, max_wait_ms=10_000)
    flow.add(lead_event("a1", partition=1, Email="a@x.com"), now=0.0)
    flow.release(0.1)
    flow.drain(0.1)
    out = flow.take()  # partition 1's record is at Marketo
    flow.draining = False
    flow.add(lead_event("a2", partition=1, Email="a@x.com"), now=0.2)  # waits in the gate for a1
    flow.add(lead_event("b1", partition=2, Email="a@x.com"), now=0.2)  # partition 2: waits for a2
    flow.add(lead_event("c1", partition=1, Email="c@x.com"), now=0.25)  # in the window
    flow.release(0.31)
    assert flow.sizes()["gate_waiting"] == 2
    assert flow.out_in([("leads.changes", 1)]) == 1
    flow.revoke([("leads.changes", 1)], now=0.35)
    assert flow.sizes()["window_records"] == 0
    assert flow.out_in([("leads.changes", 1)]) == 1  # what is at Marketo stays until its answer
    flow.complete(out.records, now=0.4)  # a1 answered: b1 no longer waits for a2, which is gone
    flow.drain(0.4)
    assert _sent(flow) == [["email:a@x.com"]]
    assert flow.sizes() == {
        "window_records": 0,
        "gate_records": 1,
        "gate_waiting": 0,
        "batcher_records": 0,
        "outbox_batches": 0,
    }


def test_a_revoked_partition_is_taken_out_of_open_batches_and_the_outbox() -> None:
    flow = _flow(window_ms=0, max_wait_ms=10_000, max_leads=2)
    for n, partition in enumerate((1, 2, 1, 2, 1)):
        flow.add(lead_event(f"e{n}", partition=partition, Email=f"{n}@x.com"), now=0.0)
    flow.release(0.0)
    flow.revoke([("leads.changes", 1)], now=0.1)
    flow.drain(0.1)
    assert _sent(flow) == [["email:1@x.com"], ["email:3@x.com"]]
