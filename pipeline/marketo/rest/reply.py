"""REST replies read into one `RecordOutcome` per record, in request order; response-level errors raised typed.

Marketo answers errors with HTTP 200 and `success: false` (error-codes.md); each record of a sync carries its
`status` (created, updated, skipped) and, when skipped, its `reasons`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import orjson

from pipeline.errors import PipelineError
from pipeline.marketo.rest.codes import ERROR_TEXT, response_error
from pipeline.marketo.rest.fields import FieldMap
from pipeline.records import LeadData, RecordOutcome, RecordStatus, RestOperation

_STATUSES: Final = {"created": RecordStatus.CREATED, "updated": RecordStatus.UPDATED}
_UNCHANGED: Final = RecordOutcome(RecordStatus.UPDATED)
# An object skipped because INSERT found it, or UPDATE did not: SOAP says SKIPPED for these, not FAILED.
_SKIPPED_BY_ACTION: Final = {"createOnly": frozenset({"1005", "1017"}), "updateOnly": frozenset({"1004", "1013"})}
MAX_REASON_CHARS: Final = 1000
_SHOWN_CHARS: Final = 80


class RestReplyError(PipelineError):
    """A reply that is not Marketo's JSON envelope, or does not answer the call it was sent for."""


def read_envelope(data: bytes) -> dict[str, Any]:
    """The reply's JSON object; raises the typed error of a `success: false` reply, RestReplyError for junk."""
    try:
        envelope = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        msg = f"reply is not JSON: {exc}"
        raise RestReplyError(msg) from exc
    if not isinstance(envelope, dict):
        msg = "reply is not a JSON object"
        raise RestReplyError(msg)
    success = envelope.get("success")
    if success is False:
        code, message = first_error(envelope.get("errors"))
        raise response_error(code, message)
    if success is not True:
        msg = "reply has no success flag"
        raise RestReplyError(msg)
    return envelope


def first_error(errors: object) -> tuple[str, str]:
    """The code and message of the first entry of an `errors` array (a code is a quoted integer)."""
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return _error_of(errors[0])
    msg = "reply says success: false without errors"
    raise RestReplyError(msg)


def _error_of(entry: dict[str, Any]) -> tuple[str, str]:
    """The code and message of one `errors` or `reasons` entry; anything but text or a number is no code."""
    code, message = entry.get("code"), entry.get("message")
    code_text = str(code) if isinstance(code, str | int) and not isinstance(code, bool) else "unknown"
    text = message if isinstance(message, str) else ERROR_TEXT.get(code_text, "error")
    return code_text, text[:MAX_REASON_CHARS]


def _result(envelope: dict[str, Any], expected: int) -> list[Any]:
    result = envelope.get("result")
    if result is None and expected == 0:
        return []
    if not isinstance(result, list):
        msg = "reply has no result array"
        raise RestReplyError(msg)
    if len(result) != expected:
        msg = f"reply has {len(result)} results for {expected} records"
        raise RestReplyError(msg)
    return result


def _reasons(item: dict[str, Any]) -> tuple[str | None, str]:
    reasons = item.get("reasons")
    if not isinstance(reasons, list) or not reasons:
        return None, "skipped without a reason"
    code, _ = first_error(reasons)
    # Only text goes into the message: a reply may nest a value deeper than repr() can go.
    messages = [": ".join(_error_of(r)) for r in reasons if isinstance(r, dict)]
    return code, "; ".join(messages)[:MAX_REASON_CHARS]


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _outcome(item: object, skipped_as: frozenset[str]) -> RecordOutcome:
    if not isinstance(item, dict):
        msg = "a result is not an object"
        raise RestReplyError(msg)
    given = item.get("status")
    if given is not None and not isinstance(given, str):  # a list or an object cannot even be looked up
        msg = "a result's status is not text"
        raise RestReplyError(msg)
    status = _STATUSES.get(given) if given is not None else None
    guid = item.get("marketoGUID")
    guid = guid if isinstance(guid, str) and guid else None
    if status is not None:
        return RecordOutcome(status, _int_or_none(item.get("id")), guid=guid)
    if given not in {"skipped", None}:
        msg = f"unknown status {given[:_SHOWN_CHARS]!r}"
        raise RestReplyError(msg)
    code, message = _reasons(item)
    final = RecordStatus.SKIPPED if code in skipped_as else RecordStatus.FAILED
    return RecordOutcome(final, _int_or_none(item.get("id")), error=message, error_code=code, guid=guid)


def _in_order(result: list[Any]) -> list[Any]:
    """Opportunity replies number their records (`seq`): put them back in request order when they do."""
    if result and all(isinstance(item, dict) and type(item.get("seq")) is int for item in result):
        ordered = sorted(result, key=lambda item: item["seq"])
        if [item["seq"] for item in ordered] == list(range(len(ordered))):
            return ordered
        msg = "reply's seq numbers do not match the records"
        raise RestReplyError(msg)
    return result


def read_sync(data: bytes, *, expected: int, operation: RestOperation, action: str) -> list[RecordOutcome]:
    """One outcome per record of a Sync Leads, Opportunities or Roles call, in request order."""
    result = _in_order(_result(read_envelope(data), expected))
    clean = _all_done(result)
    if clean is not None:
        return clean
    skipped_as = frozenset() if operation is RestOperation.SYNC_LEADS else _SKIPPED_BY_ACTION.get(action, frozenset())
    return [_outcome(item, skipped_as) for item in result]


def _all_done(result: list[Any]) -> list[RecordOutcome] | None:
    """The common reply in one pass: each record created or updated, with its id and nothing else; else None."""
    outcomes = []
    statuses = _STATUSES
    for item in result:
        if type(item) is not dict or len(item) != 2:  # noqa: PLR2004 - {"id", "status"}
            return None
        given, lead_id = item.get("status"), item.get("id")
        if type(given) is not str or type(lead_id) is not int or lead_id <= 0:  # a list cannot even be looked up
            return None
        status = statuses.get(given)
        if status is None:
            return None
        outcomes.append(RecordOutcome(status, lead_id))
    return outcomes


def read_done(data: bytes, *, expected: int) -> list[RecordOutcome]:
    """A call that answers only success (Associate Lead) or one object (Update Program): UPDATED for each record."""
    envelope = read_envelope(data)
    result = envelope.get("result")
    program_id = None
    if isinstance(result, list) and result and isinstance(result[0], dict):
        program_id = _int_or_none(result[0].get("id"))
    return [RecordOutcome(RecordStatus.UPDATED, mobject_id=program_id) for _ in range(expected)]


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError as exc:  # nested deeper than a JSON writer goes
        msg = f"a returned field cannot be shown: {exc}"
        raise RestReplyError(msg) from exc


def lead_data(item: dict[str, Any], fields: FieldMap, fsp_field: str | None) -> LeadData:
    """A returned lead in the shape SOAP's leadRecord gives results: Id, Email, ForeignSysPersonId, attributes."""
    attributes = {
        fields.soap_name(name): _text(value)
        for name, value in item.items()
        if name not in {"id", "email", fsp_field, "seq"}
    }
    return {
        "Id": _int_or_none(item.get("id")),
        "Email": _text(item.get("email")),
        "ForeignSysPersonId": _text(item.get(fsp_field)) if fsp_field else None,
        "ForeignSysType": None,
        "attributes": attributes,
    }


def read_leads(data: bytes, lead_ids: Sequence[int], fields: FieldMap, fsp_field: str | None) -> list[RecordOutcome]:
    """Get Leads by id: one outcome per id asked, holding the lead Marketo returned (None when it found none)."""
    result = read_envelope(data).get("result")
    if not isinstance(result, list):
        msg = "reply has no result array"
        raise RestReplyError(msg)
    found = {item["id"]: item for item in result if isinstance(item, dict) and _int_or_none(item.get("id"))}
    return [
        _UNCHANGED
        if (item := found.get(lead_id)) is None
        else RecordOutcome(RecordStatus.UPDATED, lead_id, lead=lead_data(item, fields, fsp_field))
        for lead_id in lead_ids
    ]


def read_describe(data: bytes) -> object:
    """Describe Lead's `result`: the fields (parsed by `fields.parse_describe`)."""
    return read_envelope(data).get("result")
