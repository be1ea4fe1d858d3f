"""The whole pipeline over Marketo's REST API: the real broker, and the simulator's REST face over HTTP."""

from __future__ import annotations

from collections import Counter

import pytest

from devkit.kafka import Topics, committed, publish, read_all, wait_for
from devkit.service import RunningService
from devkit.simulator import SimClient
from pipeline.contract import DlqHeader
from pipeline.sim.catalog import FSP_FIELD
from pipeline.sim.settings import SimSettings
from tests.integration.conftest import pipeline_settings
from tests.integration.helpers import events
from tests.integration.test_pipeline import _status, _text, lead, results_for

pytestmark = pytest.mark.integration


async def test_rest_happy_path_for_leads_opportunities_and_programs(
    kafka_bootstrap: str, topics: Topics, sim: SimClient
) -> None:
    bodies = [lead(n) for n in range(500)]
    bodies += [
        {"_key": "fsp:SF-1", "event_id": "evt-fsp", "lead": {"ForeignSysPersonId": "SF-1", "ForeignSysType": "SFDC", "Email": "sf@example.com"}},
        {"_key": "email:c@example.com", "event_id": "evt-cookie",
         "lead": {"Email": "c@example.com", "MarketoCookie": "id:561-HYG-937&token:_mch-rest-1", "attributes": {"City": "Paris"}}},
        {"_key": "cookie:only", "event_id": "evt-cookie-only", "lead": {"MarketoCookie": "id:561-HYG-937&token:_mch-2"}},
        {"_key": "email:r@example.com", "event_id": "evt-return", "lead": {"Email": "r@example.com"}, "return_lead": True},
        {"_key": "email:w@example.com", "event_id": "evt-workspace", "lead": {"Email": "w@example.com"}, "workspace": "EMEA"},
        {"_key": "email:u@example.com", "event_id": "evt-unknown-ws", "lead": {"Email": "u@example.com"}, "workspace": "Mars"},
        {"_key": "mobj:Opportunity:ExtId=O-1", "event_id": "evt-opp", "kind": "mobject",
         "mobject": {"type": "Opportunity", "externalKey": {"name": "ExtId", "value": "O-1"}, "attribs": {"Name": "Deal"}}},
        {"_key": "mobj:Program:1970", "event_id": "evt-prog", "kind": "mobject", "operation": "UPDATE",
         "mobject": {"type": "Program", "id": 1970, "typeAttribs": [{"attrType": "Cost", "attribs": {"Month": "2026-11", "Amount": 500}}]}},
    ]  # fmt: skip
    await sim.configure(workspaces={"Default": "Default", "EMEA": "EMEA Primary"})
    settings = pipeline_settings(
        kafka_bootstrap, topics, sim, api="rest", marketo={"partitions": {"EMEA": "EMEA Primary"}}
    )
    async with RunningService(settings):
        await publish(kafka_bootstrap, topics.input, events(bodies))
        results = await results_for(kafka_bootstrap, topics, len(bodies))
    by_event = {event_id: r for r in results for event_id in r["event_ids"]}
    assert set(by_event) == {b["event_id"] for b in bodies}
    assert Counter(r["status"] for r in results) == {"CREATED": 505, "UPDATED": 1, "FAILED": 2}
    assert by_event["evt-0"]["operation"] == "syncLeads"
    assert by_event["evt-cookie-only"]["error"]["message"].startswith("a lead known only by its Marketo cookie")
    assert "'Mars' has no lead partition" in by_event["evt-unknown-ws"]["error"]["message"]
    assert by_event["evt-return"]["lead"]["Email"] == "r@example.com"
    assert by_event["evt-return"]["lead"]["Id"] == by_event["evt-return"]["lead_id"]
    assert by_event["evt-opp"]["operation"] == "syncOpportunities"
    assert by_event["evt-opp"]["marketo_guid"]
    assert by_event["evt-prog"]["operation"] == "updateProgram"
    stored = {lead["Email"]: lead for lead in (await sim.admin("leads"))["leads"]}
    assert len(stored) == 504
    assert stored["person7@example.com"]["attributes"] == {"FirstName": "F7"}
    assert stored["sf@example.com"]["attributes"] == {FSP_FIELD: "SF-1"}  # REST carries it in the custom field
    assert stored["c@example.com"]["cookies"] == ["id:561-HYG-937&token:_mch-rest-1"]
    assert stored["c@example.com"]["attributes"] == {"City": "Paris"}
    assert stored["w@example.com"]["partition"] == "EMEA Primary"
    [opportunity] = [m for m in (await sim.admin("mobjects"))["mobjects"] if m["type"] == "Opportunity"]
    assert (opportunity["externalKey"]["value"], opportunity["attribs"]) == ("O-1", {"Name": "Deal"})
    [program] = [m for m in (await sim.admin("mobjects"))["mobjects"] if m["type"] == "Program"]
    [cost] = program["typeAttribs"]
    assert (cost["attribs"]["Month"], cost["attribs"]["Amount"]) == ("2026-11", "500")
    stats = await sim.admin("stats")
    assert stats["calls"]["describeLeads"] == 1  # one flight, however many workers wanted it
    assert stats["calls"]["syncLeads"] <= 5  # 500 leads: two full calls and what the windows left
    assert stats["calls"]["associateLead"] == 1
    assert stats["calls"]["getLeads"] == 1
    assert stats["tokens_issued"] == 1
    assert sum(stats["calls"][soap] for soap in ("syncLead", "syncMultipleLeads", "syncMObjects")) == 0
    letters = (await read_all(kafka_bootstrap, topics.dlq, json_values=False)).raw
    assert len(letters) == 2
    offsets = await committed(kafka_bootstrap, topics.group)
    assert sum(offsets.values()) == len(bodies)


async def test_rest_wrong_client_secret_pauses_says_why_and_recovers_without_dead_letters(
    kafka_bootstrap: str, topics: Topics, sim: SimClient
) -> None:
    await sim.configure(client_secret="not-the-pipelines-secret")
    bodies = [lead(n) for n in range(30)]
    async with RunningService(pipeline_settings(kafka_bootstrap, topics, sim, api="rest")) as running:
        await publish(kafka_bootstrap, topics.input, events(bodies))

        async def refused() -> str | None:
            said = await _text(f"{running.ops_url}/readyz")
            return said if "Marketo refuses our calls" in said else None

        said = await wait_for(refused, what="the service to say Marketo refuses it")
        assert await _status(f"{running.ops_url}/readyz") == 503
        assert "identity" in said or "client" in said, said
        assert (await read_all(kafka_bootstrap, topics.results)).values == []
        await sim.configure(client_secret=SimSettings().client_secret)
        results = await results_for(kafka_bootstrap, topics, len(bodies))

        async def ready() -> bool:
            return await _status(f"{running.ops_url}/readyz") == 200

        await wait_for(ready, what="readiness to come back")
    assert {r["status"] for r in results} == {"CREATED"}
    assert (await read_all(kafka_bootstrap, topics.dlq, json_values=False)).raw == []
    assert (await sim.admin("stats"))["calls"]["syncLeads"] >= 1


async def test_rest_an_unknown_field_fails_only_its_record_without_a_split(
    kafka_bootstrap: str, topics: Topics, sim: SimClient
) -> None:
    bodies = [lead(n) for n in range(300)]
    bodies[137]["lead"]["attributes"]["Poison"] = "x"
    bodies[200]["lead"]["attributes"]["lastName"] = "Already a REST name"
    settings = pipeline_settings(kafka_bootstrap, topics, sim, api="rest", batch={"max_wait_ms": 2000})
    async with RunningService(settings):
        await publish(kafka_bootstrap, topics.input, events(bodies))
        results = await results_for(kafka_bootstrap, topics, len(bodies))
    failed = [r for r in results if r["status"] == "FAILED"]
    assert [r["event_ids"] for r in failed] == [["evt-137"]]
    assert failed[0]["error"]["code"] == "1006"
    assert "Poison" in failed[0]["error"]["message"]
    stored = {lead["Email"]: lead for lead in (await sim.admin("leads"))["leads"]}
    assert len(stored) == 299
    assert stored["person200@example.com"]["attributes"]["LastName"] == "Already a REST name"
    dlq = await read_all(kafka_bootstrap, topics.dlq, json_values=False)
    assert [h[DlqHeader.REASON] for h in dlq.headers] == [b"marketo_rejected"]


async def test_rest_bodies_over_the_limit_are_split_by_size_and_all_arrive(
    kafka_bootstrap: str, topics: Topics, sim: SimClient
) -> None:
    await sim.configure(rest_max_body_bytes=6_000)  # a call of 100 leads is about 10 KB here: Marketo answers 413
    bodies = [lead(n, City="x" * 40) for n in range(300)]
    settings = pipeline_settings(kafka_bootstrap, topics, sim, api="rest", batch={"max_wait_ms": 2000})
    async with RunningService(settings):
        await publish(kafka_bootstrap, topics.input, events(bodies))
        results = await results_for(kafka_bootstrap, topics, len(bodies))
    assert Counter(r["status"] for r in results) == {"CREATED": 300}
    assert len((await sim.admin("leads"))["leads"]) == 300
    assert (await read_all(kafka_bootstrap, topics.dlq, json_values=False)).raw == []
    stats = await sim.admin("stats")
    assert stats["rejected"]["413"] > 0
    assert stats["records"]["syncLeads"] == 300  # each lead sent once: a 413 applies nothing


async def test_rest_rate_and_concurrency_limits_are_never_exceeded(
    kafka_bootstrap: str, topics: Topics, sim: SimClient
) -> None:
    await sim.configure(calls_per_20s=12, max_concurrency=2, latency_ms=150)
    bodies = [lead(n) for n in range(20)]
    for n, body in enumerate(bodies):  # each its own Get Leads follow-up: many small calls
        body["return_lead"] = True
        body["_key"] = f"email:person{n}@example.com"
    settings = pipeline_settings(
        kafka_bootstrap, topics, sim, api="rest", deliver={"calls_per_20s": 12, "max_concurrency": 2},
        batch={"max_leads": 2},
    )  # fmt: skip
    async with RunningService(settings):
        await publish(kafka_bootstrap, topics.input, events(bodies))
        await results_for(kafka_bootstrap, topics, len(bodies))
    stats = await sim.admin("stats")
    assert stats["calls"]["syncLeads"] >= 10
    assert (stats["rejected"]["606"], stats["rejected"]["615"]) == (0, 0)
    assert stats["peak_concurrency"] <= 2
