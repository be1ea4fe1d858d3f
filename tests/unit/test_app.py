from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from pipeline.app import Service
from pipeline.config import Settings
from pipeline.records import Event
from tests.unit.events import lead_event


def _service(window_ms: int, max_wait_ms: int) -> Service:
    return Service(Settings(dedupe={"window_ms": window_ms}, batch={"max_wait_ms": max_wait_ms}))


def _add(service: Service, event: Event, now: float) -> None:
    for record in service.window.add(event, now):
        service._admit(record, now)


def _sent(service: Service) -> list[list[str]]:
    batches = [[record.key for record in batch.records] for batch in service._outbox]
    service._outbox.clear()
    return batches


def test_a_partial_batch_waits_while_records_in_the_window_could_join_it() -> None:
    service = _service(window_ms=1000, max_wait_ms=500)
    _add(service, lead_event("a", Email="a@x.com"), now=0.0)
    _add(service, lead_event("b", Email="b@x.com"), now=0.3)
    service._release(1.0)  # a leaves the window; b, still in it, will join a's batch
    assert _sent(service) == []
    service._release(1.3)  # b leaves: nothing left that could join before the batch is due at 1.5
    assert _sent(service) == [["email:a@x.com", "email:b@x.com"]]


def test_a_partial_batch_waits_when_new_events_could_still_join_it() -> None:
    # No dedupe window: a record can join the batch as soon as its event is read, so the batch waits its time.
    service = _service(window_ms=0, max_wait_ms=500)
    _add(service, lead_event("a", Email="a@x.com"), now=0.0)
    service._release(0.0)
    assert _sent(service) == []
    service._release(0.5)
    assert _sent(service) == [["email:a@x.com"]]


def test_a_partial_batch_waits_while_the_gate_holds_a_record_that_could_join() -> None:
    service = _service(window_ms=100, max_wait_ms=100)
    _add(service, lead_event("a", Email="a@x.com"), now=0.0)
    service._release(0.1)
    [[first]] = [batch.records for batch in service._outbox]
    service._outbox.clear()
    _add(service, lead_event("b", Email="a@x.com"), now=0.15)  # the same lead: waits in the gate for a's result
    _add(service, lead_event("c", Email="c@x.com"), now=0.15)
    service._release(0.25)
    assert service.gate.waiting == 1
    assert _sent(service) == []  # b may join c's batch once a is answered
    for ready in service.gate.complete(first):
        service._enqueue(ready, 0.26)
    service._release(0.26)
    assert _sent(service) == [["email:c@x.com", "email:a@x.com"]]


def test_under_backpressure_a_partial_batch_waits_for_the_backlog_but_not_for_ever() -> None:
    service = _service(window_ms=1000, max_wait_ms=500)
    service._wiring = cast("Any", SimpleNamespace(source=SimpleNamespace(paused=True)))
    _add(service, lead_event("a", Email="a@x.com"), now=0.0)
    service._release(1.0)  # reading is paused: the events behind the pause would fill this batch
    service._release(1.5)
    assert _sent(service) == []
    assert service._next_deadline() == 1.5 + 4 * 1.0  # the tick sleeps until then, it does not spin
    service._release(1.5 + 4 * 1.0)  # its time, then four windows at most
    assert _sent(service) == [["email:a@x.com"]]
