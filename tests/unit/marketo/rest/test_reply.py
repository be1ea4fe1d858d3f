from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import PermanentError, PipelineError, RetryableError
from pipeline.marketo.day import seconds_to_next_day
from pipeline.marketo.rest.codes import (
    ERROR_TEXT,
    NOT_COUNTED,
    CodeKind,
    QuotaSpentError,
    RestAccessError,
    RestRejectedError,
    RestTransientError,
    TokenRefusedError,
    classify_code,
    code_label,
    response_error,
)
from pipeline.marketo.rest.fields import FieldMap, LeadField
from pipeline.marketo.rest.reply import (
    MAX_REASON_CHARS,
    RestReplyError,
    first_error,
    read_describe,
    read_done,
    read_envelope,
    read_leads,
    read_sync,
)
from pipeline.records import RecordOutcome, RecordStatus, RestOperation

LEADS = RestOperation.SYNC_LEADS
OPPORTUNITIES = RestOperation.SYNC_OPPORTUNITIES
ROLES = RestOperation.SYNC_OPPORTUNITY_ROLES


def envelope(result: Any = None, **extra: Any) -> bytes:
    payload: dict[str, Any] = {"requestId": "e42b#14272d07d78", "success": True, **extra}
    if result is not None:
        payload["result"] = result
    return orjson.dumps(payload)


def refused(code: Any, message: Any = "said so") -> bytes:
    return orjson.dumps({"requestId": "e42b#1", "success": False, "errors": [{"code": code, "message": message}]})


def skipped(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {**extra, "status": "skipped", "reasons": [{"code": code, "message": message}]}


# --- per-record outcomes -----------------------------------------------------------------------------------------


def test_the_documented_sync_leads_reply_reads_in_request_order() -> None:
    reply = envelope(
        [{"id": 50, "status": "created"}, {"id": 51, "status": "updated"}, skipped("1005", "Lead already exists")]
    )
    assert read_sync(reply, expected=3, operation=LEADS, action="createOnly") == [
        RecordOutcome(RecordStatus.CREATED, 50),
        RecordOutcome(RecordStatus.UPDATED, 51),
        RecordOutcome(RecordStatus.FAILED, error="1005: Lead already exists", error_code="1005"),
    ]


@pytest.mark.parametrize("action", ["createOnly", "updateOnly", "createOrUpdate", "createDuplicate"])
@pytest.mark.parametrize("code", ["1004", "1005", "1006", "1007"])
def test_a_skipped_lead_fails_whatever_the_action(action: str, code: str) -> None:
    # SOAP has no createOnly nor updateOnly for leads: a lead Marketo did not write has failed.
    [outcome] = read_sync(envelope([skipped(code, ERROR_TEXT[code])]), expected=1, operation=LEADS, action=action)
    assert (outcome.status, outcome.error_code) == (RecordStatus.FAILED, code)


def test_every_reason_is_kept_and_the_first_code_is_the_records() -> None:
    item = {"status": "skipped", "reasons": [{"code": "1006", "message": "Field 'a' not found"}, {"code": "1003"}]}
    [outcome] = read_sync(envelope([item]), expected=1, operation=LEADS, action="createOrUpdate")
    assert (outcome.error_code, outcome.error) == ("1006", "1006: Field 'a' not found; 1003: Invalid data")


@pytest.mark.parametrize("item", [{"status": "skipped"}, {"status": "skipped", "reasons": []}, {}])
def test_a_skip_without_reasons_fails_saying_so(item: dict[str, Any]) -> None:
    [outcome] = read_sync(envelope([item]), expected=1, operation=LEADS, action="createOrUpdate")
    assert (outcome.status, outcome.error_code, outcome.error) == (
        RecordStatus.FAILED,
        None,
        "skipped without a reason",
    )


def test_a_long_reason_is_cut() -> None:
    [outcome] = read_sync(envelope([skipped("1003", "x" * 5000)]), expected=1, operation=LEADS, action="createOnly")
    assert outcome.error is not None
    assert len(outcome.error) == MAX_REASON_CHARS


def test_an_id_that_is_not_a_positive_integer_is_no_id() -> None:
    items = [{"id": v, "status": "created"} for v in (0, -1, True, "7", 1.5, None, 2**40)]
    outcomes = read_sync(envelope(items), expected=7, operation=LEADS, action="createOrUpdate")
    assert [o.lead_id for o in outcomes] == [None, None, None, None, None, None, 2**40]


@pytest.mark.parametrize(
    ("action", "code", "status"),
    [
        ("createOnly", "1017", RecordStatus.SKIPPED),  # INSERT found the object: SOAP says SKIPPED
        ("createOnly", "1005", RecordStatus.SKIPPED),
        ("updateOnly", "1013", RecordStatus.SKIPPED),  # UPDATE did not find it
        ("updateOnly", "1004", RecordStatus.SKIPPED),
        ("createOrUpdate", "1013", RecordStatus.FAILED),
        ("createOnly", "1013", RecordStatus.FAILED),
        ("updateOnly", "1017", RecordStatus.FAILED),
        ("updateOnly", "1003", RecordStatus.FAILED),
    ],
)
@pytest.mark.parametrize("operation", [OPPORTUNITIES, ROLES])
def test_an_object_skipped_by_its_action_is_skipped_anything_else_failed(
    operation: RestOperation, action: str, code: str, status: RecordStatus
) -> None:
    [outcome] = read_sync(envelope([skipped(code, "no", seq=0)]), expected=1, operation=operation, action=action)
    assert (outcome.status, outcome.error_code) == (status, code)


def test_object_replies_are_put_back_in_order_by_seq() -> None:
    reply = envelope(
        [
            {"seq": 2, "status": "created", "marketoGUID": "g-2"},
            {"seq": 0, "status": "updated", "marketoGUID": "g-0"},
            skipped("1003", "name must not be null", seq=1),
        ]
    )
    outcomes = read_sync(reply, expected=3, operation=OPPORTUNITIES, action="createOrUpdate")
    assert [(o.status, o.guid) for o in outcomes] == [
        (RecordStatus.UPDATED, "g-0"),
        (RecordStatus.FAILED, None),
        (RecordStatus.CREATED, "g-2"),
    ]


@pytest.mark.parametrize("seqs", [[0, 2], [1, 1], [1, 2], [-1, 0]])
def test_seq_numbers_that_do_not_number_the_records_are_refused(seqs: list[int]) -> None:
    reply = envelope([{"seq": seq, "status": "created"} for seq in seqs])
    with pytest.raises(RestReplyError, match="seq"):
        read_sync(reply, expected=2, operation=OPPORTUNITIES, action="createOrUpdate")


# --- whole replies that are not what the call asked for ----------------------------------------------------------

HOSTILE = [
    b"",
    b"not json",
    b'{"success": true, "result": [',  # cut off
    b"[]",
    b'"success"',
    b"null",
    b"1e400",  # a number no double holds
    b'{"requestId": "1", "result": []}',  # no success flag
    b'{"success": "true", "result": []}',
    b'{"success": 1, "result": []}',
    b'{"success": false}',  # an error without errors
    b'{"success": false, "errors": []}',
    b'{"success": false, "errors": ["601"]}',
    b'{"success": true}',
    b'{"success": true, "result": {"id": 1}}',
    b'{"success": true, "result": []}',  # too few
    b'{"success": true, "result": [{"status": "created"}, {"status": "created"}]}',  # too many
    b'{"success": true, "result": [1]}',
    b'{"success": true, "result": [null]}',
    b'{"success": true, "result": [[{"status": "created"}]]}',
    b'{"success": true, "result": [{"status": "deleted"}]}',
    b'{"success": true, "result": [{"status": ["created"]}]}',
    b'{"success": true, "result": [{"status": {"a": 1}}]}',
    b'{"success": true, "result": [{"status": 1e300}]}',
    b'{"success": true, "result": [{"id": 5, "status": ["created"]}]}',  # shaped as the common reply, but not
    b'{"success": true, "result": [{"id": 5, "status": {"created": 1}}]}',
    b'{"success": true, "result": [{"id": 5, "status": "deleted"}]}',
    b'{"success": true, "result": [{"status": "skipped", "reasons": [7]}]}',
    b'{"success": true, "result": [{"status": "skipped", "reasons": [[{"code": "1004"}]]}]}',
    b"\xff\xfe{}",
]


@pytest.mark.parametrize("reply", HOSTILE)
def test_a_reply_that_does_not_answer_the_call_is_a_reply_error(reply: bytes) -> None:
    with pytest.raises(RestReplyError):
        read_sync(reply, expected=1, operation=LEADS, action="createOrUpdate")


DEEP = "<deep>"  # stands for a value nested as deep as a JSON reader takes, which no JSON writer here writes


def deep(data: bytes, depth: int = 1000) -> bytes:
    return data.replace(orjson.dumps(DEEP), b"[" * depth + b'"x"' + b"]" * depth)


@pytest.mark.parametrize(
    "item",
    [
        {"status": DEEP},
        {"status": "skipped", "reasons": [{"code": "1004", "message": DEEP}]},
        {"status": "skipped", "reasons": [{"code": DEEP, "message": "m"}]},
        {"status": "skipped", "reasons": [{"code": "1004", "message": {"a": DEEP}}]},
        {"status": "created", "id": DEEP, "marketoGUID": DEEP},
        {"status": "created", "seq": DEEP},
    ],
)
@pytest.mark.parametrize("operation", [LEADS, OPPORTUNITIES])
def test_deeply_nested_junk_gives_an_outcome_or_a_reply_error(item: dict[str, Any], operation: RestOperation) -> None:
    try:
        outcomes = read_sync(deep(envelope([item])), expected=1, operation=operation, action="createOnly")
    except RestReplyError:
        return
    [outcome] = outcomes
    assert outcome.error is None or len(outcome.error) <= MAX_REASON_CHARS


def test_huge_numbers_are_no_ids() -> None:
    reply = b'{"success": true, "result": [{"id": 123456789012345678901234567890, "status": "created"}]}'
    assert read_sync(reply, expected=1, operation=LEADS, action="createOrUpdate") == [
        RecordOutcome(RecordStatus.CREATED)
    ]


def test_a_call_without_records_may_answer_without_result() -> None:
    assert read_sync(envelope(), expected=0, operation=LEADS, action="createOrUpdate") == []
    with pytest.raises(RestReplyError):
        read_sync(envelope(), expected=1, operation=LEADS, action="createOrUpdate")


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
REASON = st.fixed_dictionaries(
    {}, optional={"code": st.sampled_from(["1004", "1005", "1013", "1017", 1005]) | JSON, "message": JSON}
)
ITEM = (
    st.fixed_dictionaries(
        {},
        optional={
            "status": st.sampled_from(["created", "updated", "skipped"]) | JSON,
            "id": st.integers(-5, 2**31) | JSON,
            "seq": st.integers(-1, 3) | JSON,
            "marketoGUID": st.text(max_size=8) | JSON,
            "reasons": st.lists(REASON | JSON, max_size=3) | JSON,
        },
    )
    | JSON
)
ENVELOPE = (
    st.fixed_dictionaries(
        {"success": st.sampled_from([True, False]) | JSON},
        optional={"result": st.lists(ITEM, max_size=4) | JSON, "errors": st.lists(REASON | JSON, max_size=2) | JSON},
    )
    | JSON
)


@settings(deadline=None)  # timings are for make bench, not for a pass/fail test
@given(
    ENVELOPE,
    st.integers(0, 4),
    st.sampled_from([LEADS, OPPORTUNITIES, ROLES]),
    st.sampled_from(["createOnly", "updateOnly", "createOrUpdate", "createDuplicate"]),
)
def test_any_json_reply_gives_one_outcome_per_record_or_a_typed_error(
    value: Any, expected: int, operation: RestOperation, action: str
) -> None:
    data = orjson.dumps(value)
    refusal: PipelineError | None = None
    try:
        outcomes = read_sync(data, expected=expected, operation=operation, action=action)
    except RestReplyError:
        return
    except PipelineError as exc:
        refusal = exc
    if refusal is not None:  # Marketo said no to the call: the error of its first code, nothing else
        assert isinstance(value, dict)
        assert value.get("success") is False
        assert type(refusal) is type(response_error(*first_error(value.get("errors"))))
        return
    assert len(outcomes) == expected
    assert all(isinstance(o, RecordOutcome) and o.status is not RecordStatus.UNCHANGED for o in outcomes)


# --- follow-ups: Associate Lead, Update Program, Get Leads, Describe ---------------------------------------------


def test_a_call_that_answers_only_success_updates_its_records() -> None:
    assert read_done(envelope(), expected=1) == [RecordOutcome(RecordStatus.UPDATED)]
    assert read_done(envelope([{"id": 1042, "name": "Spring"}]), expected=1) == [
        RecordOutcome(RecordStatus.UPDATED, mobject_id=1042)
    ]
    with pytest.raises(RestRejectedError):
        read_done(refused("1012", "Invalid cookie value"), expected=1)
    with pytest.raises(RestReplyError):
        read_done(b"[]", expected=1)


def field_map() -> FieldMap:
    fields = FieldMap()
    fields.learn([LeadField("firstName", "FirstName"), LeadField("externalPersonId", "externalPersonId")])
    return fields


def test_returned_leads_read_back_in_the_shape_soap_gives_them() -> None:
    reply = envelope(
        [
            {"id": 7, "email": "b@x.com", "firstName": "Bea", "externalPersonId": "SF-7", "score": 12, "vip": True},
            {"id": 5, "email": "a@x.com", "firstName": None},
        ]
    )
    five, missing, seven = read_leads(reply, [5, 6, 7], field_map(), "externalPersonId")
    assert five == RecordOutcome(
        RecordStatus.UPDATED,
        5,
        lead={
            "Id": 5,
            "Email": "a@x.com",
            "ForeignSysPersonId": None,
            "ForeignSysType": None,
            "attributes": {"FirstName": None},
        },
    )
    assert missing == RecordOutcome(RecordStatus.UPDATED)  # Marketo returned nothing for it: it was synced still
    assert seven.lead == {
        "Id": 7,
        "Email": "b@x.com",
        "ForeignSysPersonId": "SF-7",
        "ForeignSysType": None,
        "attributes": {"FirstName": "Bea", "score": "12", "vip": "true"},
    }


@pytest.mark.parametrize(
    "result",
    [
        [{"id": [1]}],
        [{"id": {"a": 1}}],
        [{"id": 5, "firstName": DEEP}],
        [{"id": 5, "email": DEEP}],
        [{"id": 5, "deep": {"a": DEEP}}],
        [7, None, "x"],
    ],
)
def test_junk_in_returned_leads_gives_outcomes_or_a_reply_error(result: list[Any]) -> None:
    try:
        outcomes = read_leads(deep(envelope(result)), [5], field_map(), None)
    except RestReplyError:
        return
    assert len(outcomes) == 1


def test_get_leads_without_a_result_array_is_a_reply_error() -> None:
    with pytest.raises(RestReplyError):
        read_leads(envelope(), [5], field_map(), None)


def test_describe_hands_back_its_result() -> None:
    assert read_describe(envelope([{"id": 1, "rest": {"name": "email"}}])) == [{"id": 1, "rest": {"name": "email"}}]
    with pytest.raises(RestTransientError):
        read_describe(refused("611", "System error"))


# --- response-level codes ----------------------------------------------------------------------------------------


def test_not_counted_is_exactly_the_codes_adobe_marks() -> None:
    # error-codes.md: "An API call that returns this response code is not counted against your daily quota, or
    # your rate limit" (the starred codes).
    assert frozenset({"601", "602", "604", "605", "608", "611"}) == NOT_COUNTED


@pytest.mark.parametrize("code", ["601", "602"])
def test_a_refused_token_is_renewed_at_once_and_is_no_attempt(code: str) -> None:
    with pytest.raises(TokenRefusedError) as caught:
        read_envelope(refused(code, ERROR_TEXT[code]))
    error = caught.value
    assert (error.code, error.counted, error.counts_as_attempt, error.retry_after_s) == (code, False, False, 0.0)
    assert (error.reason, error.pauses_sending) == (f"rest_{code}", False)
    assert ERROR_TEXT[code] in str(error)
    assert classify_code(code) is CodeKind.TOKEN


def test_access_denied_pauses_sending() -> None:
    with pytest.raises(RestAccessError) as caught:
        read_envelope(refused("603", "Access denied"))
    error = caught.value
    assert type(error) is RestAccessError
    assert (error.code, error.counted, error.pauses_sending, error.reason) == ("603", True, True, "access_denied")
    assert error.counts_as_attempt


@pytest.mark.parametrize(
    ("code", "counted"),
    [("604", False), ("608", False), ("611", False), ("713", True), ("606", True), ("615", True), ("614", True)],
)
def test_passing_trouble_and_limits_back_off_and_retry(code: str, counted: bool) -> None:  # noqa: FBT001
    with pytest.raises(RestTransientError) as caught:
        read_envelope(refused(code))
    error = caught.value
    assert (error.code, error.counted, error.reason) == (code, counted, f"rest_{code}")
    assert (error.pauses_sending, error.counts_as_attempt, error.retry_after_s) == (False, True, None)
    assert isinstance(error, RetryableError)
    assert classify_code(code) is CodeKind.TRANSIENT


def test_the_daily_quota_pauses_until_midnight_in_chicago() -> None:
    with pytest.raises(QuotaSpentError) as caught:
        read_envelope(refused("607", "Daily quota reached"))
    error = caught.value
    assert (error.code, error.reason, error.pauses_sending, error.counted) == ("607", "quota", True, True)
    assert error.retry_after_s is not None
    assert abs(error.retry_after_s - seconds_to_next_day()) < 5
    assert 0 < error.retry_after_s <= 25 * 3600  # a day, or the 25 hours of the autumn change


@pytest.mark.parametrize(
    ("now", "left_s"),
    [
        (datetime(2026, 1, 15, 5, 0, tzinfo=UTC), 3600.0),  # 23:00 CST: an hour, though it is 05:00 in UTC
        (datetime(2026, 7, 15, 4, 30, tzinfo=UTC), 1800.0),  # 23:30 CDT
        (datetime(2026, 1, 15, 6, 0, tzinfo=UTC), 24 * 3600.0),  # Chicago's midnight: a whole day to the next
    ],
)
def test_marketos_day_turns_at_midnight_in_chicago(now: datetime, left_s: float) -> None:
    assert seconds_to_next_day(now) == left_s


@pytest.mark.parametrize(
    "code", ["605", "609", "610", "612", "613", "701", "702", "709", "1001", "1003", "1006", "1012", "1036"]
)
def test_a_request_marketo_will_never_accept_is_rejected_without_retry(code: str) -> None:
    with pytest.raises(RestRejectedError) as caught:
        read_envelope(refused(code))
    error = caught.value
    assert isinstance(error, PermanentError)
    assert (error.code, error.splits, error.counted) == (code, False, code not in NOT_COUNTED)
    assert classify_code(code) is CodeKind.REJECTED


@pytest.mark.parametrize("code", [None, "799", "500", "unknown", "60", "10000"])
def test_a_code_nobody_documents_is_transient(code: str | None) -> None:
    assert classify_code(code) is CodeKind.TRANSIENT


def test_a_code_may_come_as_a_number() -> None:
    with pytest.raises(RestTransientError) as caught:
        read_envelope(refused(606, None))
    assert caught.value.code == "606"
    assert "Max rate limit exceeded" in str(caught.value)  # the table's text when Marketo gives none


@pytest.mark.parametrize("code", [True, 6.06, None, ["606"]])
def test_a_code_that_is_no_code_is_unknown_and_transient(code: Any) -> None:
    with pytest.raises(RestTransientError) as caught:
        read_envelope(refused(code))
    assert caught.value.code == "unknown"


def test_a_long_error_message_is_cut() -> None:
    with pytest.raises(RestTransientError) as caught:
        read_envelope(refused("611", "y" * 5000))
    assert str(caught.value).count("y") == MAX_REASON_CHARS


def test_metric_labels_are_bounded_to_the_codes_the_table_knows() -> None:
    assert [code_label(c) for c in ("606", "1006", "413", "9999", "unknown", None)] == [
        "606",
        "1006",
        "413",
        "other",
        "other",
        "other",
    ]
    error = response_error("777", "what")
    assert isinstance(error, RestTransientError)
    assert error.reason == "rest_other"
