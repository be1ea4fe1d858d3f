"""Every recorded or documented Marketo envelope in tests/fixtures/marketo, each with what it must yield."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree

from pipeline.marketo.soap.document import ResponseError
from pipeline.marketo.soap.fault import AccessFaultError, RejectedFaultError
from pipeline.marketo.soap.response import parse_reply
from pipeline.marketo.soap.schema import envelope_schema
from pipeline.records import Operation
from pipeline.sim.soap import parse_request

FIXTURES = Path(__file__).parents[3] / "fixtures" / "marketo"
SMS, SL, SMO = Operation.SYNC_MULTIPLE_LEADS, Operation.SYNC_LEAD, Operation.SYNC_MOBJECTS

REQUESTS = {
    "adobedocs__syncLead_request_by_Email_returnLead_false.xml": (SL, 1),
    "adobedocs__syncMObjects_request_Program_Cost_UPDATE.xml": (SMO, 1),
    "adobedocs__syncMultipleLeads_request_2_leads_dedupEnabled_true.xml": (SMS, 2),
}
# Requests real clients sent that the WSDL's schema refuses as they are, and Marketo answered all the same: it
# ignores the elements it does not declare (here a lower-case foreignSysPersonId).
UNDERSTOOD_AS_MARKETO_READS = {
    "markety__syncLead_request_lowercase_foreignSysPersonId_with_MktowsContextHeader.xml": (SL, 1),
}
REPLIES = {
    "adobedocs__syncLead_response_UPDATED_leadRecord_nil.xml": (SL, [(1089965, "UPDATED")]),
    "adobedocs__syncMObjects_response_UPDATED.xml": (SMO, [(1970, "UPDATED")]),
    "adobedocs__syncMultipleLeads_response_2_UPDATED.xml": (SMS, [(1090240, "UPDATED"), (1090239, "UPDATED")]),
    "markety__syncLead_CREATED_with_MktowsContextHeader__response.xml": (SL, [(1001064, "CREATED")]),
    "markety__syncMultipleLeads_response_1_UPDATED.xml": (SMS, [(1090240, "UPDATED")]),
    "markety__syncMultipleLeads_response_2_UPDATED.xml": (SMS, [(1090240, "UPDATED"), (1090239, "UPDATED")]),
    "rapleaf__syncLead_response_CREATED_returnLead_true.xml": (SL, [(12345, "CREATED")]),
    "rapleaf__syncLead_response_UPDATED_returnLead_true.xml": (SL, [(12345, "UPDATED")]),
}
FAULTS = {
    "adobedocs__fault_20014_authentication_failed.xml": (AccessFaultError, "20014"),
    "markety__syncLead_fault_20105_unknown_lead_field__response.xml": (RejectedFaultError, "20105"),
    "markety__syncCustomObjects_fault_20110_input_error.xml": (RejectedFaultError, "20110"),
    "markety__getLead_fault_20103_lead_not_found__request_and_response.txt": (RejectedFaultError, "20103"),
}
# Replies to calls the pipeline never makes: refused as replies to ours, not misread.
OTHER_OPERATIONS = {
    "markety__syncCustomObjects_response_per_record_FAILED_with_error_text.xml",
    "markety__listOperation_2_4_http_log_with_headers_status200.txt",
}
# Published with documentation-conversion damage (namespace URIs in angle brackets): not well-formed XML.
NOT_WELL_FORMED = {
    "adobedocs-blog__syncLead_response_UPDATED.as-published.txt",
    "adobedocs-blog__syncMObjects_response_OpportunityPersonRole_CREATED.as-published.txt",
    "adobedocs-blog__syncMObjects_response_Opportunity_CREATED_with_externalKey.as-published.txt",
    "adobedocs-blog__syncMObjects_response_two_CREATED.as-published.txt",
    "adobedocs-blog__syncMultipleLeads_response_2_UPDATED.as-published.txt",
}


def _last_envelope(name: str) -> bytes:
    """The response part of a file that logs a request and its response (the whole file otherwise)."""
    text = (FIXTURES / name).read_bytes()
    start = text.rfind(b"<?xml")
    return text[max(start, 0) :]


def test_every_fixture_has_an_expectation() -> None:
    files = {path.name for path in FIXTURES.iterdir() if path.name != "SOURCES.md"}
    expected = set(REQUESTS) | set(UNDERSTOOD_AS_MARKETO_READS) | set(REPLIES) | set(FAULTS)
    expected |= OTHER_OPERATIONS | NOT_WELL_FORMED
    assert files == expected


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_documented_requests_are_schema_valid_and_understood(name: str, fixture_bytes: Callable[[str], bytes]) -> None:
    data = fixture_bytes(name)
    assert envelope_schema().validate(etree.fromstring(data)), envelope_schema().error_log
    operation, records = REQUESTS[name]
    call = parse_request(data)
    assert (call.operation, call.records) == (operation, records)


@pytest.mark.parametrize("name", sorted(UNDERSTOOD_AS_MARKETO_READS))
def test_recorded_requests_with_undeclared_elements_are_understood(
    name: str, fixture_bytes: Callable[[str], bytes]
) -> None:
    data = fixture_bytes(name)
    assert not envelope_schema().validate(etree.fromstring(data))  # strict validation would refuse it
    operation, records = UNDERSTOOD_AS_MARKETO_READS[name]
    call = parse_request(data)
    assert (call.operation, call.records) == (operation, records)


@pytest.mark.parametrize("name", sorted(REPLIES))
def test_documented_and_recorded_replies_parse(name: str, fixture_bytes: Callable[[str], bytes]) -> None:
    data = fixture_bytes(name)
    assert envelope_schema().validate(etree.fromstring(data)), envelope_schema().error_log
    operation, expected = REPLIES[name]
    outcomes = parse_reply(operation, data, expected=len(expected))
    assert [(o.lead_id or o.mobject_id, o.status.value) for o in outcomes] == expected


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_recorded_faults_are_classified_by_code(name: str) -> None:
    error_type, code = FAULTS[name]
    with pytest.raises(error_type) as caught:
        parse_reply(SL, _last_envelope(name), expected=1)
    assert caught.value.fault.code == code  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", sorted(OTHER_OPERATIONS))
def test_replies_to_other_operations_are_refused(name: str) -> None:
    for operation in Operation:
        with pytest.raises(ResponseError, match="carries"):
            parse_reply(operation, _last_envelope(name), expected=1)


@pytest.mark.parametrize("name", sorted(NOT_WELL_FORMED))
def test_damaged_published_examples_are_refused_clearly(name: str, fixture_bytes: Callable[[str], bytes]) -> None:
    with pytest.raises(ResponseError, match="malformed XML"):
        parse_reply(SMO, fixture_bytes(name), expected=1)
