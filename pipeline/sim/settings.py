"""The simulator's runtime settings: what `POST /_sim/config` changes and `simulate`'s flags set."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Final

from pipeline.marketo.rest.codes import ERROR_TEXT
from pipeline.marketo.soap.fault import FAULT_TEXT
from pipeline.records import Operation, RestOperation
from pipeline.sim.leads import AssignmentRule

# Hostile replies: an XXE, an entity bomb, a truncated document, a reply with the wrong number of statuses.
HOSTILE_KINDS: Final = frozenset({"xxe", "entities", "truncated", "wrong_count"})
FAULT_KINDS: Final = frozenset({"http_500", "http_503", "timeout", "reset", "fault"}) | HOSTILE_KINDS
PHASES: Final = frozenset({"before", "after"})
OPERATIONS: Final = tuple(op.value for op in (*Operation, *RestOperation))
# SIMULATOR'S CHOICE: the tags a program may take ("each tag uses a value from a list configured in Marketo Admin").
DEFAULT_PROGRAM_TAGS: Final[dict[str, tuple[str, ...]]] = {
    "Program Owner": ("Ada Lovelace", "Grace Hopper", "Alan Turing"),
    "Region": ("EMEA", "AMER", "APAC"),
}

# SIMULATOR'S CHOICE: the channels a program may take (Marketo ships some and lets an admin add more; the API
# cannot create one: "tags/channels must already be defined").
DEFAULT_PROGRAM_CHANNELS: Final = ("Content", "Email Send", "Online Advertising", "Tradeshow", "Webinar")

# Marketo's own limits, for `simulate --marketo-limits`.
MARKETO_LIMITS: Final[dict[str, Any]] = {
    "calls_per_20s": 100,
    "max_concurrency": 10,
    "daily_quota": 10_000,
    "max_leads_per_call": 300,
    "max_mobjects_per_call": 100,
}


class SimConfigError(ValueError):
    """A `/_sim/config` body or a `simulate` flag that the simulator cannot apply; names the field."""


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """Inject `kind` into a `rate` share of calls (of `operation`, when given).

    `phase` "after" applies the call to the store before failing it, as a reply lost on the way back. A `fault`'s
    code says which API it hits: a five-digit SOAP fault code SOAP calls, a REST error code REST calls.
    """

    kind: str
    rate: float
    code: str | None = None
    operation: str | None = None
    phase: str = "before"


@dataclass(frozen=True, slots=True)
class SimSettings:
    """Limits are off when None; `lead_fields` None accepts any attribute name."""

    auth: bool = True
    user_id: str = "demo_user"
    secret_key: str = field(default="demo-secret-key", repr=False)
    client_id: str = "demo-client-id"
    client_secret: str = field(default="demo-client-secret", repr=False)
    token_ttl_s: float = 3600.0
    rest_max_body_bytes: int = 1024 * 1024  # "a maximum body size of 1 MB" (rest-api.md): 413 beyond
    program_tags: dict[str, tuple[str, ...]] | None = field(default_factory=lambda: dict(DEFAULT_PROGRAM_TAGS))
    program_channels: tuple[str, ...] | None = DEFAULT_PROGRAM_CHANNELS
    calls_per_20s: int | None = None
    max_concurrency: int | None = None
    daily_quota: int | None = None
    max_leads_per_call: int | None = None
    max_mobjects_per_call: int | None = None
    lead_fields: tuple[str, ...] | None = None
    custom_fields: tuple[str, ...] = ()  # custom string lead fields, one name over SOAP and REST (Describe lists them)
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    faults: tuple[FaultSpec, ...] = ()
    timeout_hold_s: float = 120.0
    request_ttl_s: float = 900.0  # SIMULATOR'S CHOICE: Marketo documents 20016 for a stale signature, no lifetime
    validate: bool = True
    workspaces: dict[str, str] = field(default_factory=lambda: {"Default": "Default"})
    assignment_rules: tuple[AssignmentRule, ...] = ()
    programs: tuple[int, ...] | None = None

    def public(self) -> dict[str, Any]:
        """The settings as `GET /_sim/config` shows them: the secret key left out."""
        shown = asdict(self)
        del shown["secret_key"], shown["client_secret"]
        shown["faults"] = [{k: v for k, v in asdict(f).items() if v is not None} for f in self.faults]
        shown["custom_fields"] = list(shown["custom_fields"])
        shown["assignment_rules"] = [asdict(rule) for rule in self.assignment_rules]
        for key in ("lead_fields", "programs", "program_channels"):
            if shown[key] is not None:
                shown[key] = list(shown[key])
        if shown["program_tags"] is not None:
            shown["program_tags"] = {k: list(v) for k, v in shown["program_tags"].items()}
        return shown


LIMIT_FIELDS: Final = (
    "calls_per_20s",
    "max_concurrency",
    "daily_quota",
    "max_leads_per_call",
    "max_mobjects_per_call",
)
DURATION_FIELDS: Final = ("latency_ms", "latency_jitter_ms", "timeout_hold_s", "request_ttl_s", "token_ttl_s")


def _limit(name: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        msg = f"{name}: expected a positive integer or null, got {value!r}"
        raise SimConfigError(msg)
    return value


def _duration(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        msg = f"{name}: expected a non-negative number, got {value!r}"
        raise SimConfigError(msg)
    return float(value)


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        msg = f"{name}: expected true or false, got {value!r}"
        raise SimConfigError(msg)
    return value


def _names(name: str, value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        msg = f"{name}: expected a list of names or null, got {value!r}"
        raise SimConfigError(msg)
    return tuple(value)


def _credential(name: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        msg = f"{name}: expected a non-empty string"
        raise SimConfigError(msg)
    return value


def _programs(value: object) -> tuple[int, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        msg = f"programs: expected a list of integer ids or null, got {value!r}"
        raise SimConfigError(msg)
    return tuple(value)


def _workspaces(value: object) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        msg = f"workspaces: expected an object of workspace name -> primary partition, got {value!r}"
        raise SimConfigError(msg)
    if "Default" not in value:
        msg = "workspaces: the Default workspace cannot be removed"
        raise SimConfigError(msg)
    folded = [name.strip().casefold() for name in value]
    if len(set(folded)) < len(folded):  # names match whatever their case: two would be one
        msg = f"workspaces: two names differ only by case or blanks: {sorted(value)}"
        raise SimConfigError(msg)
    return dict(value)


def _assignment_rules(value: object) -> tuple[AssignmentRule, ...]:
    fields = ("field", "value", "partition")
    if not isinstance(value, list) or not all(
        isinstance(rule, dict)
        and set(rule) == set(fields)
        and all(isinstance(rule[f], str) and rule[f] for f in fields)
        for rule in value
    ):
        msg = f"assignment_rules: expected a list of {{field, value, partition}} objects of text, got {value!r}"
        raise SimConfigError(msg)
    return tuple(AssignmentRule(rule["field"], rule["value"], rule["partition"]) for rule in value)


def parse_fault(value: object) -> FaultSpec:
    """One entry of `faults`: {"kind", "rate", "code"?, "operation"?, "phase"?}."""
    if not isinstance(value, dict):
        msg = f"faults: expected an object, got {value!r}"
        raise SimConfigError(msg)
    unknown = set(value) - {"kind", "rate", "code", "operation", "phase"}
    if unknown:
        msg = f"faults: unknown field {min(unknown)!r}"
        raise SimConfigError(msg)
    kind, rate = value.get("kind"), value.get("rate")
    code, operation, phase = value.get("code"), value.get("operation"), value.get("phase", "before")
    if kind not in FAULT_KINDS:
        msg = f"faults.kind: expected one of {sorted(FAULT_KINDS)}, got {kind!r}"
        raise SimConfigError(msg)
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
        msg = f"faults.rate: expected a number from 0 to 1, got {rate!r}"
        raise SimConfigError(msg)
    if kind == "fault" and (not isinstance(code, str) or (code not in FAULT_TEXT and code not in ERROR_TEXT)):
        msg = f"faults.code: expected a Marketo fault code such as '20023' (SOAP) or '606' (REST), got {code!r}"
        raise SimConfigError(msg)
    if operation is not None and operation not in OPERATIONS:
        msg = f"faults.operation: expected one of {list(OPERATIONS)}, got {operation!r}"
        raise SimConfigError(msg)
    if phase not in PHASES:
        msg = f"faults.phase: expected 'before' or 'after', got {phase!r}"
        raise SimConfigError(msg)
    return FaultSpec(
        kind=kind, rate=float(rate), code=code if kind == "fault" else None, operation=operation, phase=phase
    )


def _program_tags(value: object) -> dict[str, tuple[str, ...]] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, list) and all(isinstance(t, str) for t in v) for k, v in value.items()
    ):
        msg = f"program_tags: expected an object of tag type -> list of values, or null, got {value!r}"
        raise SimConfigError(msg)
    return {k: tuple(v) for k, v in value.items()}


def _faults(name: str, value: object) -> tuple[FaultSpec, ...]:
    if not isinstance(value, list):
        msg = f"{name}: expected a list, got {value!r}"
        raise SimConfigError(msg)
    return tuple(parse_fault(item) for item in value)


_PARSERS: Final[dict[str, Any]] = {
    **dict.fromkeys(LIMIT_FIELDS, _limit),
    **dict.fromkeys(DURATION_FIELDS, _duration),
    "auth": _flag,
    "validate": _flag,
    "user_id": _credential,
    "secret_key": _credential,  # write-only: GET /_sim/config never shows it
    "client_id": _credential,
    "client_secret": _credential,  # write-only too
    "rest_max_body_bytes": lambda name, value: _limit(name, value) or 1024 * 1024,
    "program_tags": lambda _name, value: _program_tags(value),
    "lead_fields": _names,
    "custom_fields": lambda name, value: _names(name, value) or (),
    "faults": _faults,
    "workspaces": lambda _name, value: _workspaces(value),
    "assignment_rules": lambda _name, value: _assignment_rules(value),
    "program_channels": _names,
    "programs": lambda _name, value: _programs(value),
}


def apply_patch(settings: SimSettings, patch: object) -> SimSettings:
    """`settings` with the fields of `patch` replaced; fields left out stay as they are."""
    if not isinstance(patch, dict):
        msg = "expected a JSON object"
        raise SimConfigError(msg)
    changes: dict[str, Any] = {}
    for name, value in patch.items():
        parser = _PARSERS.get(name)
        if parser is None:
            msg = f"unknown field {name!r}"
            raise SimConfigError(msg)
        changes[name] = parser(name, value)
    return replace(settings, **changes)
