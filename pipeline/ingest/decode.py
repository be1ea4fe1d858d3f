"""Input messages -> events (DESIGN 2.1). Pure: every bad input becomes an InvalidEvent with a clear reason."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Annotated, Any, Final, Literal

import msgspec
import orjson
import structlog
from msgspec import Meta, Struct, field

from pipeline.errors import describe_exception
from pipeline.identity import lead_names, mobject_key
from pipeline.records import (
    Association,
    Attrib,
    DeadLetterReason,
    Event,
    ForeignSysType,
    InvalidEvent,
    Lead,
    LeadChange,
    MObject,
    MObjectChange,
    RawMessage,
    SyncOperation,
    TypeAttrib,
)
from pipeline.xmltext import find_unencodable

log = structlog.get_logger()

MAX_EVENT_BYTES: Final = 1024 * 1024
SCHEMA_VERSION: Final = 1  # of the event schema this decoder reads: schemas/v1/lead-event.schema.json
SCHEMA_REGISTRY_HEADER: Final = 5  # magic byte 0, then the schema id (4 bytes, big-endian)
MAX_VALUE_CHARS: Final = 65_536
MAX_ATTRIBUTES: Final = 1000
MAX_INT: Final = 2**31 - 1  # Marketo ids are xs:int
MOBJECT_TYPES: Final = frozenset({"Program", "Opportunity", "OpportunityPersonRole"})
_TYPE_ATTRIB_REQUIRED: Final = {"Cost": ("Month", "Amount"), "Tag": ("Type", "Value")}
_FOREIGN_SYS_TYPES: Final = {member.value: member for member in ForeignSysType}
_SYNC_OPERATIONS: Final = {member.value: member for member in SyncOperation}
_SHOWN_CHARS: Final = 80


class EventError(ValueError):
    """The event breaks the input contract; the message says where."""


def shown(value: object) -> str:
    """A value as an error message may quote it: a short JSON rendering, never the whole of a huge or deep one."""
    if isinstance(value, str | int | float | bool) or value is None:
        text = repr(value)
        return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."
    size = len(value) if isinstance(value, list | dict) else 0
    return f"{type(value).__name__} of {size} entries" if size else f"an empty {type(value).__name__}"


def _text(value: object, where: str, *, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise EventError(f"{where} is required")
        return None
    if not isinstance(value, str):
        raise EventError(f"{where} must be a string, not {type(value).__name__}")
    if len(value) > MAX_VALUE_CHARS:
        raise EventError(f"{where} is longer than {MAX_VALUE_CHARS} characters")
    return value  # characters XML cannot carry are looked for once per event: see _check_characters


def _nonempty(value: object, where: str) -> str | None:
    text = _text(value, where)
    return text or None


def _int_id(value: object, where: str) -> int | None:
    if value is None:
        return None
    if type(value) is float and value.is_integer():  # JSON has numbers, not integers: 42.0 is 42
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_INT:
        raise EventError(f"{where} must be a positive 32-bit integer, got {shown(value)}")
    return value


def render_value(value: object, where: str) -> str:
    """An attribute value as Marketo receives it: strings as they are, numbers and booleans as JSON writes them."""
    if type(value) is str:
        if len(value) > MAX_VALUE_CHARS:
            raise EventError(f"{where} is longer than {MAX_VALUE_CHARS} characters")
        return value
    if value is None:
        return ""  # null clears the field
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return orjson.dumps(value).decode()
    raise EventError(f"{where} must be a string, number, boolean or null, not {type(value).__name__}")


def _attributes(value: object, where: str) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if type(value) is not dict:
        raise EventError(f"{where} must be an object")
    if len(value) > MAX_ATTRIBUTES:
        raise EventError(f"{where} has more than {MAX_ATTRIBUTES} entries")
    pairs = []
    for name, item in value.items():
        if not name or len(name) > MAX_VALUE_CHARS:
            raise EventError(f"{where} has an empty or overlong name")
        kind = type(item)
        if kind is str and len(item) <= MAX_VALUE_CHARS:
            pairs.append((name, item))
        elif kind is int:  # JSON's integers render as Python writes them
            pairs.append((name, str(item)))
        else:
            pairs.append((name, render_value(item, f"{where}.{name}")))
    return tuple(pairs)


def _either(lead: Mapping[str, Any], name: str, spelling: str) -> object:
    """A lead field under its WSDL name or its lower-camel spelling; the first that is not null."""
    value = lead.get(name)
    return lead.get(spelling) if value is None else value


def _lead(body: Mapping[str, Any]) -> Lead:
    raw = body.get("lead")
    if type(raw) is not dict:
        raise EventError("lead must be an object")
    # Most leads carry an Email and perhaps a foreign id: an absent field costs no more than its lookups.
    given_id = _either(raw, "Id", "id")
    given_email = _either(raw, "Email", "email")
    given_fsp_id = _either(raw, "ForeignSysPersonId", "foreignSysPersonId")
    given_fsp_type = _either(raw, "ForeignSysType", "foreignSysType")
    given_cookie = _either(raw, "MarketoCookie", "marketoCookie")
    lead_id = None if given_id is None else _int_id(given_id, "lead.Id")
    email = None if given_email is None else _nonempty(given_email, "lead.Email")
    cookie = None if given_cookie is None else _nonempty(given_cookie, "lead.MarketoCookie")
    fsp_id = None if given_fsp_id is None else _nonempty(given_fsp_id, "lead.ForeignSysPersonId")
    fsp_type_text = None if given_fsp_type is None else _nonempty(given_fsp_type, "lead.ForeignSysType")
    fsp_type = None
    if fsp_id is not None:
        fsp_type = _FOREIGN_SYS_TYPES.get(fsp_type_text or "")
        if fsp_type is None:
            raise EventError(f"lead.ForeignSysType must be one of CUSTOM, SFDC, NETSUITE, got {shown(fsp_type_text)}")
    if lead_id is None and fsp_id is None and cookie is None and email is None:
        raise EventError("lead needs one of Id, ForeignSysPersonId, MarketoCookie, Email")
    return Lead(lead_id, email, fsp_id, fsp_type, cookie, _attributes(raw.get("attributes"), "lead.attributes"))


def _external_key(value: object, where: str) -> Attrib | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise EventError(f"{where} must be an object with name and value")
    name = _nonempty(value.get("name"), f"{where}.name")
    if name is None:
        raise EventError(f"{where}.name is required")
    return Attrib(name, render_value(value.get("value"), f"{where}.value"))


def _type_attribs(value: object) -> tuple[TypeAttrib, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise EventError("mobject.typeAttribs must be a list")
    found = []
    for index, item in enumerate(value):
        where = f"mobject.typeAttribs[{index}]"
        if not isinstance(item, dict):
            raise EventError(f"{where} must be an object")
        attr_type = item.get("attrType")
        if not isinstance(attr_type, str) or attr_type not in _TYPE_ATTRIB_REQUIRED:
            raise EventError(f"{where}.attrType must be Cost or Tag, got {shown(attr_type)}")
        pairs = _attributes(item.get("attribs"), f"{where}.attribs")
        missing = [name for name in _TYPE_ATTRIB_REQUIRED[attr_type] if name not in dict(pairs)]
        if missing:
            raise EventError(f"{where} ({attr_type}) needs {missing[0]}")
        found.append(TypeAttrib(attr_type, tuple(Attrib(n, v) for n, v in pairs)))
    return tuple(found)


def _associations(value: object) -> tuple[Association, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise EventError("mobject.associations must be a list")
    found = []
    for index, item in enumerate(value):
        where = f"mobject.associations[{index}]"
        if not isinstance(item, dict):
            raise EventError(f"{where} must be an object")
        mobj_type = _nonempty(item.get("mObjType"), f"{where}.mObjType")
        if mobj_type is None:
            raise EventError(f"{where}.mObjType is required")
        found.append(
            Association(
                mobj_type,
                _int_id(item.get("id"), f"{where}.id"),
                _external_key(item.get("externalKey"), f"{where}.externalKey"),
            )
        )
    return tuple(found)


def _mobject(body: Mapping[str, Any]) -> tuple[MObject, SyncOperation]:
    raw = body.get("mobject")
    if not isinstance(raw, dict):
        raise EventError("mobject must be an object")
    mobj_type = raw.get("type")
    if not isinstance(mobj_type, str) or mobj_type not in MOBJECT_TYPES:
        raise EventError(f"mobject.type must be one of {sorted(MOBJECT_TYPES)}, got {shown(mobj_type)}")
    operation_text = body.get("operation")
    if operation_text is None:
        operation_text = "UPSERT"
    operation = _SYNC_OPERATIONS.get(operation_text) if isinstance(operation_text, str) else None
    if operation is None:
        raise EventError(f"operation must be INSERT, UPDATE or UPSERT, got {shown(operation_text)}")
    if mobj_type == "Program" and operation is not SyncOperation.UPDATE:
        raise EventError("a Program can only be updated (operation UPDATE)")
    mobject = MObject(
        type=mobj_type,
        id=_int_id(raw.get("id"), "mobject.id"),
        external_key=_external_key(raw.get("externalKey"), "mobject.externalKey"),
        attribs=tuple(Attrib(n, v) for n, v in _attributes(raw.get("attribs"), "mobject.attribs")),
        type_attribs=_type_attribs(raw.get("typeAttribs")),
        associations=_associations(raw.get("associations")),
    )
    if mobj_type == "Program" and mobject.id is None:
        raise EventError("a Program is updated by its id: mobject.id is required")
    return mobject, operation


# --- the common lead event, read in C --------------------------------------------------------------------------
#
# Most events are a lead event with nothing but the fields below, every value of the type the contract wants.
# msgspec reads those into structs in one pass, checking types and lengths as it goes; `_plain_lead_event` then
# builds the event as `_event` would. Any event the structs do not fit (another field, a float, a value out of
# range, an object, an MObject...) is read again by `_event`, which also words the error: this path only ever
# accepts, with exactly the event `_event` makes (tests/unit/ingest/test_decode.py checks both agree). It runs
# only when `_may_hold_unencodable` is false, so neither an escape nor a character XML cannot carry is in it;
# and it forbids unknown fields, so every byte of the event is read and checked (msgspec skips an unknown
# field's value without checking its UTF-8 or its numbers, as orjson does).

_Text = Annotated[str, Meta(max_length=MAX_VALUE_CHARS)]
_Name = Annotated[str, Meta(min_length=1, max_length=MAX_VALUE_CHARS)]
_Id = Annotated[int, Meta(gt=0, le=MAX_INT)]
# orjson reads an integer as one from -2**63 to 2**64 - 1, and any other as a float (or refuses it). msgspec
# bounds to 64 signed bits: an integer above is read in full.
_Integer = Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)]
_Attributes = Annotated[dict[_Name, _Text | _Integer | bool | None], Meta(max_length=MAX_ATTRIBUTES)]


class _PlainLead(Struct, forbid_unknown_fields=True):
    # Each field under its WSDL name, then under its lower-camel spelling.
    id: _Id | None = field(default=None, name="Id")
    id_camel: _Id | None = field(default=None, name="id")
    email: _Text | None = field(default=None, name="Email")
    email_camel: _Text | None = field(default=None, name="email")
    fsp_id: _Text | None = field(default=None, name="ForeignSysPersonId")
    fsp_id_camel: _Text | None = field(default=None, name="foreignSysPersonId")
    fsp_type: _Text | None = field(default=None, name="ForeignSysType")
    fsp_type_camel: _Text | None = field(default=None, name="foreignSysType")
    cookie: _Text | None = field(default=None, name="MarketoCookie")
    cookie_camel: _Text | None = field(default=None, name="marketoCookie")
    attributes: _Attributes | None = None


class _PlainLeadEvent(Struct, forbid_unknown_fields=True):
    event_id: Annotated[str, Meta(min_length=1, max_length=128)]
    lead: _PlainLead
    kind: Literal["lead"] | None = None
    schema_version: Literal[1] | None = None
    workspace: _Text | None = None
    return_lead: bool | None = None


_PLAIN_LEAD_EVENT: Final = msgspec.json.Decoder(_PlainLeadEvent)


def _plain_lead_event(value: bytes, message: RawMessage) -> LeadChange | None:
    """The event, when `value` is a plain lead event that `_event` accepts; None for `_event` to read it."""
    try:
        body = _PLAIN_LEAD_EVENT.decode(value)
    except (msgspec.DecodeError, RecursionError):
        return None
    raw = body.lead
    # As `_either` and `_nonempty`: the WSDL name unless it is null, then an empty text is no value.
    lead_id = raw.id if raw.id is not None else raw.id_camel
    email = (raw.email if raw.email is not None else raw.email_camel) or None
    cookie = (raw.cookie if raw.cookie is not None else raw.cookie_camel) or None
    fsp_id = (raw.fsp_id if raw.fsp_id is not None else raw.fsp_id_camel) or None
    fsp_type = None
    if fsp_id is not None:
        fsp_type_text = raw.fsp_type if raw.fsp_type is not None else raw.fsp_type_camel
        fsp_type = _FOREIGN_SYS_TYPES.get(fsp_type_text or "")
        if fsp_type is None:
            return None
    if lead_id is None and fsp_id is None and cookie is None and email is None:
        return None
    given = raw.attributes
    if given:  # names shared: thousands of waiting events hold one "FirstName", as orjson's key cache gives
        # Values rendered as `_attributes` renders them: text as it is, integers as Python writes them, the rest
        # (booleans, null) by `render_value`.
        pairs = tuple(
            [
                (
                    _known_name(name) or _shared_name(name),
                    item if type(item) is str else str(item) if type(item) is int else render_value(item, name),
                )
                for name, item in given.items()
            ]
        )
    else:
        pairs = ()
    lead = Lead(lead_id, email, fsp_id, fsp_type, cookie, pairs)
    workspace = body.workspace or None
    key, lookup, identities = lead_names(lead, workspace, email_attribute=given is not None and "Email" in given)
    return LeadChange(body.event_id, key, lead, workspace, body.return_lead or False, message, lookup, identities)


# Attribute names seen, each kept once (names are never empty): bounded as orjson's key cache is, so names nobody
# repeats neither grow it without end nor, once it is full, displace the ones every event carries.
MAX_SHARED_NAMES: Final = 4096
MAX_SHARED_NAME_CHARS: Final = 64
_SHARED_NAMES: Final[dict[str, str]] = {}
_known_name: Final = _SHARED_NAMES.get


def _shared_name(name: str) -> str:
    if len(name) <= MAX_SHARED_NAME_CHARS and len(_SHARED_NAMES) < MAX_SHARED_NAMES:
        _SHARED_NAMES[name] = name
    return name


def decode_event(message: RawMessage, *, plain_path: bool = True) -> Event | InvalidEvent:
    """Validate one input message; never raises, whatever the bytes.

    `plain_path` False reads every event as an uncommon one would be read (`_event`): the reference the plain
    lead path is tested against; the outcome is the same.

    A message that breaks the contract is `invalid_json` or `invalid_event` with the field named; anything this
    code did not foresee is `internal_error` with the exception's type and message, never a crash.
    """
    try:
        return _decode(message, plain_path)
    except Exception as exc:  # noqa: BLE001 - the second wall: one event must never stop the service
        return internal_error(message, exc)


def internal_error(message: RawMessage, exc: Exception) -> InvalidEvent:
    """`message` could not be handled because of `exc`, which nobody foresaw: an `internal_error` dead letter."""
    log.error("event_internal_error", error_type=type(exc).__name__, exc_info=exc)
    return InvalidEvent(DeadLetterReason.INTERNAL_ERROR, describe_exception(exc), message)


def _decode(message: RawMessage, plain_path: bool) -> Event | InvalidEvent:  # noqa: FBT001 - private, hot
    value = message.value
    if value is None:
        return InvalidEvent(DeadLetterReason.INVALID_JSON, "message has no value (tombstone)", message)
    if len(value) > MAX_EVENT_BYTES:
        return InvalidEvent(
            DeadLetterReason.INVALID_EVENT, f"event of {len(value)} bytes exceeds {MAX_EVENT_BYTES}", message
        )
    value = json_payload(value)
    may_hold_unencodable = _may_hold_unencodable(value)
    if plain_path and not may_hold_unencodable:
        plain = _plain_lead_event(value, message)
        if plain is not None:
            return plain
    try:
        body = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        return InvalidEvent(DeadLetterReason.INVALID_JSON, f"not UTF-8 JSON: {exc}", message)
    try:
        event = _event(body, message)
        if may_hold_unencodable:
            _check_characters(event)
    except EventError as exc:
        return InvalidEvent(DeadLetterReason.INVALID_EVENT, str(exc), message)
    return event


def json_payload(value: bytes) -> bytes:
    """The JSON of a message value: as it is, or after the 5 bytes a schema-registry serializer puts first.

    Those are Confluent's wire format: a zero magic byte and a four-byte schema id.
    """
    if len(value) > SCHEMA_REGISTRY_HEADER and value[0] == 0:
        return value[SCHEMA_REGISTRY_HEADER:]
    return value


def _may_hold_unencodable(raw: bytes) -> bool:
    """Whether any string of the JSON can hold a character XML cannot carry.

    JSON carries control characters and lone surrogates only as backslash escapes; U+FFFE and U+FFFF may
    also come raw, as bytes that start with 0xEF. Two single-byte scans (memchr) spare the per-value checks of
    almost every event; an event with any escape, or any character from U+F000 up, is checked value by value.
    """
    return raw.find(b"\\") >= 0 or raw.find(b"\xef") >= 0


def _used_texts(event: Event) -> Iterator[tuple[str, str]]:
    """Every text of `event` the service keys by or sends to Marketo, and where in the event it was."""
    yield "event_id", event.event_id
    if isinstance(event, LeadChange):
        lead = event.lead
        named = (("workspace", event.workspace), ("lead.Email", lead.email), ("lead.MarketoCookie", lead.cookie))
        yield from ((where, text) for where, text in named if text is not None)
        if lead.foreign_sys_person_id is not None:
            yield "lead.ForeignSysPersonId", lead.foreign_sys_person_id
        yield from _attrib_texts("lead.attributes", lead.attributes)
        return
    mobject = event.mobject
    if mobject.external_key is not None:
        yield from _attrib_texts("mobject.externalKey", [mobject.external_key])
    yield from _attrib_texts("mobject.attribs", mobject.attribs)
    for index, type_attrib in enumerate(mobject.type_attribs):
        yield from _attrib_texts(f"mobject.typeAttribs[{index}].attribs", type_attrib.attribs)
    for index, association in enumerate(mobject.associations):
        yield f"mobject.associations[{index}].mObjType", association.mobj_type
        if association.external_key is not None:
            yield from _attrib_texts(f"mobject.associations[{index}].externalKey", [association.external_key])


def _attrib_texts(where: str, pairs: Iterable[tuple[str, str] | Attrib]) -> Iterator[tuple[str, str]]:
    for pair in pairs:
        name, value = (pair.name, pair.value) if isinstance(pair, Attrib) else pair
        yield f"{where} name", name
        yield f"{where}.{name}", value


def _check_characters(event: Event) -> None:
    """Raise EventError naming the first text the service uses whose characters XML cannot carry.

    Only what the service uses: an unknown field, or an alias its upper-case field overrides, is ignored whatever
    it holds (as the schema says, schemas/v1).
    """
    for where, text in _used_texts(event):
        bad = find_unencodable(text)
        if bad is not None:
            path = where if len(where) <= _SHOWN_CHARS * 2 else f"{where[:_SHOWN_CHARS]}...{where[-_SHOWN_CHARS:]}"
            raise EventError(f"{path}: {bad}")


def _event(body: object, message: RawMessage) -> Event:
    if not isinstance(body, dict):
        raise EventError(f"an event is a JSON object, not {type(body).__name__}")
    event_id = _text(body.get("event_id"), "event_id", required=True)
    if not event_id or len(event_id) > 128:  # noqa: PLR2004
        raise EventError("event_id must be 1 to 128 characters")
    version = body.get("schema_version")
    if version is not None and (isinstance(version, bool) or version != SCHEMA_VERSION):
        raise EventError(f"schema_version must be {SCHEMA_VERSION} (schemas/v1), got {shown(version)}")
    kind = body.get("kind")
    if kind is None:
        kind = "lead"
    if kind == "mobject":
        mobject, operation = _mobject(body)
        return MObjectChange(event_id, mobject_key(mobject, event_id), mobject, operation, message)
    if kind != "lead":
        raise EventError(f"kind must be lead or mobject, got {shown(kind)}")
    lead = _lead(body)
    workspace = _nonempty(body.get("workspace"), "workspace")
    return_lead = body.get("return_lead", False)
    if return_lead is None:
        return_lead = False
    if not isinstance(return_lead, bool):
        raise EventError(f"return_lead must be true or false, got {shown(return_lead)}")
    attributes = body["lead"].get("attributes")
    key, lookup, identities = lead_names(
        lead, workspace, email_attribute=type(attributes) is dict and "Email" in attributes
    )
    return LeadChange(event_id, key, lead, workspace, return_lead, message, lookup, identities)
