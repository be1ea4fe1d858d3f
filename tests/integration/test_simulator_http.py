from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from lxml import etree

from devkit.simulator import SimClient
from pipeline.marketo.soap.document import ResponseError
from pipeline.marketo.soap.envelope import (
    render_envelope,
    sync_lead_request,
    sync_mobjects_request,
    sync_multiple_leads_request,
)
from pipeline.marketo.soap.fault import AccessFaultError, RejectedFaultError, TransientFaultError
from pipeline.marketo.soap.response import parse_reply
from pipeline.marketo.soap.signing import Credentials, sign_request
from pipeline.records import Attrib, Lead, MObject, Operation, RecordOutcome, RecordStatus, SyncOperation, TypeAttrib
from tests.integration.conftest import CREDENTIALS

pytestmark = pytest.mark.integration

SMS = Operation.SYNC_MULTIPLE_LEADS


def leads(count: int, prefix: str = "lead", **attributes: str) -> list[Lead]:
    return [
        Lead(email=f"{prefix}{n}@example.com", attributes=(("FirstName", f"F{n}"), *attributes.items()))
        for n in range(count)
    ]


async def sync_many(sim: SimClient, batch: list[Lead]) -> list[RecordOutcome]:
    request = sync_multiple_leads_request(batch, dedup_enabled=True)
    _, body = await sim.call(request)
    return parse_reply(SMS, body, expected=len(batch))


async def test_sync_multiple_leads_creates_then_updates(sim: SimClient) -> None:
    first = await sync_many(sim, leads(300))
    assert {o.status for o in first} == {RecordStatus.CREATED}
    again = await sync_many(sim, leads(300, Company="Acme"))
    assert [o.lead_id for o in again] == [o.lead_id for o in first]
    assert {o.status for o in again} == {RecordStatus.UPDATED}
    stored = (await sim.admin("leads"))["leads"]
    assert len(stored) == 300
    assert stored[0]["attributes"] == {"FirstName": "F0", "Company": "Acme"}
    stats = await sim.admin("stats")
    assert stats["calls"]["syncMultipleLeads"] == 2
    assert stats["records"]["syncMultipleLeads"] == 600


async def test_a_per_record_failure_does_not_fail_the_call(sim: SimClient) -> None:
    outcomes = await sync_many(sim, [Lead(email="a@example.com"), Lead(id=424242), Lead(email="b@example.com")])
    assert [o.status for o in outcomes] == [RecordStatus.CREATED, RecordStatus.FAILED, RecordStatus.CREATED]
    assert outcomes[1].error_code == "20103"


async def test_sync_lead_with_cookie_workspace_and_returned_record(sim: SimClient) -> None:
    await sim.configure(workspaces={"Default": "Default", "EMEA": "EMEA Primary"})
    request = sync_lead_request(Lead(cookie="id:1&token:t"), return_lead=False)
    _, body = await sim.call(request)
    [anonymous] = parse_reply(Operation.SYNC_LEAD, body, expected=1)
    assert anonymous.status is RecordStatus.CREATED
    known = Lead(email="ada@example.com", cookie="id:1&token:t", attributes=(("FirstName", "Ada"),))
    _, body = await sim.call(sync_lead_request(known, return_lead=True))
    [outcome] = parse_reply(Operation.SYNC_LEAD, body, expected=1)
    assert (outcome.status, outcome.lead_id) == (RecordStatus.UPDATED, anonymous.lead_id)
    assert outcome.lead is not None
    assert outcome.lead["Email"] == "ada@example.com"
    _, body = await sim.call(sync_lead_request(Lead(email="emea@example.com"), return_lead=False, workspace="EMEA"))
    parse_reply(Operation.SYNC_LEAD, body, expected=1)
    stored = {lead["Email"]: lead for lead in (await sim.admin("leads"))["leads"]}
    assert stored["ada@example.com"]["cookies"] == ["id:1&token:t"]
    assert stored["emea@example.com"]["partition"] == "EMEA Primary"


async def test_sync_lead_faults_for_a_lead_marketo_refuses(sim: SimClient) -> None:
    status, body = await sim.call(sync_lead_request(Lead(id=99), return_lead=False))
    assert status == 500
    with pytest.raises(RejectedFaultError) as caught:
        parse_reply(Operation.SYNC_LEAD, body, expected=1)
    assert caught.value.fault.code == "20103"


async def test_sync_mobjects_over_http(sim: SimClient) -> None:
    opportunity = MObject(type="Opportunity", external_key=Attrib("ExtId", "OPP-9"), attribs=(Attrib("Name", "Q1"),))
    program = MObject(
        type="Program",
        id=1970,
        type_attribs=(TypeAttrib("Cost", (Attrib("Month", "2026-01"), Attrib("Amount", "10"))),),
    )
    _, body = await sim.call(sync_mobjects_request([opportunity], operation=SyncOperation.UPSERT))
    [created] = parse_reply(Operation.SYNC_MOBJECTS, body, expected=1)
    assert (created.status, created.external_key) == (RecordStatus.CREATED, Attrib("ExtId", "OPP-9"))
    _, body = await sim.call(sync_mobjects_request([program, opportunity], operation=SyncOperation.UPDATE))
    assert [o.status for o in parse_reply(Operation.SYNC_MOBJECTS, body, expected=2)] == [
        RecordStatus.UPDATED,
        RecordStatus.UNCHANGED,
    ]
    stored = {(m["type"], m["id"]): m for m in (await sim.admin("mobjects"))["mobjects"]}
    assert stored[("Program", 1970)]["typeAttribs"][0]["attribs"]["Amount"] == "10"
    assert stored[("Opportunity", created.mobject_id)]["externalKey"] == {"name": "ExtId", "value": "OPP-9"}


async def test_wrong_credentials_fault_with_20014(sim: SimClient) -> None:
    for credentials in (Credentials(CREDENTIALS.user_id, "wrong"), Credentials("someone_else", CREDENTIALS.secret_key)):
        status, body = await sim.call(sync_multiple_leads_request(leads(1), dedup_enabled=True), credentials)
        assert status == 500
        with pytest.raises(AccessFaultError) as caught:
            parse_reply(SMS, body, expected=1)
        assert caught.value.fault.code == "20014"
    stats = await sim.admin("stats")
    assert stats["rejected"]["20014"] == 2
    assert stats["leads"] == 0


async def test_a_stale_signature_faults_with_20016(sim: SimClient) -> None:
    request = sync_multiple_leads_request(leads(1), dedup_enabled=True)
    stale = render_envelope(request, sign_request(CREDENTIALS, datetime.now(UTC) - timedelta(hours=1)))
    status, body = await sim.post_raw(stale)
    assert status == 500
    with pytest.raises(TransientFaultError) as caught:
        parse_reply(SMS, body, expected=1)
    assert caught.value.fault.code == "20016"


async def test_auth_off_accepts_any_signature(sim: SimClient) -> None:
    await sim.configure(auth=False)
    assert len(await sync_many(sim, leads(2))) == 2
    status, _ = await sim.call(sync_multiple_leads_request(leads(1), dedup_enabled=True), Credentials("x", "y"))
    assert status == 200


async def test_concurrency_limit_refuses_calls_beyond_it(sim: SimClient) -> None:
    await sim.configure(max_concurrency=2, latency_ms=300)
    request = sync_multiple_leads_request(leads(1), dedup_enabled=True)
    replies = await asyncio.gather(*(sim.call(request) for _ in range(6)))
    refused = [body for status, body in replies if status == 500]
    assert len(refused) >= 4 - 2  # at most 2 in flight at once, whatever the scheduling
    for body in refused:
        with pytest.raises(TransientFaultError) as caught:
            parse_reply(SMS, body, expected=1)
        assert caught.value.fault.code == "20024"
    stats = await sim.admin("stats")
    assert stats["peak_concurrency"] <= 2
    assert stats["rejected"]["20024"] == len(refused)
    assert stats["in_flight"] == 0


async def test_rate_limit_and_daily_quota(sim: SimClient) -> None:
    await sim.configure(calls_per_20s=3)
    request = sync_multiple_leads_request(leads(1), dedup_enabled=True)
    statuses = [(await sim.call(request))[0] for _ in range(4)]
    assert statuses == [200, 200, 200, 500]
    await sim.admin("reset")
    await sim.configure(calls_per_20s=None, daily_quota=2)
    replies = [await sim.call(request) for _ in range(3)]
    assert [status for status, _ in replies] == [200, 200, 500]
    with pytest.raises(AccessFaultError) as caught:
        parse_reply(SMS, replies[2][1], expected=1)
    assert caught.value.fault.code == "20015"
    assert (await sim.admin("stats"))["rejected"]["20015"] == 1


async def test_batch_size_limit(sim: SimClient) -> None:
    await sim.configure(max_leads_per_call=2, max_mobjects_per_call=1)
    status, body = await sim.call(sync_multiple_leads_request(leads(3), dedup_enabled=True))
    assert status == 500
    with pytest.raises(RejectedFaultError, match="20110"):
        parse_reply(SMS, body, expected=3)
    objects = [MObject(type="Opportunity"), MObject(type="Opportunity")]
    status, _ = await sim.call(sync_mobjects_request(objects, operation=SyncOperation.INSERT))
    assert status == 500
    assert (await sim.admin("stats"))["leads"] == 0


async def test_an_unknown_lead_field_faults_the_whole_call_with_20105(sim: SimClient) -> None:
    await sim.configure(lead_fields=["FirstName", "Company"])
    batch = [*leads(5), Lead(email="poison@example.com", attributes=(("pants", "x"),))]
    status, body = await sim.call(sync_multiple_leads_request(batch, dedup_enabled=True))
    assert status == 500
    with pytest.raises(RejectedFaultError) as caught:
        parse_reply(SMS, body, expected=len(batch))
    assert caught.value.fault.code == "20105"
    assert "pants" in caught.value.fault.message
    assert (await sim.admin("stats"))["leads"] == 0
    assert len(await sync_many(sim, batch[:5])) == 5


@pytest.mark.parametrize(("kind", "status"), [("http_500", 500), ("http_503", 503)])
async def test_injected_http_errors(sim: SimClient, kind: str, status: int) -> None:
    await sim.configure(faults=[{"kind": kind, "rate": 1.0}])
    reply_status, body = await sim.call(sync_multiple_leads_request(leads(1), dedup_enabled=True))
    assert reply_status == status
    with pytest.raises(ResponseError):
        parse_reply(SMS, body, expected=1)
    assert (await sim.admin("stats"))["faults_injected"] == 1


async def test_injected_fault_codes_apply_to_their_operation_only(sim: SimClient) -> None:
    await sim.configure(faults=[{"kind": "fault", "code": "20023", "rate": 1.0, "operation": "syncLead"}])
    assert len(await sync_many(sim, leads(1))) == 1
    _, body = await sim.call(sync_lead_request(Lead(email="x@example.com"), return_lead=False))
    with pytest.raises(TransientFaultError, match="20023"):
        parse_reply(Operation.SYNC_LEAD, body, expected=1)


async def test_injected_reset_drops_the_connection(sim: SimClient) -> None:
    await sim.configure(faults=[{"kind": "reset", "rate": 1.0}])
    with pytest.raises(aiohttp.ClientError):
        await sim.call(sync_multiple_leads_request(leads(1), dedup_enabled=True))
    assert (await sim.admin("stats"))["leads"] == 0


async def test_injected_timeout_holds_until_the_client_gives_up(sim: SimClient) -> None:
    await sim.configure(faults=[{"kind": "timeout", "rate": 1.0}], max_concurrency=1)
    with pytest.raises(TimeoutError):
        await sim.call(sync_multiple_leads_request(leads(1), dedup_enabled=True), timeout_s=0.3)
    # The held call ends with its client: the only concurrency slot becomes free again.
    for _ in range(100):
        if (await sim.admin("stats"))["in_flight"] == 0:
            break
        await asyncio.sleep(0.05)
    await sim.configure(faults=[])
    assert len(await sync_many(sim, leads(1))) == 1


async def test_a_fault_after_the_call_applies_it_and_loses_the_reply(sim: SimClient) -> None:
    await sim.configure(faults=[{"kind": "http_500", "rate": 1.0, "phase": "after"}])
    status, _ = await sim.call(sync_multiple_leads_request(leads(3), dedup_enabled=True))
    assert status == 500
    assert (await sim.admin("stats"))["leads"] == 3


async def test_injected_faults_hit_about_their_rate_and_are_counted(sim: SimClient) -> None:
    await sim.configure(faults=[{"kind": "fault", "code": "20011", "rate": 0.2}])
    request = sync_multiple_leads_request(leads(1), dedup_enabled=True)
    statuses = [(await sim.call(request))[0] for _ in range(200)]
    failed = statuses.count(500)
    assert 10 < failed < 80
    assert (await sim.admin("stats"))["faults_injected"] == failed


async def test_concurrent_calls_leave_consistent_state(sim: SimClient) -> None:
    await sim.configure(latency_ms=5, latency_jitter_ms=20)
    batches = [leads(300, Round=str(n)) for n in range(40)]
    results = await asyncio.gather(*(sync_many(sim, batch) for batch in batches))
    assert all(len(outcomes) == 300 for outcomes in results)
    stored = (await sim.admin("leads"))["leads"]
    assert len(stored) == 300
    assert sum(o.status is RecordStatus.CREATED for outcomes in results for o in outcomes) == 300
    stats = await sim.admin("stats")
    assert stats["records"]["syncMultipleLeads"] == 40 * 300
    assert stats["peak_concurrency"] > 1


async def test_the_wsdl_is_served_with_this_address(sim: SimClient) -> None:
    async with sim.session.get(f"{sim.endpoint}?WSDL") as response:
        assert response.status == 200
        wsdl = etree.fromstring(await response.read())
    address = wsdl.find(".//{http://schemas.xmlsoap.org/wsdl/soap/}address")
    assert address is not None
    assert address.get("location") == sim.endpoint
    async with sim.session.get(sim.endpoint) as response:
        assert response.status == 405


async def test_config_errors_are_explained_and_reset_forgets_state(sim: SimClient) -> None:
    async with sim.session.post(f"{sim.base_url}/_sim/config", json={"calls_per_20s": -1}) as response:
        assert response.status == 400
        assert "calls_per_20s" in (await response.json())["error"]
    async with sim.session.post(f"{sim.base_url}/_sim/config", data=b"{") as response:
        assert response.status == 400
    shown = await sim.configure(latency_ms=1)
    assert shown["latency_ms"] == 1
    assert "secret_key" not in shown
    await sync_many(sim, leads(3))
    await sim.admin("reset")
    stats = await sim.admin("stats")
    assert (stats["leads"], stats["calls"]["syncMultipleLeads"]) == (0, 0)
    assert (await sim.admin("config"))["latency_ms"] == 1


async def test_a_hostile_host_header_stays_text_in_the_wsdl(sim: SimClient) -> None:
    host, port = sim.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    hostile = b'evil"/><injected/><x y="'
    writer.write(b"GET /soap/mktows/2_2?WSDL HTTP/1.1\r\nHost: " + hostile + b"\r\nConnection: close\r\n\r\n")
    await writer.drain()
    reply = await reader.read()
    writer.close()
    head, _, body = reply.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        assert head.startswith(b"HTTP/1.1 400")  # refused outright is as safe
        return
    wsdl = etree.fromstring(body)
    assert wsdl.find(".//injected") is None
    address = wsdl.find(".//{http://schemas.xmlsoap.org/wsdl/soap/}address")
    assert address is not None
    assert address.get("location") == f"http://{hostile.decode()}/soap/mktows/2_2"


async def test_an_object_naming_a_number_too_large_is_answered_failed_not_an_http_error(sim: SimClient) -> None:
    role = MObject("OpportunityPersonRole", attribs=(Attrib("OpportunityId", "1e999"), Attrib("PersonId", "1")))
    status, body = await sim.call(sync_mobjects_request([role], operation=SyncOperation.INSERT))
    assert status == 200, body
    [outcome] = parse_reply(Operation.SYNC_MOBJECTS, body, expected=1)
    assert (outcome.status, outcome.error) == (RecordStatus.FAILED, "Opportunity not found: OpportunityId 1e999")
