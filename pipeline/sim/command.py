"""`marketo-pipeline simulate`: its flags, the settings they make, and serving until a signal."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import structlog
from rich.console import Console
from rich.table import Table

from pipeline.sim.server import Simulator, SimulatorServer
from pipeline.sim.settings import (
    DURATION_FIELDS,
    LIMIT_FIELDS,
    MARKETO_LIMITS,
    SimConfigError,
    SimSettings,
    apply_patch,
    parse_fault,
)

log = structlog.get_logger()

_DURATION_HELP = {
    "latency_ms": "added to every call",
    "latency_jitter_ms": "random extra latency, up to this",
    "timeout_hold_s": "how long an injected timeout holds the call",
    "request_ttl_s": "signatures older than this fault with 20016",
    "token_ttl_s": "REST access tokens live this long (an hour)",
}


def _flag(field: str) -> str:
    return "--" + field.replace("_", "-")


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _fault(text: str) -> dict[str, Any]:
    """`kind=fault,code=20023,rate=0.05[,operation=syncLead][,phase=after]` -> a /_sim/config fault."""
    spec: dict[str, Any] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"expected key=value pairs, got {part!r}")
        spec[key.strip()] = float(value) if key.strip() == "rate" else value.strip()
    try:
        parse_fault(spec)
    except SimConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return spec


def _assignment_rule(text: str) -> dict[str, str]:
    """`Country=France:Europe` -> an `assignment_rules` entry of /_sim/config."""
    condition, sep, partition = text.rpartition(":")
    field, equals, value = condition.partition("=")
    if not (sep and equals and field.strip() and value.strip() and partition.strip()):
        raise argparse.ArgumentTypeError(f"expected FIELD=VALUE:PARTITION, got {text!r}")
    return {"field": field.strip(), "value": value.strip(), "partition": partition.strip()}


def add_arguments(sim: argparse.ArgumentParser) -> None:
    """The flags of `simulate`: one for each field of `/_sim/config`, and where to listen."""
    sim.add_argument("--host", default="127.0.0.1", help="address to listen on")
    sim.add_argument("--port", type=int, default=8089, help="port to listen on (0: a free one)")
    sim.add_argument("--user-id", help="accepted mktowsUserId (default: marketo.user_id)")
    sim.add_argument("--secret-key", help="key signatures are checked with (default: marketo.secret_key)")
    sim.add_argument("--client-id", help="REST client id accepted (default: marketo.client_id, else demo-client-id)")
    sim.add_argument("--client-secret", help="REST client secret accepted (default: marketo.client_secret, else ...)")
    sim.add_argument("--auth", choices=["on", "off"], default="on", help="off accepts any signature")
    sim.add_argument("--seed", type=int, help="seed for fault injection and latency jitter")
    sim.add_argument("--marketo-limits", action="store_true", help="enforce Marketo's limits (100/20 s, 10, ...)")
    for field in LIMIT_FIELDS:
        sim.add_argument(_flag(field), type=_positive, help="limit (default: off)")
    sim.add_argument("--lead-fields", help="comma-separated known lead fields; others fault with 20105")
    sim.add_argument("--custom-fields", help="comma-separated custom lead fields to add (one name over SOAP and REST)")
    for field in DURATION_FIELDS:
        sim.add_argument(_flag(field), type=float, help=_DURATION_HELP[field])
    sim.add_argument(
        "--fault", type=_fault, action="append", default=[], metavar="kind=K,rate=R[,code=C]",
        help="inject a fault into a share of calls (repeatable)",
    )  # fmt: skip
    sim.add_argument(
        "--workspace", action="append", default=[], metavar="NAME=PRIMARY_PARTITION",
        help="a workspace and its primary lead partition (repeatable)",
    )  # fmt: skip
    sim.add_argument(
        "--assignment-rule", type=_assignment_rule, action="append", default=[], metavar="FIELD=VALUE:PARTITION",
        help="new leads whose FIELD holds VALUE go to PARTITION (repeatable; the first that matches decides)",
    )  # fmt: skip
    sim.add_argument("--programs", help="comma-separated Program ids that exist (default: any positive id)")
    sim.add_argument("--program-channels", help="comma-separated channels a Program may take (default: five)")
    sim.add_argument("--no-validate", action="store_true", help="read requests without validating them (faster)")


def simulator_settings(
    args: argparse.Namespace, *, user_id: str, secret_key: str, client_id: str = "", client_secret: str = ""
) -> SimSettings:
    """SimSettings from `simulate`'s flags; credentials default to the ones given (the service's own)."""
    defaults = SimSettings()
    base = SimSettings(
        auth=args.auth == "on",
        user_id=args.user_id or user_id,
        secret_key=args.secret_key or secret_key,
        client_id=args.client_id or client_id or defaults.client_id,
        client_secret=args.client_secret or client_secret or defaults.client_secret,
    )
    patch: dict[str, Any] = dict(MARKETO_LIMITS) if args.marketo_limits else {}
    for field in (*LIMIT_FIELDS, *DURATION_FIELDS):
        if getattr(args, field) is not None:
            patch[field] = getattr(args, field)
    for flag in ("lead_fields", "custom_fields", "program_channels"):  # comma-separated names
        if getattr(args, flag):
            patch[flag] = [name.strip() for name in getattr(args, flag).split(",") if name.strip()]
    if args.fault:
        patch["faults"] = args.fault
    if args.workspace:
        patch["workspaces"] = {"Default": "Default", **dict(w.split("=", 1) for w in args.workspace)}
    if args.assignment_rule:
        patch["assignment_rules"] = args.assignment_rule
    if args.programs:
        patch["programs"] = [int(p) for p in args.programs.split(",")]
    if args.no_validate:
        patch["validate"] = False
    return apply_patch(base, patch)


def describe(server: SimulatorServer, settings: SimSettings) -> Table:
    """Where the simulator listens and what it enforces."""
    table = Table(title="Marketo simulator", show_header=False)
    table.add_row("SOAP endpoint", server.endpoint)
    table.add_row("WSDL", f"{server.endpoint}?WSDL")
    table.add_row("REST endpoint", f"{server.rest_endpoint} (identity: {server.rest_endpoint}/identity)")
    table.add_row("admin", f"{server.base_url}/_sim/{{leads,mobjects,stats,config,reset}}")
    table.add_row(
        "auth",
        f"on, SOAP user {settings.user_id}, REST client {settings.client_id}" if settings.auth else "off (anyone)",
    )
    limits = ", ".join(f"{key}={getattr(settings, key)}" for key in LIMIT_FIELDS if getattr(settings, key) is not None)
    table.add_row("limits", limits or "off")
    table.add_row(
        "faults", ", ".join(f"{f.kind}{'/' + f.code if f.code else ''}@{f.rate}" for f in settings.faults) or "none"
    )
    return table


async def serve(settings: SimSettings, *, host: str, port: int, seed: int | None, stop: asyncio.Event) -> int:
    """Serve the simulator until `stop` is set."""
    async with SimulatorServer(Simulator(settings, seed=seed), host=host, port=port) as server:
        Console(stderr=True).print(describe(server, settings))
        log.info("simulator_started", endpoint=server.endpoint)
        await stop.wait()
    log.info("simulator_stopped", stats=server.simulator.stats_json())
    return 0
