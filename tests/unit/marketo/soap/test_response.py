from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.errors import PermanentError, RetryableError
from pipeline.marketo.soap.document import ResponseError
from pipeline.marketo.soap.fault import (
    AccessFaultError,
    Fault,
    FaultKind,
    RejectedFaultError,
    RequestExpiredError,
    TransientFaultError,
)
from pipeline.marketo.soap.response import parse_reply
from pipeline.records import Attrib, Operation, RecordStatus

SMS, SL, SMO = Operation.SYNC_MULTIPLE_LEADS, Operation.SYNC_LEAD, Operation.SYNC_MOBJECTS
ENV = '<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ns1="http://www.marketo.com/mktows/">'


def _statuses(count: int, status: str = "UPDATED") -> bytes:
    items = "".join(
        f"<syncStatus><leadId>{n}</leadId><status>{status}</status></syncStatus>" for n in range(1, count + 1)
    )
    body = f"<ns1:successSyncMultipleLeads><result><syncStatusList>{items}</syncStatusList></result></ns1:successSyncMultipleLeads>"
    return f"{ENV}<SOAP-ENV:Body>{body}</SOAP-ENV:Body></SOAP-ENV:Envelope>".encode()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("adobedocs__syncMultipleLeads_response_2_UPDATED.xml", [(1090240, "UPDATED"), (1090239, "UPDATED")]),
        ("markety__syncMultipleLeads_response_1_UPDATED.xml", [(1090240, "UPDATED")]),
    ],
)
def test_sync_multiple_leads_fixtures(
    fixture_bytes: Callable[[str], bytes], name: str, expected: list[tuple[int, str]]
) -> None:
    outcomes = parse_reply(SMS, fixture_bytes(name), expected=len(expected))
    assert [(o.lead_id, o.status.value) for o in outcomes] == expected
    assert all(o.error is None for o in outcomes)


def test_sync_lead_fixture_without_lead_record(fixture_bytes: Callable[[str], bytes]) -> None:
    [outcome] = parse_reply(SL, fixture_bytes("adobedocs__syncLead_response_UPDATED_leadRecord_nil.xml"), expected=1)
    assert (outcome.lead_id, outcome.status, outcome.lead) == (1089965, RecordStatus.UPDATED, None)


@pytest.mark.parametrize(
    ("name", "status", "lead_id", "email", "website"),
    [
        ("rapleaf__syncLead_response_CREATED_returnLead_true.xml", "CREATED", 12345, "some@email.com", "initech.com"),
        ("rapleaf__syncLead_response_UPDATED_returnLead_true.xml", "UPDATED", 12345, "some@email.com", None),
        (
            "markety__syncLead_CREATED_with_MktowsContextHeader__response.xml",
            "CREATED",
            1001064,
            "spiderman@example.com",
            "example.com",
        ),
    ],
)
def test_sync_lead_fixtures_with_the_returned_lead(
    fixture_bytes: Callable[[str], bytes], name: str, status: str, lead_id: int, email: str, website: str | None
) -> None:
    [outcome] = parse_reply(SL, fixture_bytes(name), expected=1)
    assert outcome.status.value == status
    assert outcome.lead_id == lead_id
    assert outcome.lead is not None
    assert outcome.lead["Id"] == lead_id
    assert outcome.lead["Email"] == email
    assert outcome.lead["ForeignSysPersonId"] is None
    attributes = outcome.lead["attributes"]
    assert isinstance(attributes, dict)
    if website is not None:
        assert attributes["Website"] == website


def test_sync_mobjects_fixture(fixture_bytes: Callable[[str], bytes]) -> None:
    [outcome] = parse_reply(SMO, fixture_bytes("adobedocs__syncMObjects_response_UPDATED.xml"), expected=1)
    assert (outcome.mobject_id, outcome.status) == (1970, RecordStatus.UPDATED)


def test_mobject_statuses_carry_external_keys_and_errors() -> None:
    body = (
        "<ns1:successSyncMObjects><result><mObjStatusList>"
        "<mObjStatus><id>40</id><externalKey><name>opportunityId</name><value>Opportunity_4</value></externalKey>"
        "<status>CREATED</status></mObjStatus>"
        "<mObjStatus><id>0</id><status>FAILED</status><error>Program supports the UPDATE operation only</error></mObjStatus>"
        "<mObjStatus><id>41</id><status>UNCHANGED</status></mObjStatus>"
        "<mObjStatus><id>0</id><status>SKIPPED</status></mObjStatus>"
        "</mObjStatusList></result></ns1:successSyncMObjects>"
    )
    data = f"{ENV}<SOAP-ENV:Body>{body}</SOAP-ENV:Body></SOAP-ENV:Envelope>".encode()
    outcomes = parse_reply(SMO, data, expected=4)
    assert outcomes[0].external_key == Attrib("opportunityId", "Opportunity_4")
    assert outcomes[0].mobject_id == 40
    assert (outcomes[1].status, outcomes[1].mobject_id) == (RecordStatus.FAILED, None)
    assert outcomes[1].error == "Program supports the UPDATE operation only"
    assert [o.status.value for o in outcomes[2:]] == ["UNCHANGED", "SKIPPED"]


def test_a_nil_mobject_id_and_a_deleted_status_are_read_not_refused() -> None:
    # Later API versions make mObjStatus/id nillable (a FAILED object has none), and DELETED is in the WSDL's
    # MObjStatusEnum. Neither may fail the whole reply (it would be retried until its records exhaust retries).
    body = (
        "<ns1:successSyncMObjects><result><mObjStatusList>"
        '<mObjStatus><id xsi:nil="true"/><status>FAILED</status><error>Opportunity not found</error></mObjStatus>'
        "<mObjStatus><id>41</id><status>DELETED</status></mObjStatus>"
        "<mObjStatus><id/><status>SKIPPED</status></mObjStatus>"
        "</mObjStatusList></result></ns1:successSyncMObjects>"
    )
    envelope = ENV.replace(
        "<SOAP-ENV:Envelope ", '<SOAP-ENV:Envelope xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    )
    data = f"{envelope}<SOAP-ENV:Body>{body}</SOAP-ENV:Body></SOAP-ENV:Envelope>".encode()
    failed, deleted, skipped = parse_reply(SMO, data, expected=3)
    assert (failed.status, failed.mobject_id, failed.error) == (RecordStatus.FAILED, None, "Opportunity not found")
    # DELETED: the object is gone, not synced as the event asked: the record fails, with Marketo's word for it
    assert (deleted.status, deleted.mobject_id) == (RecordStatus.FAILED, 41)
    assert deleted.error == "Marketo answered DELETED: the object was deleted, not synced"
    assert (skipped.status, skipped.mobject_id) == (RecordStatus.SKIPPED, None)


def test_per_record_failure_keeps_its_text_and_code() -> None:
    body = (
        "<ns1:successSyncMultipleLeads><result><syncStatusList>"
        "<syncStatus><leadId>1</leadId><status>CREATED</status><error xsi:nil='true' "
        "xmlns:xsi='http://www.w3.org/2001/XMLSchema-instance'/></syncStatus>"
        "<syncStatus><leadId>0</leadId><status>FAILED</status><error>Lead not found: Id 9 (20103)</error></syncStatus>"
        "</syncStatusList></result></ns1:successSyncMultipleLeads>"
    )
    outcomes = parse_reply(SMS, f"{ENV}<SOAP-ENV:Body>{body}</SOAP-ENV:Body></SOAP-ENV:Envelope>".encode(), expected=2)
    assert outcomes[0].error is None
    assert (outcomes[1].status, outcomes[1].lead_id, outcomes[1].error_code) == (RecordStatus.FAILED, None, "20103")


@pytest.mark.parametrize(
    ("name", "error_type", "code", "kind"),
    [
        ("adobedocs__fault_20014_authentication_failed.xml", AccessFaultError, "20014", FaultKind.ACCESS),
        (
            "markety__syncLead_fault_20105_unknown_lead_field__response.xml",
            RejectedFaultError,
            "20105",
            FaultKind.REJECTED,
        ),
        ("markety__syncCustomObjects_fault_20110_input_error.xml", RejectedFaultError, "20110", FaultKind.REJECTED),
    ],
)
def test_fault_fixtures_raise_classified_errors(
    fixture_bytes: Callable[[str], bytes], name: str, error_type: type[Exception], code: str, kind: FaultKind
) -> None:
    with pytest.raises(error_type) as caught:
        parse_reply(SL, fixture_bytes(name), expected=1)
    fault = caught.value.fault  # type: ignore[attr-defined]
    assert fault.code == code
    assert fault.kind is kind


def test_the_recorded_getlead_fault_is_read_from_its_response_part() -> None:
    text = (
        Path(__file__).parents[3]
        / "fixtures/marketo/markety__getLead_fault_20103_lead_not_found__request_and_response.txt"
    ).read_text()
    response = text[text.rindex("<?xml") :] if "<?xml" in text else text[text.rindex("<SOAP-ENV:Envelope") :]
    with pytest.raises(RejectedFaultError) as caught:
        parse_reply(SL, response.encode(), expected=1)
    assert caught.value.fault.code == "20103"


@pytest.mark.parametrize(
    ("code", "error_type", "base"),
    [
        ("10001", TransientFaultError, RetryableError),
        ("20011", TransientFaultError, RetryableError),
        ("20016", TransientFaultError, RetryableError),
        ("20023", TransientFaultError, RetryableError),
        ("20024", TransientFaultError, RetryableError),
        ("20013", AccessFaultError, RetryableError),
        ("20014", AccessFaultError, RetryableError),
        ("20015", AccessFaultError, RetryableError),
        ("20012", RejectedFaultError, PermanentError),
        ("20017", RejectedFaultError, PermanentError),
        ("20105", RejectedFaultError, PermanentError),
        ("20114", RejectedFaultError, PermanentError),
        ("29999", TransientFaultError, RetryableError),
    ],
)
def test_fault_codes_carry_their_policy(code: str, error_type: type[Exception], base: type[Exception]) -> None:
    fault = (
        f"<SOAP-ENV:Fault><faultcode>SOAP-ENV:Client</faultcode><faultstring>{code} - x</faultstring><detail>"
        f"<ns1:serviceException><name>mktServiceException</name><message>m ({code})</message><code>{code}</code>"
        "</ns1:serviceException></detail></SOAP-ENV:Fault>"
    )
    with pytest.raises(error_type) as caught:
        parse_reply(SMS, f"{ENV}<SOAP-ENV:Body>{fault}</SOAP-ENV:Body></SOAP-ENV:Envelope>".encode(), expected=1)
    assert isinstance(caught.value, base)
    assert caught.value.fault.code == code  # type: ignore[attr-defined]


def test_request_expired_is_retried_with_the_usual_backoff_not_at_once() -> None:
    fault = "<SOAP-ENV:Fault><faultcode>SOAP-ENV:Client</faultcode><faultstring>20016 - Request expired</faultstring></SOAP-ENV:Fault>"
    with pytest.raises(RequestExpiredError) as caught:
        parse_reply(SMS, f"{ENV}<SOAP-ENV:Body>{fault}</SOAP-ENV:Body></SOAP-ENV:Envelope>".encode(), expected=1)
    assert caught.value.fault.code == "20016"  # read from the faultstring when there is no detail
    assert caught.value.retry_after_s is None  # a skewed clock would otherwise spend the budget in milliseconds


@pytest.mark.parametrize(("code", "label"), [("20023", "fault_20023"), ("77777", "fault_other"), (None, "fault_other")])
def test_the_retry_label_of_a_fault_is_bounded_to_the_codes_known(code: str | None, label: str) -> None:
    assert TransientFaultError(Fault(code, "x")).reason == label


XXE_FILE = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body>&xxe;</SOAP-ENV:Body></SOAP-ENV:Envelope>"""
BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<lolz>&lol9;</lolz>"""
EXTERNAL_DTD = b'<?xml version="1.0"?><!DOCTYPE r SYSTEM "http://127.0.0.1:9/evil.dtd"><r/>'
UTF16_XXE = (
    XXE_FILE.replace(b'<?xml version="1.0"?>', b'<?xml version="1.0" encoding="UTF-16"?>').decode().encode("utf-16")
)
UNDECLARED_ENTITY = f"{ENV}<SOAP-ENV:Body>&xxe;</SOAP-ENV:Body></SOAP-ENV:Envelope>".encode()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (XXE_FILE, "DTD"),
        (BILLION_LAUGHS, "DTD"),
        (EXTERNAL_DTD, "DTD"),
        (UTF16_XXE, "DTD"),
        (UNDECLARED_ENTITY, "malformed"),
        (_statuses(3)[:-40], "malformed"),
        (b"", "malformed"),
        (b"<html><body>502 Bad Gateway</body></html>", "not a SOAP 1.1 Envelope"),
        (f"{ENV}<SOAP-ENV:Body/></SOAP-ENV:Envelope>".encode(), "empty or missing Body"),
        (_statuses(2), "2 statuses for 3 records"),
        (_statuses(4), "4 statuses for 3 records"),
        (_statuses(3, "MAYBE"), "unknown status"),
        (_statuses(3).replace(b"<leadId>2</leadId>", b"<leadId>two</leadId>"), "not an integer"),
        (_statuses(3).replace(b"successSyncMultipleLeads", b"successSyncLead"), "carries"),
        # As many leadIds as statuses, but one record has two and another none: never paired up wrongly.
        (
            _statuses(3)
            .replace(b"<leadId>2</leadId>", b"")
            .replace(b"<leadId>3</leadId>", b"<leadId>3</leadId><leadId>4</leadId>"),
            "lacks <leadId>",
        ),
        (_statuses(3).replace(b"<leadId>2</leadId>", b"<leadId></leadId>"), "lacks <leadId>"),
    ],
)
def test_hostile_or_broken_replies_are_refused_clearly(data: bytes, message: str) -> None:
    started = time.monotonic()
    with pytest.raises(ResponseError, match=message):
        parse_reply(SMS, data, expected=3)
    assert time.monotonic() - started < 5, "a hostile reply must not hang the parser"


def test_an_xxe_reply_never_reads_the_file() -> None:
    with pytest.raises(ResponseError) as caught:
        parse_reply(SMS, XXE_FILE, expected=1)
    assert "root:" not in str(caught.value)


def test_replies_over_the_size_cap_are_refused_before_parsing() -> None:
    with pytest.raises(ResponseError, match="exceeds the 1000-byte cap"):
        parse_reply(SMS, _statuses(300), expected=300, max_bytes=1000)


def test_a_malformed_reply_is_retryable() -> None:
    with pytest.raises(RetryableError):
        parse_reply(SMS, b"<truncated", expected=1)


def test_three_hundred_statuses_parse_in_order() -> None:
    outcomes = parse_reply(SMS, _statuses(300, "CREATED"), expected=300)
    assert [o.lead_id for o in outcomes] == list(range(1, 301))
