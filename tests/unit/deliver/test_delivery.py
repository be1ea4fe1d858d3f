from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

import aiohttp
import pytest

from pipeline.dedupe.window import DedupeWindow
from pipeline.deliver.access import AccessGate
from pipeline.deliver.delivery import BatchDelivery, DeliverPolicy
from pipeline.deliver.governor import RateGovernor
from pipeline.deliver.http import TransportError
from pipeline.deliver.soap import SoapTransport
from pipeline.marketo.soap.envelope import SoapRequest
from pipeline.marketo.soap.fault import AccessFaultError, Fault, RejectedFaultError, TransientFaultError
from pipeline.marketo.soap.route import soap_router
from pipeline.marketo.soap.signing import Credentials
from pipeline.metrics import Metrics
from pipeline.records import (
    Batch,
    DeadLetterReason,
    Operation,
    Record,
    RecordOutcome,
    RecordResult,
    RecordStatus,
    Route,
)
from tests.unit.events import lead_event

POLICY = DeliverPolicy(max_attempts=4, backoff_base_s=0.0001, backoff_max_s=0.0001)
Behaviour = Callable[[SoapRequest, int], list[RecordOutcome]]


ROUTE = soap_router(max_leads=300, max_mobjects=100)
CREDENTIALS = Credentials("user", "secret")


class ScriptedMarketo(SoapTransport):
    """The SOAP transport, its HTTP call replaced: each attempt gets the next behaviour of its script (the last
    one repeats)."""

    def __init__(self, *script: Behaviour) -> None:
        super().__init__(
            cast("aiohttp.ClientSession", None),
            "http://marketo.invalid",
            CREDENTIALS,
            timeout_s=1,
            max_response_bytes=1,
        )
        self.script = list(script)
        self.calls: list[SoapRequest] = []

    async def call(self, request: SoapRequest, *, expected: int) -> list[RecordOutcome]:
        self.calls.append(request)
        behaviour = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        return behaviour(request, expected)


def ok(request: SoapRequest, expected: int) -> list[RecordOutcome]:
    del request
    return [RecordOutcome(RecordStatus.CREATED, lead_id=n + 1) for n in range(expected)]


def fault(code: str) -> Behaviour:
    def raise_fault(request: SoapRequest, expected: int) -> list[RecordOutcome]:
        del request, expected
        error = {"20014": AccessFaultError, "20105": RejectedFaultError}.get(code, TransientFaultError)
        raise error(Fault(code, f"fault {code}"))

    return raise_fault


def reset(request: SoapRequest, expected: int) -> list[RecordOutcome]:
    del request, expected
    raise TransportError("connection", "reset by peer")


def leads(count: int, poisoned: frozenset[int] = frozenset({7})) -> list[Record]:
    window = DedupeWindow(0.0)
    for n in range(count):
        window.add(lead_event(f"e{n}", Email=f"{n}@x.com", attributes={"Bad": "yes"} if n in poisoned else {}), now=0)
    return window.expired(0)


def delivery(caller: ScriptedMarketo, access: AccessGate | None = None) -> tuple[BatchDelivery, Metrics]:
    metrics = Metrics()
    governor = RateGovernor(calls_per_window=10_000, daily_quota=1_000_000)
    return BatchDelivery(caller, governor, access or AccessGate(retry_s=0.0001), POLICY, metrics), metrics


def batch(records: list[Record]) -> Batch:
    return Batch(ROUTE(records[0]), tuple(records))


async def test_a_clean_call_gives_every_record_its_status() -> None:
    marketo = ScriptedMarketo(ok)
    deliverer, metrics = delivery(marketo)
    results = await deliverer.deliver(batch(leads(5)))
    assert [(r.status, r.lead_id, r.attempts) for r in results] == [(RecordStatus.CREATED, n + 1, 1) for n in range(5)]
    assert metrics.requests.labels("syncMultipleLeads", "ok")._value.get() == 1


async def test_a_per_record_failure_dead_letters_that_record_only() -> None:
    def one_fails(request: SoapRequest, expected: int) -> list[RecordOutcome]:
        outcomes = ok(request, expected)
        outcomes[2] = RecordOutcome(RecordStatus.FAILED, error="Lead not found (20103)", error_code="20103")
        return outcomes

    results = await delivery(ScriptedMarketo(one_fails))[0].deliver(batch(leads(4)))
    assert [r.dead_letter for r in results] == [None, None, DeadLetterReason.MARKETO_REJECTED, None]
    assert results[2].error is not None
    assert results[2].error.code == "20103"


async def test_transient_failures_are_retried_and_counted() -> None:
    marketo = ScriptedMarketo(fault("20023"), reset, fault("20016"), ok)
    deliverer, metrics = delivery(marketo)
    results = await deliverer.deliver(batch(leads(3)))
    assert {(r.status, r.attempts) for r in results} == {(RecordStatus.CREATED, 4)}
    assert metrics.retries.labels("syncMultipleLeads", "fault_20023")._value.get() == 1
    assert metrics.retries.labels("syncMultipleLeads", "connection")._value.get() == 1
    assert len(marketo.calls) == 4


async def test_the_retry_budget_ends_in_retries_exhausted() -> None:
    marketo = ScriptedMarketo(fault("20011"))
    results = await delivery(marketo)[0].deliver(batch(leads(2)))
    assert {(r.status, r.dead_letter, r.attempts) for r in results} == {
        (RecordStatus.FAILED, DeadLetterReason.RETRIES_EXHAUSTED, 4)
    }
    assert results[0].error is not None
    assert results[0].error.code == "20011"
    assert len(marketo.calls) == POLICY.max_attempts


def rejects_bad(message: str) -> Behaviour:
    def poison(request: SoapRequest, expected: int) -> list[RecordOutcome]:
        if "<attrName>Bad</attrName>" in request.body:
            raise RejectedFaultError(Fault("20105", message))
        return ok(request, expected)

    return poison


async def test_a_whole_call_rejection_is_split_until_the_poison_record_stands_alone() -> None:
    poison = rejects_bad("syncMultipleLeads operation failed: an attribute is not right")

    marketo = ScriptedMarketo(poison)
    results = await delivery(marketo)[0].deliver(batch(leads(300)))
    failed = [r for r in results if r.status is RecordStatus.FAILED]
    assert len(results) == 300
    assert [r.record.key for r in failed] == ["email:7@x.com"]
    assert failed[0].dead_letter is DeadLetterReason.MARKETO_REJECTED
    assert failed[0].error is not None
    assert failed[0].error.code == "20105"
    assert len(marketo.calls) <= 2 * 9 + 1  # a binary search, not one call per record


@pytest.mark.parametrize(
    "message",
    [
        "syncMultipleLeads operation failed: unknown fields for import: Bad",
        "syncMultipleLeads operation failed: unknown fields for import: Color, bad (20105)",
    ],
)
async def test_unknown_fields_named_by_marketo_fail_their_records_and_the_rest_go_in_one_call(message: str) -> None:
    marketo = ScriptedMarketo(rejects_bad(message))
    results = await delivery(marketo)[0].deliver(batch(leads(300, poisoned=frozenset({7, 100, 250}))))
    failed = sorted(r.record.key for r in results if r.status is RecordStatus.FAILED)
    assert len(results) == 300
    assert failed == ["email:100@x.com", "email:250@x.com", "email:7@x.com"]
    assert {(r.dead_letter, r.error.code if r.error else None) for r in results if r.status is RecordStatus.FAILED} == {
        (DeadLetterReason.MARKETO_REJECTED, "20105")
    }
    assert [call.records for call in marketo.calls] == [300, 297]


async def test_unknown_fields_no_record_carries_fall_back_to_splitting() -> None:
    marketo = ScriptedMarketo(rejects_bad("syncMultipleLeads operation failed: unknown fields for import: Other"))
    results = await delivery(marketo)[0].deliver(batch(leads(300)))
    assert [r.record.key for r in results if r.status is RecordStatus.FAILED] == ["email:7@x.com"]
    assert 2 < len(marketo.calls) <= 2 * 9 + 1


async def test_credentials_refused_pause_without_spending_the_budget_or_dead_lettering() -> None:
    access = AccessGate(retry_s=0.0001)
    seen_closed = []

    def refused(request: SoapRequest, expected: int) -> list[RecordOutcome]:
        del request, expected
        seen_closed.append(access.is_open)
        raise AccessFaultError(Fault("20014", "Authentication failed"))

    marketo = ScriptedMarketo(*([refused] * 10), ok)
    results = await delivery(marketo, access)[0].deliver(batch(leads(2)))
    assert seen_closed[0] is True
    assert seen_closed[1:] == [False] * 9  # closed from the first refusal until a call succeeds
    assert access.is_open
    assert {(r.status, r.attempts) for r in results} == {(RecordStatus.CREATED, 1)}


@pytest.mark.parametrize("operation", [Operation.SYNC_LEAD, Operation.SYNC_MULTIPLE_LEADS])
async def test_batch_records_are_observed(operation: Operation) -> None:
    deliverer, metrics = delivery(ScriptedMarketo(ok))
    records = leads(1)
    await deliverer.deliver(Batch(Route(operation, (), 300), tuple(records)))
    assert metrics.batch_records.labels(operation.value)._sum.get() == 1


async def test_an_exception_nobody_foresaw_fails_the_batch_as_internal_error_and_the_pool_goes_on() -> None:
    from pipeline.deliver.pool import DeliveryPool  # noqa: PLC0415

    def broken(request: SoapRequest, expected: int) -> list[RecordOutcome]:
        del request, expected
        raise ZeroDivisionError("division by zero")

    deliverer, _ = delivery(ScriptedMarketo(broken, ok))
    published: list[list[RecordStatus | DeadLetterReason | str | None]] = []

    async def sink(results: list[RecordResult]) -> None:
        published.append([r.dead_letter for r in results])
        published.append([r.error.message if r.error else None for r in results])

    pool = DeliveryPool(deliverer, 1, sink)
    running = asyncio.create_task(pool.run())
    await pool.submit(batch(leads(2)))
    await pool.submit(batch(leads(3)))
    await pool.close()
    await asyncio.wait_for(running, timeout=5)
    assert published[0] == [DeadLetterReason.INTERNAL_ERROR] * 2
    assert published[1] == ["ZeroDivisionError: division by zero"] * 2
    assert published[2] == [None] * 3  # the next batch went through


async def test_a_transient_error_while_probing_does_not_leave_the_gate_closed_for_good() -> None:
    access = AccessGate(retry_s=0.001)
    marketo = ScriptedMarketo(fault("20014"), reset, ok)
    results = await asyncio.wait_for(delivery(marketo, access)[0].deliver(batch(leads(2))), timeout=5)
    assert {(r.status, r.attempts) for r in results} == {(RecordStatus.CREATED, 2)}
    assert access.is_open


async def test_when_the_prober_gives_up_another_waiting_call_probes() -> None:
    access = AccessGate(retry_s=0.001)
    refusals = [fault("20014")]

    def marketo_side(request: SoapRequest, expected: int) -> list[RecordOutcome]:
        # The one-record call is refused once, then meets resets until its budget is spent; the two-record call,
        # waiting at the closed gate meanwhile, gets its turn to probe and is accepted.
        if expected == 1:
            return (refusals.pop() if refusals else reset)(request, expected)
        return ok(request, expected)

    deliverer, _ = delivery(ScriptedMarketo(marketo_side), access)
    first = asyncio.create_task(deliverer.deliver(batch(leads(1))))
    while access.is_open:  # noqa: ASYNC110 - a step at a time until the first call has been refused
        await asyncio.sleep(0)
    second = asyncio.create_task(deliverer.deliver(batch(leads(2, poisoned=frozenset()))))
    done = await asyncio.wait_for(asyncio.gather(first, second), timeout=5)
    assert [r.dead_letter for r in done[0]] == [DeadLetterReason.RETRIES_EXHAUSTED]
    assert [r.status for r in done[1]] == [RecordStatus.CREATED] * 2
    assert access.is_open


async def test_unknown_fields_carried_by_every_record_are_logged_as_such() -> None:
    from structlog.testing import capture_logs  # noqa: PLC0415

    marketo = ScriptedMarketo(rejects_bad("syncMultipleLeads operation failed: unknown fields for import: Bad"))
    with capture_logs() as logs:
        results = await delivery(marketo)[0].deliver(batch(leads(2, poisoned=frozenset({0, 1}))))
    assert [r.status for r in results] == [RecordStatus.FAILED] * 2
    assert [entry["event"] for entry in logs] == ["batch_unknown_fields"]
    assert len(marketo.calls) == 1


async def test_an_expired_request_says_the_clock_is_off_until_a_call_goes_through() -> None:
    from pipeline.deliver.clock import ClockCheck  # noqa: PLC0415
    from pipeline.marketo.soap.fault import RequestExpiredError  # noqa: PLC0415

    clock = ClockCheck()
    problems: list[str | None] = []

    def expired(request: SoapRequest, expected: int) -> list[RecordOutcome]:
        del request, expected
        problems.append(clock.problem)
        error = RequestExpiredError(Fault("20016", "Request expired"))
        error.clock_skew_s = -930.0
        raise error

    metrics = Metrics()
    governor = RateGovernor(calls_per_window=10_000, daily_quota=1_000_000)
    marketo = ScriptedMarketo(expired, expired, ok)
    deliverer = BatchDelivery(marketo, governor, AccessGate(retry_s=0.0001), POLICY, metrics, clock=clock)
    results = await deliverer.deliver(batch(leads(1)))
    assert problems == [None, "Marketo says our requests expire (20016): this clock is -930.0 s off Marketo's"]
    assert clock.problem is None
    assert [(r.status, r.attempts) for r in results] == [(RecordStatus.CREATED, 3)]
    assert metrics.retries.labels("syncMultipleLeads", "fault_20016")._value.get() == 2


def test_the_clock_skew_is_read_from_the_reply_date() -> None:
    from datetime import UTC, datetime, timedelta  # noqa: PLC0415
    from email.utils import format_datetime  # noqa: PLC0415

    from pipeline.deliver.http import clock_skew_s  # noqa: PLC0415

    theirs = format_datetime(datetime.now(UTC) + timedelta(minutes=20), usegmt=True)
    skew = clock_skew_s(theirs)
    assert skew is not None
    assert -1201 <= skew <= -1199
    assert clock_skew_s(None) is None
    assert clock_skew_s("not a date") is None


def rejects_every_call(code: str = "20017") -> Behaviour:
    def reject(request: SoapRequest, expected: int) -> list[RecordOutcome]:
        del request, expected
        raise RejectedFaultError(Fault(code, "Invalid request"))

    return reject


async def test_a_fault_both_halves_and_lone_records_draw_is_the_calls_and_is_not_split_further() -> None:
    marketo = ScriptedMarketo(rejects_every_call())
    results = await delivery(marketo)[0].deliver(batch(leads(300, poisoned=frozenset())))
    assert [call.records for call in marketo.calls] == [300, 150, 150, 1, 1]  # not 599 calls
    assert len(results) == 300
    assert {(r.status, r.dead_letter, r.error.code if r.error else None) for r in results} == {
        (RecordStatus.FAILED, DeadLetterReason.MARKETO_REJECTED, "20017")
    }


async def test_two_poisoned_records_with_the_same_words_in_both_halves_fail_alone() -> None:
    def poison(request: SoapRequest, expected: int) -> list[RecordOutcome]:
        if "<Email>7@x.com</Email>" in request.body or "<Email>200@x.com</Email>" in request.body:
            raise RejectedFaultError(Fault("20105", "Lead attribute bad"))
        return ok(request, expected)

    marketo = ScriptedMarketo(poison)
    results = await delivery(marketo)[0].deliver(batch(leads(300, poisoned=frozenset())))
    assert sorted(r.record.key for r in results if r.status is RecordStatus.FAILED) == [
        "email:200@x.com",
        "email:7@x.com",
    ]
    assert len(results) == 300


async def test_a_call_too_large_is_split_until_its_parts_fit() -> None:
    from pipeline.deliver.http import CallRejectedError  # noqa: PLC0415

    def too_large(request: SoapRequest, expected: int) -> list[RecordOutcome]:
        if expected > 80:
            raise CallRejectedError("HTTP 413: the request is too large")
        return ok(request, expected)

    marketo = ScriptedMarketo(too_large)
    results = await delivery(marketo)[0].deliver(batch(leads(300, poisoned=frozenset())))
    assert {r.status for r in results} == {RecordStatus.CREATED}
    assert len(results) == 300


async def test_two_poisoned_halves_with_their_own_words_are_still_split_to_the_records() -> None:
    def poison(request: SoapRequest, expected: int) -> list[RecordOutcome]:
        for n in (7, 200):
            if f"<Email>{n}@x.com</Email>" in request.body:
                raise RejectedFaultError(Fault("20110", f"lead {n}@x.com: a parameter is bad"))
        return ok(request, expected)

    marketo = ScriptedMarketo(poison)
    results = await delivery(marketo)[0].deliver(batch(leads(300, poisoned=frozenset())))
    assert sorted(r.record.key for r in results if r.status is RecordStatus.FAILED) == [
        "email:200@x.com",
        "email:7@x.com",
    ]


async def test_the_same_call_fault_on_batch_after_batch_pauses_sending_until_marketo_accepts_again() -> None:
    access = AccessGate(retry_s=0.3)
    marketo = ScriptedMarketo(rejects_every_call())
    deliverer, _ = delivery(marketo, access)
    for _ in range(3):
        await deliverer.deliver(batch(leads(10, poisoned=frozenset())))
    assert not access.is_open
    assert access.reason is not None
    assert "20017" in access.reason
    calls_when_paused = len(marketo.calls)
    held = asyncio.create_task(deliverer.deliver(batch(leads(4, poisoned=frozenset()))))
    await asyncio.sleep(0.1)
    assert not held.done()  # it waits: nothing is spent of the quota until the probe is due
    assert len(marketo.calls) == calls_when_paused
    marketo.script = [ok]
    results = await asyncio.wait_for(held, timeout=5)
    assert [r.status for r in results] == [RecordStatus.CREATED] * 4
    assert access.is_open


def test_a_long_pause_probes_ever_more_rarely() -> None:
    now = [0.0]
    access = AccessGate(retry_s=30.0, clock=lambda: now[0])
    waits = []
    for _ in range(8):
        access.pause("Marketo rejects every call with 20017")
        waits.append(access._next_probe - now[0])
    assert waits == [30.0, 60.0, 120.0, 240.0, 480.0, 900.0, 900.0, 900.0]
    access.open()
    access.pause("again")
    assert access._next_probe - now[0] == 30.0


async def test_records_of_a_partition_given_up_are_not_retried_and_the_rest_go_on() -> None:
    given_up: set[str] = set()
    sent: list[int] = []

    def flaky_then_ok(request: SoapRequest, expected: int) -> list[RecordOutcome]:
        sent.append(expected)
        if len(sent) == 1:
            given_up.add("email:0@x.com")  # the rebalance lands while the first attempt is at Marketo
            raise TransportError("timeout", "no reply")
        return ok(request, expected)

    metrics = Metrics()
    governor = RateGovernor(calls_per_window=10_000, daily_quota=1_000_000)
    deliverer = BatchDelivery(
        ScriptedMarketo(flaky_then_ok),
        governor,
        AccessGate(retry_s=0.0001),
        POLICY,
        metrics,
        abandon=lambda record: record.key in given_up,
    )
    results = await deliverer.deliver(batch(leads(3, poisoned=frozenset())))
    assert sent == [3, 2]  # the retry leaves the given-up record out
    assert {r.record.key: (r.abandoned, r.status, r.attempts) for r in results} == {
        "email:0@x.com": (True, RecordStatus.FAILED, 0),
        "email:1@x.com": (False, RecordStatus.CREATED, 2),
        "email:2@x.com": (False, RecordStatus.CREATED, 2),
    }
