"""Envelope figures: build and serialize a 300-lead x 10-attribute syncMultipleLeads; parse 300 statuses.

Each is measured against zeep, the SOAP client a user would pick, doing the same from the WSDL in the same run:
the goals are the ratios (zeep's time over ours), which hold from one machine to another where times do not.
The REST figures build the same 300 leads into a Sync Leads request (names mapped through Describe Lead's
answer) and read a 300-record reply, beside the SOAP envelope and reply measured in the same run.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
from lxml import etree
from zeep import Client

import pipeline.marketo.soap
from pipeline.marketo.rest.fields import FieldMap, parse_describe
from pipeline.marketo.rest.reply import read_sync
from pipeline.marketo.rest.request import build_request
from pipeline.marketo.rest.route import RestRouting, rest_router
from pipeline.marketo.soap.envelope import build_envelope, sync_multiple_leads_request
from pipeline.marketo.soap.namespace import MKTOWS, SOAP_ENV
from pipeline.marketo.soap.response import parse_reply
from pipeline.marketo.soap.signing import Credentials, sign_request
from pipeline.records import EventKind, Lead, Operation, Record, RestOperation
from pipeline.sim.catalog import FSP_FIELD, catalog
from pipeline.sim.soap import render_sync_multiple_leads

CREDENTIALS = Credentials("bench_user", "bench-secret")
FIELDS = ("FirstName", "LastName", "Company", "Title", "Phone", "City", "State", "Country", "Website", "LeadSource")


def sample_leads(count: int = 300, offset: int = 0) -> list[Lead]:
    """Realistic leads: 10 attributes each, a few values that need escaping."""
    return [
        Lead(
            email=f"person{n}@example{n % 97}.com",
            attributes=tuple(
                (name, f"{name} value {n}" if (n + i) % 25 else f'R&D <{n}> "quoted"') for i, name in enumerate(FIELDS)
            ),
        )
        for n in range(offset, offset + count)
    ]


def _median_ms(action: Callable[[], object], repeat: int) -> float:
    for _ in range(5):
        action()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def _naive_lxml(leads: list[Lead]) -> bytes:
    """The straightforward tree of SubElement calls, for comparison."""
    envelope = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"SOAP-ENV": SOAP_ENV, "ns1": MKTOWS})
    body = etree.SubElement(envelope, f"{{{SOAP_ENV}}}Body")
    params = etree.SubElement(body, f"{{{MKTOWS}}}paramsSyncMultipleLeads")
    records = etree.SubElement(params, "leadRecordList")
    for lead in leads:
        record = etree.SubElement(records, "leadRecord")
        etree.SubElement(record, "Email").text = lead.email
        attributes = etree.SubElement(record, "leadAttributeList")
        for name, value in lead.attributes:
            attribute = etree.SubElement(attributes, "attribute")
            etree.SubElement(attribute, "attrName").text = name
            etree.SubElement(attribute, "attrValue").text = value
    etree.SubElement(params, "dedupEnabled").text = "true"
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")


class Zeep:
    """zeep generated from Marketo's WSDL: the same request built, the same reply parsed, without a network."""

    def __init__(self) -> None:
        self.client = Client(str(Path(pipeline.marketo.soap.__file__).with_name("wsdl") / "mktows.wsdl"))
        self._binding: Any = self.client.service._binding  # noqa: SLF001 - zeep's public path ends in a transport
        self._operation = self._binding.get("syncMultipleLeads")

    def build(self, leads: list[Lead]) -> bytes:
        auth = sign_request(CREDENTIALS)
        header = self.client.get_element("ns0:AuthenticationHeader")(
            mktowsUserId=auth.user_id, requestSignature=auth.signature, requestTimestamp=auth.timestamp
        )
        records = [
            {
                "Email": lead.email,
                "leadAttributeList": {"attribute": [{"attrName": n, "attrValue": v} for n, v in lead.attributes]},
            }
            for lead in leads
        ]
        message = self.client.create_message(
            self.client.service,
            "syncMultipleLeads",
            leadRecordList={"leadRecord": records},
            dedupEnabled=True,
            _soapheaders=[header],
        )
        return etree.tostring(message, xml_declaration=True, encoding="UTF-8")

    def parse(self, reply: bytes) -> object:
        response = SimpleNamespace(
            status_code=200, content=reply, headers={"Content-Type": "text/xml; charset=utf-8"}, encoding="utf-8"
        )
        return self._binding.process_reply(self.client, self._operation, response)


def measure(repeat: int = 300) -> dict[str, float]:
    """Median milliseconds of each step, ours and zeep's, and the ratios the goals are stated in."""
    leads = sample_leads()
    reply = render_sync_multiple_leads([(n + 1, "CREATED", None) for n in range(300)])
    zeep = Zeep()

    def build() -> bytes:
        return build_envelope(sync_multiple_leads_request(leads, dedup_enabled=True), CREDENTIALS)

    def parse() -> object:
        return parse_reply(Operation.SYNC_MULTIPLE_LEADS, reply, expected=300)

    build_ms = _median_ms(build, repeat)
    parse_ms = _median_ms(parse, repeat)
    zeep_build_ms = _median_ms(lambda: zeep.build(leads), max(repeat // 10, 10))
    zeep_parse_ms = _median_ms(lambda: zeep.parse(reply), max(repeat // 10, 10))
    return {
        "build_300x10_ms": round(build_ms, 3),
        "parse_300_ms": round(parse_ms, 3),
        "zeep_build_300x10_ms": round(zeep_build_ms, 3),
        "zeep_parse_300_ms": round(zeep_parse_ms, 3),
        "build_vs_zeep": round(zeep_build_ms / build_ms, 1),
        "parse_vs_zeep": round(zeep_parse_ms / parse_ms, 1),
        "naive_lxml_build_300x10_ms": round(_median_ms(lambda: _naive_lxml(leads), repeat), 3),
        "envelope_bytes": len(build()),
    }


def _records(leads: list[Lead]) -> list[Record]:
    return [Record(f"email:{lead.email}", EventKind.LEAD, (), frozenset(), lead=lead) for lead in leads]


def measure_rest(soap: dict[str, float], repeat: int = 300) -> dict[str, Any]:
    """The 300 leads as a REST Sync Leads request and a 300-record reply read, against `soap` (this run's)."""
    leads = sample_leads()
    fields = FieldMap()
    fields.learn(parse_describe([f.describe() for f in catalog()]))
    routing = RestRouting(fsp_field=FSP_FIELD)
    records = _records(leads)
    route = rest_router(routing)(records[0])
    reply = orjson.dumps(
        {"requestId": "1#1", "success": True, "result": [{"id": n + 1, "status": "created"} for n in range(300)]}
    )

    def build() -> bytes:
        return build_request(route, records, fields, routing).request.body  # type: ignore[union-attr]

    def parse() -> object:
        return read_sync(reply, expected=300, operation=RestOperation.SYNC_LEADS, action=route.params[0])

    build_ms, parse_ms = _median_ms(build, repeat), _median_ms(parse, repeat)
    return {
        "build_300_ms": round(build_ms, 3),
        "parse_300_ms": round(parse_ms, 3),
        "soap_build_300x10_ms": soap["build_300x10_ms"],
        "soap_parse_300_ms": soap["parse_300_ms"],
        "build_faster_than_soap": build_ms < soap["build_300x10_ms"],
        "parse_faster_than_soap": parse_ms < soap["parse_300_ms"],
        "request_bytes": len(build()),
    }
