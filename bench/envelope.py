"""Envelope figures: build and serialize a 300-lead x 10-attribute syncMultipleLeads; parse 300 statuses."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from lxml import etree

from pipeline.marketo.envelope import build_envelope, sync_multiple_leads_request
from pipeline.marketo.namespace import MKTOWS, SOAP_ENV
from pipeline.marketo.response import parse_reply
from pipeline.marketo.signing import Credentials
from pipeline.records import Lead, Operation
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


def measure(repeat: int = 300) -> dict[str, float]:
    """Median milliseconds of each step."""
    leads = sample_leads()
    reply = render_sync_multiple_leads([(n + 1, "CREATED", None) for n in range(300)])

    def build() -> bytes:
        return build_envelope(sync_multiple_leads_request(leads, dedup_enabled=True), CREDENTIALS)

    def parse() -> object:
        return parse_reply(Operation.SYNC_MULTIPLE_LEADS, reply, expected=300)

    return {
        "build_300x10_ms": round(_median_ms(build, repeat), 3),
        "naive_lxml_build_300x10_ms": round(_median_ms(lambda: _naive_lxml(leads), repeat), 3),
        "parse_300_ms": round(_median_ms(parse, repeat), 3),
        "envelope_bytes": len(build()),
    }
