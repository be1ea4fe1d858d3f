"""The simulator driven by zeep, an independent SOAP client generated from the WSDL the simulator serves."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from lxml import etree
from zeep import Client
from zeep.exceptions import Fault
from zeep.plugins import HistoryPlugin

from devkit.simulator import SimClient
from pipeline.marketo.soap.signing import sign_request
from tests.integration.conftest import CREDENTIALS

pytestmark = pytest.mark.integration


class ZeepMarketo:
    """A zeep client with Marketo's headers, as a third-party integration would write it."""

    def __init__(self, wsdl_url: str) -> None:
        self.history = HistoryPlugin()
        self.client = Client(wsdl_url, plugins=[self.history])

    def headers(self, workspace: str | None = None) -> list[Any]:
        auth = sign_request(CREDENTIALS)
        header = self.client.get_element("ns0:AuthenticationHeader")(
            mktowsUserId=auth.user_id, requestSignature=auth.signature, requestTimestamp=auth.timestamp
        )
        if workspace is None:
            return [header]
        return [header, self.client.get_element("ns0:MktowsContextHeader")(targetWorkspace=workspace)]

    def sent(self) -> etree._Element:
        envelope: etree._Element = self.history.last_sent["envelope"]
        return envelope


async def test_zeep_drives_all_three_operations(sim: SimClient) -> None:
    await sim.configure(workspaces={"Default": "Default", "EMEA": "EMEA Primary"})

    def calls() -> dict[str, Any]:
        zeep = ZeepMarketo(f"{sim.endpoint}?WSDL")
        service = zeep.client.service
        many = service.syncMultipleLeads(
            leadRecordList={
                "leadRecord": [
                    {
                        "Email": "a@example.com",
                        "leadAttributeList": {"attribute": [{"attrName": "FirstName", "attrValue": "A <&> B"}]},
                    },
                    {
                        "Email": "A@EXAMPLE.COM",
                        "leadAttributeList": {"attribute": [{"attrName": "LastName", "attrValue": "Z"}]},
                    },
                    {"ForeignSysPersonId": "SF-1", "ForeignSysType": "SFDC", "Email": "sf@example.com"},
                ]
            },
            dedupEnabled=True,
            _soapheaders=zeep.headers(),
        )
        prefixes = set(zeep.sent().nsmap)
        single = service.syncLead(
            leadRecord={
                "Email": "emea@example.com",
                "leadAttributeList": {"attribute": [{"attrName": "City", "attrValue": "Köln 🏰"}]},
            },
            returnLead=True,
            marketoCookie="id:561-HYG-937&token:_mch-zeep",
            _soapheaders=zeep.headers("EMEA"),
        )
        objects = service.syncMObjects(
            mObjectList={
                "mObject": [
                    {
                        "type": "Opportunity",
                        "externalKey": {"name": "ExtId", "value": "OPP-9"},
                        "attribList": {"attrib": [{"name": "Name", "value": "Q1 renewal"}]},
                        "associationList": {
                            "mObjAssociation": [
                                {"mObjType": "Company", "externalKey": {"name": "ExtCo", "value": "C-1"}}
                            ]
                        },
                    },
                    {
                        "type": "Program",
                        "id": 1970,
                        "typeAttribList": {
                            "typeAttrib": [
                                {
                                    "attrType": "Cost",
                                    "attrList": {
                                        "attrib": [
                                            {"name": "Month", "value": "2026-06"},
                                            {"name": "Amount", "value": "2000"},
                                        ]
                                    },
                                }
                            ]
                        },
                    },
                ]
            },
            operation="UPSERT",
            _soapheaders=zeep.headers(),
        )
        return {"many": many, "single": single, "objects": objects, "prefixes": prefixes}

    replies = await asyncio.to_thread(calls)

    assert "ns1" not in replies["prefixes"], "zeep is meant to spell the envelope differently from the pipeline"
    statuses = replies["many"]["syncStatus"]
    assert [s["status"] for s in statuses] == ["CREATED", "UPDATED", "CREATED"]
    assert statuses[0]["leadId"] == statuses[1]["leadId"]
    result = replies["single"]
    assert result["syncStatus"]["status"] == "CREATED"
    assert result["leadRecord"]["Email"] == "emea@example.com"
    mobj = replies["objects"]["mObjStatus"]
    assert [m["status"] for m in mobj] == ["CREATED", "FAILED"]
    assert mobj[0]["externalKey"]["value"] == "OPP-9"
    assert "UPDATE" in mobj[1]["error"]

    stored = {lead["Email"]: lead for lead in (await sim.admin("leads"))["leads"]}
    assert stored["a@example.com"]["attributes"] == {"FirstName": "A <&> B", "LastName": "Z"}
    assert stored["sf@example.com"]["ForeignSysPersonId"] == "SF-1"
    assert stored["emea@example.com"]["cookies"] == ["id:561-HYG-937&token:_mch-zeep"]
    assert stored["emea@example.com"]["partition"] == "EMEA Primary"
    assert stored["emea@example.com"]["attributes"] == {"City": "Köln 🏰"}
    [opportunity] = (await sim.admin("mobjects"))["mobjects"]
    assert opportunity["associations"] == [
        {"mObjType": "Company", "id": None, "externalKey": {"name": "ExtCo", "value": "C-1"}}
    ]
    stats = await sim.admin("stats")
    called = {operation: count for operation, count in stats["calls"].items() if count}
    assert called == {"syncLead": 1, "syncMultipleLeads": 1, "syncMObjects": 1}
    sent = {operation: count for operation, count in stats["records"].items() if count}
    assert sent == {"syncLead": 1, "syncMultipleLeads": 3, "syncMObjects": 2}


async def test_zeep_sees_marketo_faults(sim: SimClient) -> None:
    await sim.configure(lead_fields=["FirstName"])

    def call() -> Fault:
        zeep = ZeepMarketo(f"{sim.endpoint}?WSDL")
        try:
            zeep.client.service.syncMultipleLeads(
                leadRecordList={
                    "leadRecord": [
                        {
                            "Email": "p@example.com",
                            "leadAttributeList": {"attribute": [{"attrName": "pants", "attrValue": "x"}]},
                        }
                    ]
                },
                _soapheaders=zeep.headers(),
            )
        except Fault as fault:
            return fault
        pytest.fail("the unknown field should fault")

    fault = await asyncio.to_thread(call)
    assert fault.message == "20105 - Lead attribute bad"
    assert fault.detail is not None
    assert fault.detail.findtext(".//code") == "20105"
    assert (await sim.admin("stats"))["leads"] == 0


def _attribs(**values: str) -> dict[str, Any]:
    return {"attrib": [{"name": name, "value": value} for name, value in values.items()]}


async def test_zeep_sends_the_documentations_sample_code_and_each_is_answered_by_its_rules(sim: SimClient) -> None:
    # The sample code of the syncLead, syncMultipleLeads and syncMObjects pages (PHP, Java, Ruby), and the Developer
    # Blog's "Opportunity Sync via SOAP API", as a client generated from the WSDL sends them. The instance first
    # gets what the samples assume: lead 19, Opportunity 64's predecessors, Program 1970's cost 153, a lead whose
    # custom field FSPID is 12346.
    def calls() -> dict[str, Any]:
        zeep = ZeepMarketo(f"{sim.endpoint}?WSDL")
        service = zeep.client.service
        service.syncMultipleLeads(
            leadRecordList={"leadRecord": [{"Email": f"seed{n}@example.com"} for n in range(18)]
                            + [{"Email": "fk@example.com",
                                "leadAttributeList": {"attribute": [{"attrName": "FSPID", "attrValue": "12346"}]}}]},
            dedupEnabled=True, _soapheaders=zeep.headers(),
        )  # fmt: skip
        fillers = [{"type": "Opportunity", "attribList": _attribs(Name=f"filler {n}")} for n in range(63)]
        service.syncMObjects(mObjectList={"mObject": fillers}, operation="INSERT", _soapheaders=zeep.headers())
        cost = {"attrType": "Cost", "attrList": _attribs(Month="2013-05", Amount="1")}
        service.syncMObjects(
            mObjectList={"mObject": [{"type": "Program", "id": 1970, "typeAttribList": {"typeAttrib": [cost] * 153}}]},
            operation="UPDATE", _soapheaders=zeep.headers(),
        )  # fmt: skip
        replies: dict[str, Any] = {}
        # syncLead, Java: FirstName George2 into the workspace "default" (lower case), a new lead
        replies["java_sync_lead"] = service.syncLead(
            leadRecord={"Email": "george@jungle.com", "leadAttributeList": {"attribute": [
                {"attrName": "FirstName", "attrValue": "George2"}, {"attrName": "LastName", "attrValue": "of the Jungle"}]}},
            returnLead=False, _soapheaders=zeep.headers("default"),
        )  # fmt: skip
        # syncLead, PHP: the same lead by Email, George, no context header: updated
        replies["php_sync_lead"] = service.syncLead(
            leadRecord={"Email": "george@jungle.com", "leadAttributeList": {"attribute": [
                {"attrName": "FirstName", "attrValue": "George"}, {"attrName": "LastName", "attrValue": "of the Jungle"}]}},
            returnLead=False, _soapheaders=zeep.headers(),
        )  # fmt: skip
        # syncMultipleLeads, PHP/Java/Ruby: two leads by Email, dedupEnabled true
        replies["sync_multiple"] = service.syncMultipleLeads(
            leadRecordList={"leadRecord": [
                {"Email": "em1000@etestd.marketo.net", "leadAttributeList": {"attribute": [
                    {"attrName": "Company", "attrValue": "Marketo1000"}, {"attrName": "Phone", "attrValue": "650-555-1000"}]}},
                {"Email": "em1001@etestd.marketo.net", "leadAttributeList": {"attribute": [
                    {"attrName": "Company", "attrValue": "Marketo1001"}, {"attrName": "Phone", "attrValue": "650-555-1001"}]}},
            ]},
            dedupEnabled=True, _soapheaders=zeep.headers(),
        )  # fmt: skip
        # syncMObjects, PHP prepareUpdateProgramRequest: Program 1970's cost 153, revised
        revised = {"attrType": "Cost", "attrList": _attribs(Month="2013-06", Amount="2000", Id="153")}
        replies["update_program"] = service.syncMObjects(
            mObjectList={"mObject": [{"type": "Program", "id": 1970, "typeAttribList": {"typeAttrib": [revised]}}]},
            operation="UPDATE", _soapheaders=zeep.headers(),
        )  # fmt: skip
        # syncMObjects, PHP prepareCreateOpptyRequest: an Opportunity by attributes alone (Opportunity 64)
        replies["create_oppty"] = service.syncMObjects(
            mObjectList={"mObject": [{"type": "Opportunity",
                                      "attribList": _attribs(Name="Q1 2014", Amount="2000", Probability="80%")}]},
            operation="INSERT", _soapheaders=zeep.headers(),
        )  # fmt: skip
        # syncMObjects, PHP prepareCreateOpptyPersonRoleRequest: lead 19 in Opportunity 64
        replies["create_role"] = service.syncMObjects(
            mObjectList={"mObject": [{"type": "OpportunityPersonRole", "attribList": _attribs(
                OpportunityId="64", PersonId="19", Role="Influencer/Champion")}]},
            operation="INSERT", _soapheaders=zeep.headers(),
        )  # fmt: skip
        # The Blog: an Opportunity with its Company, and its role by associations only, in one call
        opportunity = {
            "type": "Opportunity",
            "externalKey": {"name": "opportunityId", "value": "Opportunity_5"},
            "attribList": _attribs(opportunityId="Opportunity_5", Name="Opportunity 5 for ACME", Amount="1500"),
            "associationList": {"mObjAssociation": [
                {"mObjType": "Company", "externalKey": {"name": "cAccountFSID", "value": "C123"}}]},
        }  # fmt: skip
        role = {
            "type": "OpportunityPersonRole",
            "attribList": _attribs(IsPrimary="1", Role="Marketing Manager"),
            "associationList": {"mObjAssociation": [
                {"mObjType": "Lead", "externalKey": {"name": "FSPID", "value": "12346"}},
                {"mObjType": "Opportunity", "externalKey": {"name": "opportunityId", "value": "Opportunity_5"}}]},
        }  # fmt: skip
        replies["blog"] = service.syncMObjects(
            mObjectList={"mObject": [opportunity, role]}, operation="UPSERT", _soapheaders=zeep.headers()
        )
        return replies

    replies = await asyncio.to_thread(calls)

    assert replies["java_sync_lead"]["syncStatus"]["status"] == "CREATED"
    assert replies["java_sync_lead"]["leadRecord"]["Id"] is None  # returnLead false: leadRecord nil
    assert replies["php_sync_lead"]["syncStatus"]["status"] == "UPDATED"
    assert replies["php_sync_lead"]["leadId"] == replies["java_sync_lead"]["leadId"]
    assert [s["status"] for s in replies["sync_multiple"]["syncStatus"]] == ["CREATED", "CREATED"]
    [program] = replies["update_program"]["mObjStatus"]
    assert (program["id"], program["status"]) == (1970, "UPDATED")  # the syncMObjects page's documented reply
    [oppty] = replies["create_oppty"]["mObjStatus"]
    assert (oppty["id"], oppty["status"]) == (64, "CREATED")
    [role] = replies["create_role"]["mObjStatus"]
    assert role["status"] == "CREATED", role["error"]
    assert [(m["status"], m["error"]) for m in replies["blog"]["mObjStatus"]] == [("CREATED", None), ("CREATED", None)]

    leads = {lead["Email"]: lead for lead in (await sim.admin("leads"))["leads"]}
    assert (leads["george@jungle.com"]["workspace"], leads["george@jungle.com"]["attributes"]["FirstName"]) == (
        "Default", "George"
    )  # fmt: skip
    objects = (await sim.admin("mobjects"))["mobjects"]
    roles = [o for o in objects if o["type"] == "OpportunityPersonRole"]
    assert [r["attribs"].get("PersonId") for r in roles] == ["19", str(leads["fk@example.com"]["Id"])]
    blog_opportunity = next(
        o for o in objects if o["externalKey"] == {"name": "opportunityId", "value": "Opportunity_5"}
    )
    assert roles[1]["attribs"]["OpportunityId"] == str(blog_opportunity["id"])
    assert blog_opportunity["associations"] == [
        {"mObjType": "Company", "id": None, "externalKey": {"name": "cAccountFSID", "value": "C123"}}
    ]
