"""The whole pipeline over Marketo's REST API: the real broker, and the simulator's REST face over HTTP."""

from __future__ import annotations

from collections import Counter

import pytest

from devkit.kafka import Topics, committed, publish, read_all
from devkit.service import RunningService
from devkit.simulator import SimClient
from pipeline.sim.catalog import FSP_FIELD
from tests.integration.conftest import pipeline_settings
from tests.integration.helpers import events
from tests.integration.test_pipeline import lead, results_for

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
