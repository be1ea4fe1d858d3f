from __future__ import annotations

from pipeline.batch.batcher import Batcher
from pipeline.dedupe.window import DedupeWindow
from pipeline.marketo.soap.route import soap_router
from pipeline.records import Operation, Record, SyncOperation
from tests.unit.events import lead_event, mobject_event


def records(*events: object) -> list[Record]:
    window = DedupeWindow(0.0)
    for event in events:
        window.add(event, now=0)  # type: ignore[arg-type]
    return window.expired(0)


def test_a_full_batch_goes_at_once() -> None:
    batcher = Batcher(router=soap_router(max_leads=3, max_mobjects=2), max_wait_s=1.0)
    leads = records(*(lead_event(f"e{n}", Email=f"{n}@x.com") for n in range(4)))
    out = [batch for r in leads for batch in batcher.add(r, now=0)]
    assert [(b.operation, len(b.records)) for b in out] == [(Operation.SYNC_MULTIPLE_LEADS, 3)]
    assert len(batcher) == 1


def test_a_partial_batch_goes_when_its_oldest_has_waited() -> None:
    batcher = Batcher(router=soap_router(max_leads=300, max_mobjects=100), max_wait_s=0.5)
    [first] = records(lead_event("a", Email="a@x.com"))
    [second] = records(lead_event("b", Email="b@x.com"))
    batcher.add(first, now=10.0)
    batcher.add(second, now=10.4)
    assert batcher.next_deadline() == 10.5
    assert batcher.due(10.49) == []
    [batch] = batcher.due(10.5)
    assert [r.key for r in batch.records] == ["email:a@x.com", "email:b@x.com"]
    assert batcher.next_deadline() is None


def test_sync_lead_records_go_alone_and_mobjects_by_operation() -> None:
    batcher = Batcher(router=soap_router(max_leads=300, max_mobjects=2), max_wait_s=1.0)
    cookie, insert1, update, insert2 = records(
        lead_event("c", MarketoCookie="ck"),
        mobject_event("m1", "INSERT", type="Opportunity", id=1),
        mobject_event("m2", "UPDATE", type="Opportunity", id=2),
        mobject_event("m3", "INSERT", type="Opportunity", id=3),
    )
    [single] = batcher.add(cookie, now=0)
    assert (single.operation, len(single.records)) == (Operation.SYNC_LEAD, 1)
    assert batcher.add(insert1, now=0) == []
    assert batcher.add(update, now=0) == []
    [inserts] = batcher.add(insert2, now=0)
    assert (inserts.route.params, len(inserts.records)) == ((SyncOperation.INSERT.value,), 2)
    [updates] = batcher.drain()
    assert updates.route.params == (SyncOperation.UPDATE.value,)


def test_a_call_closes_before_its_records_outweigh_the_byte_bound() -> None:
    window = DedupeWindow(0.0)
    for n in range(5):
        notes = {f"Notes{k}": "n" * 50_000 for k in range(2)}
        window.add(lead_event(f"e{n}", Email=f"{n}@x.com", attributes=notes), now=0)
    batcher = Batcher(router=soap_router(max_leads=300, max_mobjects=100), max_wait_s=10.0, max_bytes=250_000)
    batches = [batch for record in window.expired(0) for batch in batcher.add(record, 0.0)] + batcher.drain()
    assert [len(batch.records) for batch in batches] == [2, 2, 1]
