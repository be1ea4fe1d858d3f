"""One batch's delivery over REST: the Describe before, the follow-ups after, token refusals, call-level refusals.

The REST transport is real but for the wire: each call gets the reply bytes its script gives, read by the
transport's own reader, so routing, encoding, reading and classification are the product's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, cast

import aiohttp
import orjson

from pipeline.dedupe.window import DedupeWindow
from pipeline.deliver.access import AccessGate
from pipeline.deliver.delivery import BatchDelivery, DeliverPolicy
from pipeline.deliver.governor import RateGovernor
from pipeline.deliver.rest import RestTransport
from pipeline.deliver.token import TokenSource
from pipeline.marketo.rest.request import RestRequest
from pipeline.marketo.rest.route import RestRouting, rest_router
from pipeline.metrics import Metrics
from pipeline.records import Batch, DeadLetterReason, Record, RecordStatus
from pipeline.sim.catalog import FSP_FIELD, catalog
from tests.unit.events import lead_event, mobject_event

POLICY = DeliverPolicy(max_attempts=3, backoff_base_s=0.0001, backoff_max_s=0.0001)
ROUTING = RestRouting(fsp_field=FSP_FIELD)
Reply = Callable[[RestRequest], bytes]


def envelope(result: list[Any] | None = None, *, errors: list[dict[str, str]] | None = None) -> bytes:
    if errors is not None:
        return orjson.dumps({"requestId": "r#1", "success": False, "errors": errors})
    return orjson.dumps({"requestId": "r#1", "success": True, "result": result or []})


def error(code: str) -> Reply:
    return lambda _request: envelope(errors=[{"code": code, "message": f"error {code}"}])


def describe(_request: RestRequest) -> bytes:
    return envelope([f.describe() for f in catalog()])


def synced(request: RestRequest) -> bytes:
    return envelope([{"id": 100 + n, "status": "created"} for n in range(request.records)])


def leads_back(request: RestRequest) -> bytes:
    return envelope([{"id": i, "email": f"{i}@x.com", "firstName": "Back"} for i in request.lead_ids])


class Tokens:
    """A TokenSource's face, without an identity service: every renewal is a new token."""

    def __init__(self) -> None:
        self.fetched = 0
        self.refusals = 0

    async def token(self) -> str:
        return f"token-{self.fetched}"

    def refused(self, _token: str) -> None:
        self.refusals += 1
        self.fetched += 1

    def accepted(self) -> None:
        return None


class ScriptedRest(RestTransport):
    """The REST transport with its HTTP post replaced: each operation answers from its own script (the last
    reply repeats)."""

    def __init__(self, **scripts: list[Reply]) -> None:
        super().__init__(
            cast("aiohttp.ClientSession", None),
            "http://marketo.invalid",
            cast("TokenSource", Tokens()),
            ROUTING,
            timeout_s=1,
            max_response_bytes=1_000_000,
        )
        self.scripts: dict[str, list[Reply]] = {
            "describeLeads": [describe],
            "syncLeads": [synced],
            "getLeads": [leads_back],
            **scripts,
        }
        self.sent: list[str] = []
        self.sizes: list[int] = []
        self.on_sent: Callable[[str], None] = lambda _operation: None

    async def _post(self, request: RestRequest, token: str) -> tuple[int, bytes]:
        del token
        operation = request.operation.value
        self.sent.append(operation)
        self.sizes.append(len(request.body))
        script = self.scripts[operation]
        reply = script.pop(0) if len(script) > 1 else script[0]
        body = reply(request)
        self.on_sent(operation)
        return 200, body


def delivery(
    transport: ScriptedRest, *, abandon: Callable[[Record], bool] | None = None, access: AccessGate | None = None
) -> BatchDelivery:
    governor = RateGovernor(calls_per_window=10_000, daily_quota=1_000_000)
    gate = access or AccessGate(retry_s=0.0001)
    kwargs: dict[str, Any] = {} if abandon is None else {"abandon": abandon}
    return BatchDelivery(transport, governor, gate, POLICY, Metrics(), **kwargs)


def records(*events: Any) -> list[Record]:
    window = DedupeWindow(0.0)
    for event in events:
        window.add(event, now=0)
    return window.expired(0)


def batch(found: list[Record]) -> Batch:
    return Batch(rest_router(ROUTING)(found[0]), tuple(found))


async def test_leads_asked_back_of_a_revoked_partition_get_no_result_and_the_others_still_get_theirs() -> None:
    found = records(
        lead_event("kept", partition=0, Email="a@x.com", return_lead=True, attributes={"FirstName": "A"}),
        lead_event("revoked", partition=1, Email="b@x.com", return_lead=True),
    )
    revoked: set[int] = set()
    transport = ScriptedRest()
    transport.on_sent = lambda operation: revoked.add(1) if operation == "syncLeads" else None
    results = await delivery(transport, abandon=lambda r: r.events[0].message.source.partition in revoked).deliver(
        batch(found)
    )
    by_event = {r.record.events[0].event_id: r for r in results}
    assert by_event["revoked"].abandoned
    kept = by_event["kept"]
    assert (kept.abandoned, kept.status) == (False, RecordStatus.CREATED)
    assert kept.lead_data is not None
    assert (kept.lead_data["Id"], kept.lead_data["attributes"]) == (100, {"FirstName": "Back"})
    assert transport.sent == ["describeLeads", "syncLeads", "getLeads"]


async def test_a_failed_cookie_association_fails_the_record_saying_the_lead_was_synced() -> None:
    cookie = "id:561-HYG-937&token:_mch-x.com-1"
    transport = ScriptedRest(associateLead=[error("1012")])
    [result] = await delivery(transport).deliver(batch(records(lead_event("c", Email="c@x.com", MarketoCookie=cookie))))
    assert result.status is RecordStatus.FAILED
    assert result.error is not None
    assert "lead 100 created, but its cookie was not associated" in result.error.message
    assert result.dead_letter is DeadLetterReason.MARKETO_REJECTED


async def test_a_program_marketo_does_not_have_fails_alone_and_never_pauses_sending() -> None:
    transport = ScriptedRest(updateProgram=[error("702")])
    access = AccessGate(retry_s=60.0)
    deliverer = delivery(transport, access=access)
    for program in (1, 2, 3, 4):
        event = mobject_event(
            f"p{program}", "UPDATE", type="Program", id=program,
            typeAttribs=[{"attrType": "Cost", "attribs": {"Month": "2026-11", "Amount": 5}}],
        )  # fmt: skip
        [result] = await deliverer.deliver(batch(records(event)))
        assert (result.status, result.error.code if result.error else None) == (RecordStatus.FAILED, "702")
    assert access.is_open


async def test_a_call_refused_with_a_systemic_code_batch_after_batch_pauses_sending() -> None:
    transport = ScriptedRest(syncLeads=[error("610")])
    access = AccessGate(retry_s=60.0)
    deliverer = delivery(transport, access=access)
    for n in range(3):
        results = await deliverer.deliver(batch(records(lead_event(f"e{n}", Email=f"{n}@x.com"))))
        assert [r.status for r in results] == [RecordStatus.FAILED]
    assert not access.is_open


async def test_a_token_refused_again_and_again_counts_as_attempts_and_ends() -> None:
    transport = ScriptedRest(syncLeads=[error("602")])
    started = time.monotonic()
    [result] = await delivery(transport).deliver(batch(records(lead_event("e", Email="e@x.com"))))
    assert time.monotonic() - started < 10
    assert result.status is RecordStatus.FAILED
    assert result.dead_letter is DeadLetterReason.RETRIES_EXHAUSTED
    # Two renewals are free for each attempt, the third counts: three attempts of three calls each.
    assert transport.sent.count("syncLeads") == 3 * 3


async def test_a_token_refused_once_is_renewed_and_the_call_is_not_an_attempt() -> None:
    transport = ScriptedRest(syncLeads=[error("602"), synced])
    [result] = await delivery(transport).deliver(batch(records(lead_event("e", Email="e@x.com"))))
    assert (result.status, result.attempts) == (RecordStatus.CREATED, 1)
    assert transport.sent.count("syncLeads") == 2


async def test_a_failed_describe_fails_the_records_only_while_no_name_is_known() -> None:
    transport = ScriptedRest(describeLeads=[error("611")])
    [first] = await delivery(transport).deliver(batch(records(lead_event("e1", Email="a@x.com"))))
    assert first.status is RecordStatus.FAILED
    assert transport.sent == ["describeLeads"] * POLICY.max_attempts


async def test_a_failed_describe_after_one_that_worked_lets_known_names_go_and_fails_only_the_unknown() -> None:
    transport = ScriptedRest(describeLeads=[describe, error("611")])
    clock = [0.0]
    transport._clock = lambda: clock[0]
    deliverer = delivery(transport)
    await deliverer.deliver(batch(records(lead_event("e0", Email="z@x.com", attributes={"FirstName": "Z"}))))
    clock[0] = 120.0
    found = records(
        lead_event("known", Email="a@x.com", attributes={"FirstName": "A"}),
        lead_event("unknown", Email="b@x.com", attributes={"Mystery": "?"}),
    )
    results = {r.record.events[0].event_id: r for r in await deliverer.deliver(batch(found))}
    assert results["known"].status is RecordStatus.CREATED
    assert (results["unknown"].status, results["unknown"].error.code if results["unknown"].error else None) == (
        RecordStatus.FAILED,
        "1006",
    )
    assert transport.sent.count("describeLeads") == 1 + POLICY.max_attempts
    clock[0] = 150.0  # within a minute of the failed Describe: not asked again
    await deliverer.deliver(batch(records(lead_event("again", Email="c@x.com", attributes={"Mystery": "?"}))))
    assert transport.sent.count("describeLeads") == 1 + POLICY.max_attempts


async def test_a_body_over_marketos_1_mb_is_split_by_size_before_it_is_sent() -> None:
    transport = ScriptedRest()
    found = records(*(lead_event(f"e{n}", Email=f"{n}@x.com", attributes={"Notes": "n" * 4_000}) for n in range(300)))
    results = await delivery(transport).deliver(batch(found))
    assert [r.status for r in results] == [RecordStatus.CREATED] * 300
    assert transport.sent.count("syncLeads") >= 2
    assert max(transport.sizes) <= 1_000_000  # Marketo never saw a body it would answer 413
