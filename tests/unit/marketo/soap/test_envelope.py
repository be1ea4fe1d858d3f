from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from pipeline.marketo.soap.envelope import (
    SoapRequest,
    UnencodableRecordError,
    build_envelope,
    render_envelope,
    sync_lead_request,
    sync_mobjects_request,
    sync_multiple_leads_request,
)
from pipeline.marketo.soap.schema import envelope_schema
from pipeline.marketo.soap.signing import AuthHeader, Credentials, verify_signature
from pipeline.records import (
    Association,
    Attrib,
    ForeignSysType,
    Lead,
    MObject,
    Operation,
    SyncOperation,
    TypeAttrib,
)
from tests.unit.marketo.soap._xml import body_of, canonical

DOC_USER = "demo17_1_809934544BFABAE58E5D27"
CREDENTIALS = Credentials("user_1", "secret")
MKTOWS = "{http://www.marketo.com/mktows/}"
HEADER = "{http://schemas.xmlsoap.org/soap/envelope/}Header"

# Every character XML 1.0 can carry, weighted toward the awkward ones.
XML_TEXT = st.lists(
    st.one_of(
        st.sampled_from(["&", "<", ">", '"', "'", "\r", "\r\n", "\t", "]]>", "&amp;", "\U0001f600", "\ufffd", "é"]),
        st.characters(exclude_categories=["Cs"], exclude_characters="\x00\ufffe\uffff", min_codepoint=0x20),
    ),
    max_size=40,
).map("".join)


def _signed(request: SoapRequest) -> bytes:
    return build_envelope(request, CREDENTIALS)


def assert_valid(envelope: bytes) -> None:
    schema = envelope_schema()
    document = etree.fromstring(envelope)
    assert schema.validate(document), schema.error_log


def test_sync_multiple_leads_matches_marketo_documented_request(fixture_bytes: Callable[[str], bytes]) -> None:
    leads = [
        Lead(email=f"em{n}@etestd.marketo.net", attributes=(("Company", f"Marketo{n}"), ("Phone", f"650-555-{n}")))
        for n in (1000, 1001)
    ]
    auth = AuthHeader(DOC_USER, "2013-08-01T18:22:30-07:00", "b5e21953ae9f1b263e644da5eccce9ff33802513")
    built = render_envelope(sync_multiple_leads_request(leads, dedup_enabled=True), auth)
    expected = fixture_bytes("adobedocs__syncMultipleLeads_request_2_leads_dedupEnabled_true.xml")
    assert canonical(built) == canonical(expected)


def test_sync_lead_matches_marketo_documented_request(fixture_bytes: Callable[[str], bytes]) -> None:
    lead = Lead(email="t@t.com", attributes=(("FirstName", "George"), ("LastName", "of the Jungle")))
    auth = AuthHeader(
        "bigcorp1_461839624B16E06BA2D663", "2013-07-31T12:38:47-07:00", "92f05a7be4838ae1c0e5aafe814891ee72968a08"
    )
    built = render_envelope(sync_lead_request(lead, return_lead=False), auth)
    expected = fixture_bytes("adobedocs__syncLead_request_by_Email_returnLead_false.xml")
    assert canonical(built) == canonical(expected)


def test_sync_mobjects_matches_marketo_documented_request(fixture_bytes: Callable[[str], bytes]) -> None:
    program = MObject(
        type="Program",
        id=1970,
        type_attribs=(TypeAttrib("Cost", (Attrib("Month", "2013-06"), Attrib("Amount", "2000"), Attrib("Id", "153"))),),
    )
    auth = AuthHeader(DOC_USER, "2013-08-05T14:22:45-07:00", "40e6d89bd2f7f0daaddaf150ce7a7ca49788ffe7")
    built = render_envelope(sync_mobjects_request([program], operation=SyncOperation.UPDATE), auth)
    expected = fixture_bytes("adobedocs__syncMObjects_request_Program_Cost_UPDATE.xml")
    assert canonical(built) == canonical(expected)


def test_lead_children_follow_wsdl_order_and_are_unqualified() -> None:
    lead = Lead(
        id=7,
        email="a@example.com",
        foreign_sys_person_id="SF-1",
        foreign_sys_type=ForeignSysType.SFDC,
        attributes=(("FirstName", "Ada"),),
    )
    record = body_of(_signed(sync_multiple_leads_request([lead], dedup_enabled=False))).find(
        "leadRecordList/leadRecord"
    )
    assert record is not None
    assert [child.tag for child in record] == [
        "Id",
        "Email",
        "ForeignSysPersonId",
        "ForeignSysType",
        "leadAttributeList",
    ]


def test_sync_lead_carries_cookie_workspace_and_return_lead() -> None:
    lead = Lead(email="a@example.com", cookie="id:561-HYG-937&token:_mch-x")
    envelope = _signed(sync_lead_request(lead, return_lead=True, workspace="EMEA"))
    assert_valid(envelope)
    params = body_of(envelope)
    assert [child.tag for child in params] == ["leadRecord", "returnLead", "marketoCookie"]
    assert params.findtext("returnLead") == "true"
    assert params.findtext("marketoCookie") == "id:561-HYG-937&token:_mch-x"
    header = etree.fromstring(envelope).find(HEADER)
    assert header is not None
    assert header.findtext(f"{MKTOWS}MktowsContextHeader/targetWorkspace") == "EMEA"


def test_only_sync_lead_has_a_context_header() -> None:
    envelope = _signed(sync_multiple_leads_request([Lead(email="a@example.com")], dedup_enabled=True))
    header = etree.fromstring(envelope).find(HEADER)
    assert header is not None
    assert header.find(f"{MKTOWS}MktowsContextHeader") is None


def test_every_envelope_is_freshly_signed() -> None:
    envelope = _signed(sync_multiple_leads_request([Lead(email="a@example.com")], dedup_enabled=True))
    header = etree.fromstring(envelope).find(f"{HEADER}/{MKTOWS}AuthenticationHeader")
    assert header is not None
    auth = AuthHeader(
        header.findtext("mktowsUserId") or "",
        header.findtext("requestTimestamp") or "",
        header.findtext("requestSignature") or "",
    )
    assert auth.user_id == "user_1"
    assert verify_signature("secret", auth)


def test_mobjects_with_every_part_validate() -> None:
    opportunity = MObject(
        type="Opportunity",
        external_key=Attrib("ExtId", "OPP-9"),
        attribs=(Attrib("Name", "Q1 renewal"), Attrib("Amount", "2000")),
        associations=(
            Association("Company", external_key=Attrib("ExtCo", "C-1")),
            Association("Lead", id=42),
        ),
    )
    program = MObject(type="Program", id=1, type_attribs=(TypeAttrib("Tag", (Attrib("Type", "Region"),)),))
    envelope = _signed(sync_mobjects_request([opportunity, program], operation=SyncOperation.UPSERT))
    assert_valid(envelope)
    mobject = body_of(envelope).find("mObjectList/mObject")
    assert mobject is not None
    assert [child.tag for child in mobject] == ["type", "externalKey", "attribList", "associationList"]


@pytest.mark.parametrize("count", [0, 301])
def test_sync_multiple_leads_refuses_a_wrong_batch_size(count: int) -> None:
    with pytest.raises(ValueError, match="1 to 300"):
        sync_multiple_leads_request([Lead(email="a@example.com")] * count, dedup_enabled=True)


def test_sync_mobjects_refuses_more_than_100() -> None:
    with pytest.raises(ValueError, match="1 to 100"):
        sync_mobjects_request([MObject(type="Opportunity")] * 101, operation=SyncOperation.INSERT)


def test_a_cookie_cannot_ride_in_sync_multiple_leads() -> None:
    with pytest.raises(ValueError, match="record 1: syncMultipleLeads cannot carry a Marketo cookie"):
        sync_multiple_leads_request([Lead(email="a@example.com"), Lead(cookie="c")], dedup_enabled=True)


@pytest.mark.parametrize("bad", ["\x00", "\x1b[31m", "\x0c", "\ud800", "\ufffe"])
def test_a_control_character_fails_only_its_record_with_a_clear_message(bad: str) -> None:
    leads = [Lead(email="a@example.com"), Lead(email="b@example.com", attributes=(("Notes", f"x{bad}y"),))]
    with pytest.raises(UnencodableRecordError) as caught:
        sync_multiple_leads_request(leads, dedup_enabled=True)
    assert caught.value.index == 1
    assert caught.value.field == "Notes"
    assert f"U+{ord(bad[0]):04X}" in str(caught.value)


def test_a_control_character_in_an_mobject_names_its_record() -> None:
    objects = [MObject(type="Opportunity"), MObject(type="Opportunity", attribs=(Attrib("Name", "a\x01"),))]
    with pytest.raises(UnencodableRecordError) as caught:
        sync_mobjects_request(objects, operation=SyncOperation.UPSERT)
    assert caught.value.index == 1


def test_a_control_character_in_a_sync_lead_cookie_or_workspace_is_refused() -> None:
    with pytest.raises(UnencodableRecordError, match="marketoCookie"):
        sync_lead_request(Lead(cookie="\x02"), return_lead=False)
    with pytest.raises(UnencodableRecordError, match="workspace"):
        sync_lead_request(Lead(email="a@example.com"), return_lead=False, workspace="\x02")


def test_very_long_values_stay_intact() -> None:
    value = "é" * 100_000 + "]]>" + "\U0001f600" * 1000
    envelope = _signed(
        sync_multiple_leads_request([Lead(email="a@example.com", attributes=(("Bio", value),))], dedup_enabled=True)
    )
    assert_valid(envelope)
    assert body_of(envelope).findtext("leadRecordList/leadRecord/leadAttributeList/attribute/attrValue") == value


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    email=XML_TEXT,
    fsp=st.none() | XML_TEXT,
    attributes=st.lists(st.tuples(XML_TEXT.filter(bool), XML_TEXT), max_size=6),
    lead_id=st.none() | st.integers(min_value=1, max_value=2**31 - 1),
)
def test_hostile_lead_values_round_trip_through_a_valid_envelope(
    email: str, fsp: str | None, attributes: list[tuple[str, str]], lead_id: int | None
) -> None:
    lead = Lead(
        id=lead_id,
        email=email,
        foreign_sys_person_id=fsp,
        foreign_sys_type=ForeignSysType.CUSTOM if fsp is not None else None,
        attributes=tuple(attributes),
    )
    envelope = _signed(sync_multiple_leads_request([lead], dedup_enabled=True))
    assert_valid(envelope)
    record = body_of(envelope).find("leadRecordList/leadRecord")
    assert record is not None
    assert (record.findtext("Email") or "") == email
    assert (record.findtext("ForeignSysPersonId") if fsp is not None else None) == (fsp if fsp is None else fsp or "")
    parsed = [(a.findtext("attrName") or "", a.findtext("attrValue") or "") for a in record.iter("attribute")]
    assert parsed == attributes


@settings(max_examples=100, deadline=None)
@given(cookie=XML_TEXT, workspace=XML_TEXT, name=XML_TEXT, value=XML_TEXT)
def test_hostile_sync_lead_and_mobject_values_round_trip(cookie: str, workspace: str, name: str, value: str) -> None:
    envelope = _signed(sync_lead_request(Lead(cookie=cookie), return_lead=False, workspace=workspace))
    assert_valid(envelope)
    assert (body_of(envelope).findtext("marketoCookie") or "") == cookie
    mobject = MObject(type=name, external_key=Attrib(name, value), attribs=(Attrib(name, value),))
    envelope = _signed(sync_mobjects_request([mobject], operation=SyncOperation.INSERT))
    assert_valid(envelope)
    assert (body_of(envelope).findtext("mObjectList/mObject/attribList/attrib/value") or "") == value


def test_request_knows_its_operation_and_size() -> None:
    request = sync_multiple_leads_request([Lead(email="a@example.com")] * 3, dedup_enabled=True)
    assert request.operation is Operation.SYNC_MULTIPLE_LEADS
    assert request.records == 3
