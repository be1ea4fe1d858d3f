"""Every request Marketo's documentation shows, sent as it is written, answered as the documentation says.

The syncLead, syncMultipleLeads and syncMObjects pages each carry one request and the reply Marketo gave
(tests/fixtures/marketo, from Adobe's published pages). The instance is first put in the state the reply implies
(the leads it reports UPDATED exist; Program 1970 has the cost 153 the request revises), through the API itself;
then the documented bytes go over HTTP and the reply must match the documented one, element for element, but for
the ids an instance assigns. A request of a real client that Marketo answered (markety's recording) gets the answer
it got. The pages' sample code (PHP, Java, Ruby) is driven through zeep in test_simulator_zeep.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from devkit.simulator import SimClient
from pipeline.marketo.soap.envelope import sync_mobjects_request, sync_multiple_leads_request
from pipeline.marketo.soap.response import parse_reply
from pipeline.records import Attrib, Lead, MObject, Operation, RecordStatus, SyncOperation, TypeAttrib

pytestmark = pytest.mark.integration

DOCS = Path(__file__).parents[1] / "fixtures" / "marketo"
# The documentation's API user and sample key: its syncMultipleLeads and syncMObjects signatures verify with them.
DOC_USER, DOC_KEY = "demo17_1_809934544BFABAE58E5D27", "27272727aa"
TWENTY_YEARS_S = 20 * 365 * 24 * 3600.0  # the documented requests were signed in 2013
ASSIGNED = frozenset({"leadId", "Id", "id"})  # ids the instance assigns: compared as "an id", not by value


def shape(xml: bytes) -> list[tuple[str, str]]:
    """Every element of a reply's body as (path by local names, text), blanks stripped; assigned ids as "<id>"."""
    body = etree.fromstring(xml).find("{http://schemas.xmlsoap.org/soap/envelope/}Body")
    assert body is not None
    found = []
    for element in body.iter(etree.Element):
        path = "/".join(etree.QName(e).localname for e in (*reversed(list(element.iterancestors())), element))
        text = (element.text or "").strip()
        if element.get("{http://www.w3.org/2001/XMLSchema-instance}nil") == "true":
            text = "nil"
        found.append((path, "<id>" if etree.QName(element).localname in ASSIGNED and text.isdigit() else text))
    return found


async def post(sim: SimClient, name: str) -> bytes:
    status, reply = await sim.post_raw((DOCS / name).read_bytes())
    assert status == 200, reply
    return reply


async def as_the_docs_user(sim: SimClient) -> None:
    await sim.configure(user_id=DOC_USER, secret_key=DOC_KEY, request_ttl_s=TWENTY_YEARS_S)


async def test_the_documented_sync_lead_request_gets_the_documented_reply(sim: SimClient) -> None:
    # Its signature (user bigcorp1_...) verifies with no published key: this one call is made with auth off.
    await sim.configure(auth=False)
    await sim.call(sync_multiple_leads_request([Lead(email="t@t.com")], dedup_enabled=True))
    reply = await post(sim, "adobedocs__syncLead_request_by_Email_returnLead_false.xml")
    assert shape(reply) == shape((DOCS / "adobedocs__syncLead_response_UPDATED_leadRecord_nil.xml").read_bytes())
    [lead] = (await sim.admin("leads"))["leads"]
    assert lead["attributes"] == {"FirstName": "George", "LastName": "of the Jungle"}
    assert parse_reply(Operation.SYNC_LEAD, reply, expected=1)[0].lead_id == lead["Id"]


async def test_the_documented_sync_multiple_leads_request_gets_the_documented_reply(sim: SimClient) -> None:
    await as_the_docs_user(sim)
    await sim.configure(auth=False)  # the two leads the reply reports UPDATED, made first
    existing = [Lead(email="em1000@etestd.marketo.net"), Lead(email="em1001@etestd.marketo.net")]
    await sim.call(sync_multiple_leads_request(existing, dedup_enabled=True))
    await sim.configure(auth=True)
    reply = await post(sim, "adobedocs__syncMultipleLeads_request_2_leads_dedupEnabled_true.xml")
    assert shape(reply) == shape((DOCS / "adobedocs__syncMultipleLeads_response_2_UPDATED.xml").read_bytes())
    leads = {lead["Email"]: lead for lead in (await sim.admin("leads"))["leads"]}
    assert leads["em1000@etestd.marketo.net"]["attributes"] == {"Company": "Marketo1000", "Phone": "650-555-1000"}
    assert len(leads) == 2


async def test_the_documented_sync_mobjects_request_gets_the_documented_reply(sim: SimClient) -> None:
    await as_the_docs_user(sim)
    await sim.configure(auth=False)  # Program 1970 with costs 1 to 153: the request revises cost 153
    costs = tuple(TypeAttrib("Cost", (Attrib("Month", "2013-05"), Attrib("Amount", "1"))) for _ in range(153))
    await sim.call(
        sync_mobjects_request([MObject("Program", id=1970, type_attribs=costs)], operation=SyncOperation.UPDATE)
    )
    await sim.configure(auth=True)
    reply = await post(sim, "adobedocs__syncMObjects_request_Program_Cost_UPDATE.xml")
    documented = (DOCS / "adobedocs__syncMObjects_response_UPDATED.xml").read_bytes()
    assert shape(reply) == shape(documented)
    assert parse_reply(Operation.SYNC_MOBJECTS, reply, expected=1)[0].mobject_id == 1970  # the id, as documented
    [program] = (await sim.admin("mobjects"))["mobjects"]
    revised = [t["attribs"] for t in program["typeAttribs"] if t["attribs"]["Id"] == "153"]
    assert revised == [{"Month": "2013-06", "Amount": "2000", "Id": "153"}]


async def test_a_recorded_request_with_an_element_marketo_ignores_is_answered_as_marketo_answered(
    sim: SimClient,
) -> None:
    # markety's recording: a lower-case foreignSysPersonId beside Email, workspace "Futures Institute", placeholder
    # credentials. Marketo created the lead by its Email, ForeignSysPersonId nil in the returned record.
    await sim.configure(auth=False, workspaces={"Default": "Default", "Futures Institute": "Futures"})
    reply = await post(sim, "markety__syncLead_request_lowercase_foreignSysPersonId_with_MktowsContextHeader.xml")
    [outcome] = parse_reply(Operation.SYNC_LEAD, reply, expected=1)
    assert outcome.status is RecordStatus.CREATED
    assert outcome.lead is not None
    assert (outcome.lead["Email"], outcome.lead["ForeignSysPersonId"]) == ("spiderman@example.com", None)
    recorded = parse_reply(
        Operation.SYNC_LEAD,
        (DOCS / "markety__syncLead_CREATED_with_MktowsContextHeader__response.xml").read_bytes(),
        expected=1,
    )[0]
    assert recorded.lead is not None
    assert (outcome.status, outcome.lead["ForeignSysPersonId"]) == (
        recorded.status,
        recorded.lead["ForeignSysPersonId"],
    )
    [lead] = (await sim.admin("leads"))["leads"]
    assert (lead["workspace"], lead["partition"]) == ("Futures Institute", "Futures")


async def test_the_signature_is_checked_before_the_body(sim: SimClient) -> None:
    # A body Marketo cannot read, sent by a caller it does not know: the caller is refused first (20014).
    data = (DOCS / "adobedocs__syncMultipleLeads_request_2_leads_dedupEnabled_true.xml").read_bytes()
    unreadable = data.replace(b"<dedupEnabled>true</dedupEnabled>", b"<dedupEnabled>perhaps</dedupEnabled>")
    assert unreadable != data
    status, reply = await sim.post_raw(unreadable)  # the fixture's user and signature are not this instance's
    assert (status, b"20014" in reply) == (500, True)
    await as_the_docs_user(sim)
    status, reply = await sim.post_raw(unreadable)  # a known caller: now the body is read, and refused
    assert (status, b"20017" in reply) == (500, True)
