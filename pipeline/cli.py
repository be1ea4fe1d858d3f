"""`marketo-pipeline VERB`: argv -> settings -> the verb's coroutine. Nothing else lives here."""

from __future__ import annotations

import argparse
import asyncio
import gc
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from rich.console import Console
from rich.table import Table

from pipeline.app import Service
from pipeline.config import Settings, load_settings
from pipeline.errors import ConfigError, FatalError
from pipeline.logs import configure_logging
from pipeline.ops.demo import demo
from pipeline.ops.produce import produce
from pipeline.ops.replay import ReplayFilter, replay
from pipeline.ops.synthetic import SyntheticLoad
from pipeline.ops.topics import create_topics
from pipeline.records import DeadLetterReason
from pipeline.sim.server import Simulator, SimulatorServer
from pipeline.sim.settings import MARKETO_LIMITS, SimConfigError, SimSettings, apply_patch, parse_fault

GC_GEN0_THRESHOLD = 200_000

log = structlog.get_logger()


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="settings file (default: config/pipeline.toml when present)")
    parser.add_argument("--bootstrap", help="Kafka bootstrap servers, HOST:PORT[,HOST:PORT]")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])


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


def _add_simulate(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sim = verbs.add_parser("simulate", help="run the Marketo SOAP simulator")
    _common(sim)
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8089)
    sim.add_argument("--user-id", help="accepted mktowsUserId (default: marketo.user_id)")
    sim.add_argument("--secret-key", help="key signatures are checked with (default: marketo.secret_key)")
    sim.add_argument("--auth", choices=["on", "off"], default="on", help="off accepts any signature")
    sim.add_argument("--seed", type=int, help="seed for fault injection and latency jitter")
    sim.add_argument("--marketo-limits", action="store_true", help="enforce Marketo's limits (100/20 s, 10, ...)")
    for name in ("calls-per-20s", "max-concurrency", "daily-quota", "max-leads-per-call", "max-mobjects-per-call"):
        sim.add_argument(f"--{name}", type=_positive, help="limit (default: off)")
    sim.add_argument("--lead-fields", help="comma-separated known lead fields; others fault with 20105")
    sim.add_argument("--latency-ms", type=float)
    sim.add_argument("--latency-jitter-ms", type=float)
    sim.add_argument("--timeout-hold-s", type=float, help="how long an injected timeout holds the call")
    sim.add_argument("--request-ttl-s", type=float, help="signatures older than this fault with 20016")
    sim.add_argument("--fault", type=_fault, action="append", default=[], metavar="kind=K,rate=R[,code=C]")
    sim.add_argument("--workspace", action="append", default=[], metavar="NAME=PRIMARY_PARTITION")
    sim.add_argument("--programs", help="comma-separated Program ids that exist (default: any positive id)")
    sim.add_argument("--no-validate", action="store_true", help="skip schema validation of requests")


def _share(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a share from 0 to 1, got {text}")
    return value


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"expected an RFC 3339 time such as 2026-11-23T12:00:00Z, got {text!r}"
        ) from exc
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def build_parser() -> argparse.ArgumentParser:
    """The command line of every verb."""
    parser = argparse.ArgumentParser(prog="marketo-pipeline", description=__doc__)
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    run = verbs.add_parser("run", help="the service: Kafka -> Marketo -> results")
    _common(run)
    _add_simulate(verbs)
    produce_verb = verbs.add_parser("produce", help="publish synthetic lead-change events")
    _common(produce_verb)
    produce_verb.add_argument("--count", type=_positive, default=10_000)
    produce_verb.add_argument(
        "--duplicates", type=_share, default=0.2, help="share of events that update an earlier lead"
    )
    produce_verb.add_argument("--invalid", type=_share, default=0.01, help="share of malformed events")
    produce_verb.add_argument("--mobjects", type=_share, default=0.05, help="share of Opportunity/Program events")
    produce_verb.add_argument("--cookies", type=_share, default=0.01, help="share of anonymous (cookie) leads")
    produce_verb.add_argument("--seed", type=int, default=1)
    produce_verb.add_argument("--topic", help="target topic (default: kafka.input_topic)")
    replay_verb = verbs.add_parser("replay", help="copy dead letters back to the input topic")
    _common(replay_verb)
    replay_verb.add_argument("--reason", choices=[r.value for r in DeadLetterReason], help="only this dlq.reason")
    replay_verb.add_argument("--since", type=_moment, help="only dead letters failed at or after (RFC 3339)")
    replay_verb.add_argument("--until", type=_moment, help="only dead letters failed before (RFC 3339)")
    replay_verb.add_argument("--limit", type=_positive, help="replay at most this many")
    replay_verb.add_argument("--dry-run", action="store_true", help="count what would be replayed; publish nothing")
    replay_verb.add_argument("--max-replays", type=_positive, default=3, help="skip dead letters replayed this often")
    demo_verb = verbs.add_parser("demo", help="the simulator, the service and a demo load, with a summary")
    _common(demo_verb)
    demo_verb.add_argument("--count", type=_positive, default=10_000)
    demo_verb.add_argument("--sim-port", type=int, default=8089)
    topics = verbs.add_parser("topics", help="create the input, results and dead-letter topics")
    _common(topics)
    topics.add_argument("--partitions", type=_positive, default=6)
    return parser


def simulator_settings(args: argparse.Namespace, settings: Settings) -> SimSettings:
    """SimSettings from `simulate`'s flags; credentials default to the service's own."""
    base = SimSettings(
        auth=args.auth == "on",
        user_id=args.user_id or settings.marketo.user_id,
        secret_key=args.secret_key or settings.marketo.secret_key.get_secret_value(),
    )
    patch: dict[str, Any] = dict(MARKETO_LIMITS) if args.marketo_limits else {}
    for key in ("calls_per_20s", "max_concurrency", "daily_quota", "max_leads_per_call", "max_mobjects_per_call"):
        if getattr(args, key) is not None:
            patch[key] = getattr(args, key)
    for key in ("latency_ms", "latency_jitter_ms", "timeout_hold_s", "request_ttl_s"):
        if getattr(args, key) is not None:
            patch[key] = getattr(args, key)
    if args.lead_fields:
        patch["lead_fields"] = [name.strip() for name in args.lead_fields.split(",") if name.strip()]
    if args.fault:
        patch["faults"] = args.fault
    if args.workspace:
        patch["workspaces"] = {"Default": "Default", **dict(w.split("=", 1) for w in args.workspace)}
    if args.programs:
        patch["programs"] = [int(p) for p in args.programs.split(",")]
    if args.no_validate:
        patch["validate"] = False
    return apply_patch(base, patch)


def _print_simulator(console: Console, server: SimulatorServer, settings: SimSettings) -> None:
    table = Table(title="Marketo simulator", show_header=False)
    table.add_row("SOAP endpoint", server.endpoint)
    table.add_row("WSDL", f"{server.endpoint}?WSDL")
    table.add_row("admin", f"{server.base_url}/_sim/{{leads,mobjects,stats,config,reset}}")
    table.add_row("auth", f"on, user {settings.user_id}" if settings.auth else "off (any signature)")
    limits = ", ".join(
        f"{key}={getattr(settings, key)}"
        for key in ("calls_per_20s", "max_concurrency", "daily_quota", "max_leads_per_call", "max_mobjects_per_call")
        if getattr(settings, key) is not None
    )
    table.add_row("limits", limits or "off")
    table.add_row(
        "faults", ", ".join(f"{f.kind}{'/' + f.code if f.code else ''}@{f.rate}" for f in settings.faults) or "none"
    )
    console.print(table)


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


async def simulate(args: argparse.Namespace, settings: Settings) -> int:
    """Serve the simulator until SIGTERM or SIGINT."""
    sim_settings = simulator_settings(args, settings)
    stop = asyncio.Event()
    _stop_on_signals(stop)
    async with SimulatorServer(Simulator(sim_settings, seed=args.seed), host=args.host, port=args.port) as server:
        _print_simulator(Console(stderr=True), server, sim_settings)
        log.info("simulator_started", endpoint=server.endpoint)
        await stop.wait()
    log.info("simulator_stopped", stats=server.simulator.stats_json())
    return 0


def tune_gc() -> None:
    """Collect garbage for a process that makes a few short-lived objects per event, tens of thousands a second.

    The objects of start-up (modules, settings, the WSDL's schema) are frozen out of every collection, and the
    youngest generation is collected every GC_GEN0_THRESHOLD allocations instead of 700: at 700 the collector
    walks the pending events' objects over and over, about a third of the service's time at full speed.
    """
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, 50, 100)


async def run_service(settings: Settings) -> int:
    """The service until SIGTERM or SIGINT, then a drain under `service.drain_deadline_s`."""
    stop = asyncio.Event()
    _stop_on_signals(stop)
    await Service(settings).run(stop)
    return 0


async def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    match args.verb:
        case "run":
            tune_gc()
            return await run_service(settings)
        case "simulate":
            return await simulate(args, settings)
        case "produce":
            load = SyntheticLoad(
                seed=args.seed,
                duplicates=args.duplicates,
                invalid=args.invalid,
                mobjects=args.mobjects,
                cookies=args.cookies,
            )
            await produce(settings, load, args.count, topic=args.topic)
            return 0
        case "topics":
            await create_topics(settings, args.partitions)
            return 0
        case "replay":
            rules = ReplayFilter(
                reason=DeadLetterReason(args.reason) if args.reason else None,
                since=args.since,
                until=args.until,
                limit=args.limit,
                max_replays=args.max_replays,
            )
            await replay(settings, rules, dry_run=args.dry_run)
            return 0
        case "demo":
            tune_gc()
            stop = asyncio.Event()
            _stop_on_signals(stop)
            return await demo(settings, count=args.count, sim_port=args.sim_port, stop=stop)
    return 2  # pragma: no cover - argparse allows only the verbs above


def main(argv: Sequence[str] | None = None) -> int:
    """Parse argv, load settings, run the verb; configuration errors exit 2 with the key named."""
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level)
    try:
        # Sources merge key by key: a flag replaces one setting, not its whole section.
        overrides: dict[str, Any] = {"kafka": {"bootstrap": args.bootstrap}} if args.bootstrap else {}
        settings = load_settings(args.config, **overrides)
        return asyncio.run(_dispatch(args, settings))
    except (ConfigError, SimConfigError) as exc:
        print(f"marketo-pipeline: configuration error: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    except FatalError as exc:
        print(f"marketo-pipeline: {exc}", file=sys.stderr)  # noqa: T201
        return 1
