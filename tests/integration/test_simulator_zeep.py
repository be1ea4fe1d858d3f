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
