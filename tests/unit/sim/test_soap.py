from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from pipeline.marketo.soap.envelope import build_envelope, sync_lead_request, sync_mobjects_request
from pipeline.marketo.soap.response import parse_reply
from pipeline.marketo.soap.schema import envelope_schema
from pipeline.marketo.soap.signing import Credentials
from pipeline.records import Attrib, Lead, MObject, Operation, RecordStatus, SyncOperation
from pipeline.sim.mobjects import MObjectOutcome
from pipeline.sim.soap import (
    SoapFaultError,
    parse_request,
    render_fault,
    render_sync_lead,
    render_sync_mobjects,
    render_sync_multiple_leads,
)

# Another client's spelling: different prefixes, a default namespace on the body element, blanks.
FOREIGN_ENVELOPE = b"""<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">
  <soap:Header>
    <m:AuthenticationHeader xmlns:m="http://www.marketo.com/mktows/">
      <mktowsUserId>u</mktowsUserId><requestSignature>s</requestSignature>
      <requestTimestamp>2026-01-01T00:00:00+00:00</requestTimestamp>
    </m:AuthenticationHeader>
  </soap:Header>
  <soap:Body>
    <paramsSyncMultipleLeads xmlns="http://www.marketo.com/mktows/" xmlns:x="http://www.w3.org/2001/XMLSchema-instance">
      <leadRecordList xmlns="">
        <leadRecord><Id x:nil="true"/><Email>a@example.com</Email>
          <leadAttributeList><attribute><attrName>FirstName</attrName><attrValue>A &amp; B</attrValue></attribute></leadAttributeList>
        </leadRecord>
        <leadRecord><ForeignSysPersonId>SF-1</ForeignSysPersonId><ForeignSysType>SFDC</ForeignSysType></leadRecord>
      </leadRecordList>
      <dedupEnabled xmlns="">false</dedupEnabled>
    </paramsSyncMultipleLeads>
  </soap:Body>
</soap:Envelope>"""


def assert_valid(reply: bytes) -> None:
    schema = envelope_schema()
    assert schema.validate(etree.fromstring(reply)), schema.error_log


def test_any_prefixes_are_understood() -> None:
    call = parse_request(FOREIGN_ENVELOPE)
    assert call.operation is Operation.SYNC_MULTIPLE_LEADS
    assert call.auth is not None
    assert call.auth.user_id == "u"
    assert call.dedup is False
    first, second = call.leads
    assert (first.id, first.email, first.attributes) == (None, "a@example.com", (("FirstName", "A & B"),))
    assert (second.foreign_sys_person_id, second.foreign_sys_type) == ("SF-1", "SFDC")


def test_our_own_sync_lead_and_mobjects_requests_parse() -> None:
    credentials = Credentials("u", "k")
    lead = Lead(email="a@example.com", cookie="c-1")
    call = parse_request(build_envelope(sync_lead_request(lead, return_lead=True, workspace="EMEA"), credentials))
    assert (call.operation, call.cookie, call.workspace, call.return_lead) == (Operation.SYNC_LEAD, "c-1", "EMEA", True)
    mobject = MObject(type="Opportunity", external_key=Attrib("ExtId", "O-1"), attribs=(Attrib("Name", "N"),))
    call = parse_request(build_envelope(sync_mobjects_request([mobject], operation=SyncOperation.INSERT), credentials))
    assert call.mobject_operation == "INSERT"
    assert call.mobjects[0].external_key == ("ExtId", "O-1")


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"not xml", "20012"),
        (b"<a/>", "20012"),
        (FOREIGN_ENVELOPE.replace(b"paramsSyncMultipleLeads", b"paramsGetLead"), "20019"),
        (FOREIGN_ENVELOPE.replace(b"<Email>a@example.com</Email>", b"<Id>x</Id>"), "20017"),
        # qualified, leadRecordList is not the WSDL's (unqualified) element: ignored, so the required one is missing
        (FOREIGN_ENVELOPE.replace(b'<leadRecordList xmlns="">', b"<leadRecordList>"), "20017"),
        (FOREIGN_ENVELOPE.replace(b'<dedupEnabled xmlns="">false', b'<dedupEnabled xmlns="">maybe'), "20017"),
    ],
)
def test_requests_that_cannot_be_served_get_the_right_fault(data: bytes, code: str) -> None:
    with pytest.raises(SoapFaultError) as caught:
        parse_request(data)
    assert caught.value.code == code


RECORDED = Path(__file__).parents[2] / "fixtures" / "marketo"


def test_elements_the_wsdl_does_not_declare_are_ignored_as_marketo_ignores_them() -> None:
    # A request a real client sent: a lower-case foreignSysPersonId beside Email (not the WSDL's ForeignSysPersonId),
    # attrType inside attributes, and Marketo answered CREATED with the element ignored.
    data = (
        RECORDED / "markety__syncLead_request_lowercase_foreignSysPersonId_with_MktowsContextHeader.xml"
    ).read_bytes()
    call = parse_request(data)
    assert (call.operation, call.workspace, call.return_lead) == (Operation.SYNC_LEAD, "Futures Institute", True)
    [lead] = call.leads
    assert (lead.email, lead.foreign_sys_person_id, lead.foreign_sys_type) == ("spiderman@example.com", None, None)
    assert lead.attributes == (("FirstName", "Peter"), ("LastName", "Parker"))


def test_unknown_elements_anywhere_are_set_aside_and_declared_ones_read_in_any_order() -> None:
    data = (
        FOREIGN_ENVELOPE.replace(b"<dedupEnabled", b"<bogus><Email>hidden@example.com</Email></bogus><dedupEnabled")
        .replace(b"<requestTimestamp>", b"<client>zeep</client><requestTimestamp>")
        .replace(
            b"<attrName>FirstName</attrName><attrValue>A &amp; B</attrValue>",
            b"<attrValue2/><attrValue>A &amp; B</attrValue><attrName>FirstName</attrName>",
        )
        .replace(b"<Email>a@example.com</Email>", b"<Nickname>A</Nickname><Email>a@example.com</Email>")
        .replace(b"<leadRecord><ForeignSysPersonId>", b'<leadRecord source="crm"><ForeignSysPersonId>')
        # declared children out of the WSDL's order: the type before the id, a value before its name
        .replace(
            b"<ForeignSysPersonId>SF-1</ForeignSysPersonId><ForeignSysType>SFDC</ForeignSysType>",
            b"<ForeignSysType>SFDC</ForeignSysType><ForeignSysPersonId>SF-1</ForeignSysPersonId>",
        )
    )
    call = parse_request(data)
    assert call.auth is not None
    assert call.auth.timestamp == "2026-01-01T00:00:00+00:00"
    assert call.dedup is False
    first, second = call.leads
    assert (first.email, first.attributes) == ("a@example.com", (("FirstName", "A & B"),))
    assert (second.foreign_sys_person_id, second.foreign_sys_type) == ("SF-1", "SFDC")
    assert "hidden@example.com" not in {lead.email for lead in call.leads}


@pytest.mark.parametrize(
    "context",
    [
        b"<targetWorkspace>EMEA</targetWorkspace><targetWorkspace>Sales</targetWorkspace>",
        b"<workspace>EMEA</workspace>",
    ],
)
def test_a_context_header_without_one_target_workspace_is_an_invalid_request(context: bytes) -> None:
    data = build_envelope(
        sync_lead_request(Lead(email="a@x.com"), return_lead=False, workspace="EMEA"), Credentials("u", "k")
    )
    bad = data.replace(b"<targetWorkspace>EMEA</targetWorkspace>", context)
    assert bad != data
    with pytest.raises(SoapFaultError) as caught:
        parse_request(bad)
    assert caught.value.code == "20017"


def test_what_marketo_reads_is_still_checked_once_unknown_elements_are_set_aside() -> None:
    credentials = Credentials("u", "k")
    no_flag = build_envelope(sync_lead_request(Lead(email="a@example.com"), return_lead=False), credentials).replace(
        b"<returnLead>false</returnLead>", b"<returnlead>false</returnlead>"
    )
    with pytest.raises(SoapFaultError) as caught:
        parse_request(no_flag)  # returnLead is required (the WSDL and the seed); a misspelt one is no returnLead
    assert caught.value.code == "20017"


def test_replies_are_valid_and_read_back() -> None:
    many = render_sync_multiple_leads([(1, "CREATED", None), (0, "FAILED", "Lead not found: Id 9 (20103)")])
    assert_valid(many)
    assert [o.status for o in parse_reply(Operation.SYNC_MULTIPLE_LEADS, many, expected=2)] == [
        RecordStatus.CREATED,
        RecordStatus.FAILED,
    ]
    lead = {
        "Id": 3,
        "Email": None,
        "ForeignSysPersonId": "F<&>",
        "ForeignSysType": "CUSTOM",
        "attributes": {"A": "]]>"},
    }
    single = render_sync_lead(3, "UPDATED", None, lead)
    assert_valid(single)
    [outcome] = parse_reply(Operation.SYNC_LEAD, single, expected=1)
    assert outcome.lead == {**lead, "attributes": {"A": "]]>"}}
    assert_valid(render_sync_lead(3, "CREATED", None, None))
    objects = render_sync_mobjects([MObjectOutcome("CREATED", 4, ("k", "v")), MObjectOutcome("FAILED", 0, None, "bad")])
    assert_valid(objects)
    assert parse_reply(Operation.SYNC_MOBJECTS, objects, expected=2)[1].error == "bad"


@pytest.mark.parametrize("code", ["20014", "20023", "20105", "10001"])
def test_faults_are_valid_and_carry_the_code(code: str) -> None:
    reply = render_fault(code, SoapFaultError(code).message)
    assert_valid(reply)
    with pytest.raises(Exception) as caught:  # noqa: PT011 - the type depends on the code's class
        parse_reply(Operation.SYNC_LEAD, reply, expected=1)
    assert caught.value.fault.code == code  # type: ignore[attr-defined]
