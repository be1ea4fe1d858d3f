from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.dedupe.gate import OrderGate
from pipeline.records import EventKind, Record


def record(key: str, *identities: str) -> Record:
    return Record(key=key, kind=EventKind.LEAD, events=(), identities=frozenset(identities or (key,)))


def test_unrelated_records_go_at_once() -> None:
    gate = OrderGate()
    assert gate.admit(record("a"))
    assert gate.admit(record("b"))


def test_a_record_sharing_an_identity_waits_for_the_earlier_one() -> None:
    gate = OrderGate()
    first = record("id:1", "id:1", "email:a@x.com")
    second = record("email:a@x.com", "email:a@x.com")
    third = record("email:a@x.com", "email:a@x.com")
    assert gate.admit(first)
    assert not gate.admit(second)
    assert not gate.admit(third)
    assert gate.complete(first) == [second]
    assert gate.complete(second) == [third]
    assert gate.complete(third) == []
    assert len(gate) == 0


def test_a_record_waits_for_every_holder() -> None:
    gate = OrderGate()
    a, b = record("a", "x"), record("b", "y")
    both = record("c", "x", "y")
    gate.admit(a)
    gate.admit(b)
    assert not gate.admit(both)
    assert gate.complete(b) == []
    assert gate.complete(a) == [both]


@given(
    st.lists(st.frozensets(st.sampled_from(["p", "q", "r", "s"]), min_size=1, max_size=2), min_size=1, max_size=25),
    st.randoms(use_true_random=False),
)
def test_records_sharing_a_value_never_run_together_and_keep_their_order(
    identity_sets: list[frozenset[str]], rnd: object
) -> None:
    import random  # noqa: PLC0415

    assert isinstance(rnd, random.Random)
    gate = OrderGate()
    records = [
        Record(key=str(n), kind=EventKind.LEAD, events=(), identities=ids) for n, ids in enumerate(identity_sets)
    ]
    running = [r for r in records if gate.admit(r)]
    finished: list[Record] = []
    while running:
        # Nothing in flight together shares a value.
        for i, left in enumerate(running):
            for right in running[i + 1 :]:
                assert not left.identities & right.identities
        done = running.pop(rnd.randrange(len(running)))
        finished.append(done)
        running.extend(gate.complete(done))
    assert len(finished) == len(records)
    # Per value, records finish in admission order.
    for value in ("p", "q", "r", "s"):
        order = [int(r.key) for r in finished if value in r.identities]
        assert order == sorted(order)


def test_admitting_a_record_twice_is_refused() -> None:
    gate = OrderGate()
    first, second = record("a", "x"), record("b", "x")
    gate.admit(first)
    gate.admit(second)
    with pytest.raises(ValueError, match="already admitted"):
        gate.admit(second)


def test_an_object_that_refers_to_another_waits_for_its_pending_record_and_readers_go_together() -> None:
    gate = OrderGate()
    opportunity = Record("mobj:Opportunity:ExtId=O-1", EventKind.MOBJECT, (), frozenset({"mobj:Opportunity:ExtId=O-1"}))
    refs = frozenset({"mobj:Opportunity:ExtId=O-1"})
    role_a = Record("mobj:OpportunityPersonRole:r=1", EventKind.MOBJECT, (), frozenset({"r1"}), references=refs)
    role_b = Record("mobj:OpportunityPersonRole:r=2", EventKind.MOBJECT, (), frozenset({"r2"}), references=refs)
    update = Record("mobj:Opportunity:ExtId=O-1", EventKind.MOBJECT, (), frozenset({"mobj:Opportunity:ExtId=O-1"}))
    assert gate.admit(opportunity)
    assert not gate.admit(role_a)  # never beside, nor ahead of, the object it names
    assert not gate.admit(role_b)
    assert not gate.admit(update)  # the object's next change waits for the roles read before it
    assert gate.complete(opportunity) == [role_a, role_b]  # readers of one object go together
    assert gate.complete(role_a) == []
    assert gate.complete(role_b) == [update]


def test_when_two_components_join_a_later_record_waits_for_both_histories() -> None:
    from pipeline.dedupe.links import IdentityLinks  # noqa: PLC0415

    links = IdentityLinks()
    gate = OrderGate(links)
    by_id = record("id:5", "id:5")
    by_email = record("email:a", "email:a")
    assert gate.admit(by_id)
    assert gate.admit(by_email)
    root, absorbed = links.link({"id:5", "email:a"})  # an event names both: one lead
    gate.join(root, absorbed)
    later = record("id:5", "id:5")  # names only the Id, yet reaches the lead the Email record writes
    assert not gate.admit(later)
    assert gate.complete(by_id) == []
    assert gate.complete(by_email) == [later]
