from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pipeline.dedupe.window import DedupeWindow
from pipeline.records import Operation, SyncOperation
from tests.unit.events import lead_event, mobject_event


def test_events_of_one_key_merge_later_wins() -> None:
    window = DedupeWindow(1.0)
    window.add(lead_event("e1", Email="a@x.com", attributes={"FirstName": "A", "City": "Paris"}), now=0.0)
    window.add(lead_event("e2", Email="A@X.com", attributes={"City": "Lyon"}), now=0.5)
    window.add(lead_event("e3", Email="b@x.com"), now=0.6)
    assert window.expired(0.99) == []
    [record] = window.expired(1.0)
    assert record.key == "email:a@x.com"
    assert record.lead is not None
    assert record.lead.email == "a@x.com"  # the identity as the first event gave it: Marketo keeps it so
    assert dict(record.lead.attributes) == {"FirstName": "A", "City": "Lyon"}
    assert [e.event_id for e in record.events] == ["e1", "e2"]
    assert record.operation is Operation.SYNC_MULTIPLE_LEADS
    assert window.merged == 1
    assert [r.key for r in window.expired(2.0)] == ["email:b@x.com"]
    assert window.pending_events == 0


def test_identity_fields_the_later_event_leaves_out_are_kept() -> None:
    window = DedupeWindow(1.0)
    window.add(lead_event("e1", Id=5, Email="old@x.com", ForeignSysPersonId="S-1", ForeignSysType="SFDC"), now=0.0)
    window.add(lead_event("e2", Id=5, attributes={"City": "Oslo"}), now=0.1)
    [record] = window.drain()
    assert record.lead is not None
    assert (record.lead.id, record.lead.email, record.lead.foreign_sys_person_id) == (5, "old@x.com", "S-1")
    assert record.identities == {"id:5", "email:old@x.com", "fsp:SFDC:S-1"}


def test_an_event_that_names_a_new_identity_starts_a_record_of_its_own() -> None:
    # Marketo finds a lead by its Id first and changes its Email only through the attributes: merged, the new
    # Email would have created the lead with it; applied in order, it does not. So the two go in order.
    window = DedupeWindow(1.0)
    window.add(lead_event("e1", Id=5, Email="old@x.com"), now=0.0)
    released = window.add(lead_event("e2", Id=5, Email="new@x.com"), now=0.1)
    assert [[e.event_id for e in r.events] for r in released] == [["e1"]]
    [later] = window.drain()
    assert [e.event_id for e in later.events] == ["e2"]
    assert later.identities == {"id:5", "email:new@x.com"}


def test_a_window_reopens_after_release() -> None:
    window = DedupeWindow(1.0)
    window.add(lead_event("e1", Email="a@x.com"), now=0.0)
    assert len(window.expired(1.0)) == 1
    window.add(lead_event("e2", Email="a@x.com"), now=1.1)
    assert window.expired(1.5) == []
    assert [r.events[0].event_id for r in window.expired(2.1)] == ["e2"]


def test_routing_of_merged_records() -> None:
    window = DedupeWindow(0.0)
    window.add(lead_event("c", MarketoCookie="ck"), now=0)
    window.add(lead_event("w", Email="w@x.com", workspace="EMEA"), now=0)
    window.add(lead_event("r1", Email="r@x.com"), now=0)
    released = window.add(lead_event("r2", Email="r@x.com", return_lead=True), now=0)  # no merge: another call
    window.add(mobject_event("m", type="Opportunity", externalKey={"name": "E", "value": "1"}), now=0)
    operations = [(r.key, r.operation) for r in released + window.expired(0)]
    assert operations == [
        ("cookie:ck", Operation.SYNC_LEAD),
        ("email:w@x.com|ws:EMEA", Operation.SYNC_LEAD),
        ("email:r@x.com", Operation.SYNC_MULTIPLE_LEADS),
        ("email:r@x.com", Operation.SYNC_LEAD),
        ("mobj:Opportunity:E=1", Operation.SYNC_MOBJECTS),
    ]


def test_mobject_operation_change_closes_the_open_record() -> None:
    window = DedupeWindow(1.0)
    window.add(mobject_event("m1", "UPSERT", type="Opportunity", id=4, attribs={"Name": "A"}), now=0)
    window.add(mobject_event("m2", "UPSERT", type="Opportunity", id=4, attribs={"Amount": "1"}), now=0.1)
    released = window.add(mobject_event("m3", "UPDATE", type="Opportunity", id=4, attribs={"Name": "B"}), now=0.2)
    assert [(r.mobject_operation, len(r.events)) for r in released] == [(SyncOperation.UPSERT, 2)]
    assert released[0].mobject is not None
    assert {a.name: a.value for a in released[0].mobject.attribs} == {"Name": "A", "Amount": "1"}
    [later] = window.drain()
    assert later.mobject_operation is SyncOperation.UPDATE


def test_inserts_never_merge_marketo_skips_the_later_ones() -> None:
    window = DedupeWindow(1.0)
    window.add(mobject_event("m1", "INSERT", type="Opportunity", id=4, attribs={"Name": "A"}), now=0)
    released = window.add(mobject_event("m2", "INSERT", type="Opportunity", id=4, attribs={"Name": "B"}), now=0.1)
    assert [[e.event_id for e in r.events] for r in released] == [["m1"]]
    assert [[e.event_id for e in r.events] for r in window.drain()] == [["m2"]]


def test_an_early_close_takes_every_older_record_with_it_so_records_leave_in_order() -> None:
    window = DedupeWindow(1.0)
    window.add(lead_event("a", Email="a@x.com"), now=0.0)
    window.add(lead_event("b1", Id=7, Email="b@x.com"), now=0.1)
    window.add(lead_event("c", Email="c@x.com"), now=0.2)
    released = window.add(lead_event("b2", Id=7, Email="b2@x.com"), now=0.3)
    assert [r.key for r in released] == ["email:a@x.com", "id:7"]
    assert [r.key for r in window.drain()] == ["email:c@x.com", "id:7"]


def test_a_record_holds_a_bounded_number_of_events() -> None:
    window = DedupeWindow(10.0, max_events=3)
    released = []
    for n in range(7):
        released += window.add(lead_event(f"e{n}", Email="a@x.com"), now=n / 10)
    released += window.drain()
    assert [len(r.events) for r in released] == [3, 3, 1]


@given(
    st.lists(
        st.tuples(st.sampled_from(["a@x.com", "b@x.com", "c@x.com"]), st.sampled_from(["F", "G"]), st.integers(0, 9)),
        max_size=40,
    )
)
def test_merge_equals_applying_events_in_order(events: list[tuple[str, str, int]]) -> None:
    window = DedupeWindow(100.0)
    expected: dict[str, dict[str, str]] = {}
    for n, (email, name, value) in enumerate(events):
        window.add(lead_event(f"e{n}", Email=email, attributes={name: str(value)}), now=float(n))
        expected.setdefault(f"email:{email}", {})[name] = str(value)
    records = window.drain()
    assert {r.key: dict(r.lead.attributes) for r in records if r.lead} == expected
    assert sum(len(r.events) for r in records) == len(events)
    assert window.merged == len(events) - len(expected)
