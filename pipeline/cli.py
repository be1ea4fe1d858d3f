"""`marketo-pipeline VERB`: argv -> settings -> the verb's coroutine. Nothing else lives here."""

from __future__ import annotations

import argparse
import asyncio
import gc
import signal
import sys
import tempfile
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeAlias

from pipeline.app import Service
from pipeline.config import Settings, load_settings
from pipeline.demo import demo
from pipeline.errors import ConfigError, FatalError
from pipeline.logs import configure_logging
from pipeline.metrics import package_version
from pipeline.ops.produce import produce
from pipeline.ops.replay import ReplayFilter, replay
from pipeline.ops.synthetic import SyntheticLoad
from pipeline.ops.topics import create_topics
from pipeline.ops.validate import validate_file
from pipeline.records import DeadLetterReason
from pipeline.sim import command as sim_command
from pipeline.sim.settings import SimConfigError

GC_GEN0_THRESHOLD = 1_000_000
DESCRIPTION = (
    "Keeps a Marketo instance in sync with the lead-change events on a Kafka topic: it reads them, merges each "
    "lead's changes, sends them to Marketo in full calls under Marketo's limits (REST or SOAP), and publishes one "
    "result per lead and a dead letter for what failed. `run` is the service; `demo` shows it all on this machine."
)


class _ConfigOrTopicConfig(argparse.Action):
    """`topics --config`: KEY=VALUE is a topic config (repeatable), anything else the settings file."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,  # noqa: ANN401 - argparse's
        option_string: str | None = None,
    ) -> None:
        text = str(values)
        if "=" not in text:
            namespace.config = Path(text)
            return
        try:
            entry = _topic_config(text)
        except argparse.ArgumentTypeError as exc:
            parser.error(f"{option_string}: {exc}")
        namespace.config_entries = [*getattr(namespace, "config_entries", []), entry]


def _common(parser: argparse.ArgumentParser, *, topic_configs: bool = False) -> None:
    if topic_configs:
        parser.add_argument(
            "--config", action=_ConfigOrTopicConfig, metavar="FILE|KEY=VALUE", default=None,
            help="the settings file, or a topic config for every topic created, e.g. retention.ms=604800000 "
            "(repeatable)",
        )  # fmt: skip
        parser.set_defaults(config_entries=[])
    else:
        parser.add_argument("--config", type=Path, help="settings file (default: config/pipeline.toml when present)")
    parser.add_argument("--bootstrap", help="Kafka bootstrap servers, HOST:PORT[,HOST:PORT]")
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"], help="least level logged"
    )


def _topic_config(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


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


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


def tune_gc() -> None:
    """Collect garbage for a process that makes a few short-lived objects per event, tens of thousands a second.

    The objects of start-up (modules, settings, the WSDL's schema) are frozen out of every collection, and the
    youngest generation is collected every GC_GEN0_THRESHOLD allocations instead of 700: at 700 the collector
    walks the pending events' objects over and over, about a third of the service's time at full speed (and a
    tenth still at 200,000; the objects are freed by their counts, the collector only finds cycles). The
    simulator likewise: its store of leads grows by hundreds per call, and each collection walked it again.
    """
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, 50, 100)


async def run_service(settings: Settings) -> int:
    """The service until SIGTERM or SIGINT, then a drain under `service.drain_deadline_s`."""
    stop = asyncio.Event()
    _stop_on_signals(stop)
    await Service(settings).run(stop)
    return 0


async def _run(_args: argparse.Namespace, settings: Settings) -> int:
    tune_gc()
    return await run_service(settings)


async def simulate(args: argparse.Namespace, settings: Settings) -> int:
    """Serve the simulator until SIGTERM or SIGINT."""
    m = settings.marketo
    sim_settings = sim_command.simulator_settings(
        args,
        user_id=m.user_id,
        secret_key=m.secret_key.get_secret_value(),
        client_id=m.client_id,
        client_secret=m.client_secret.get_secret_value(),
    )
    tune_gc()
    stop = asyncio.Event()
    _stop_on_signals(stop)
    return await sim_command.serve(sim_settings, host=args.host, port=args.port, seed=args.seed, stop=stop)


async def _produce(args: argparse.Namespace, settings: Settings) -> int:
    load = SyntheticLoad(
        seed=args.seed, duplicates=args.duplicates, invalid=args.invalid, mobjects=args.mobjects, cookies=args.cookies
    )
    await produce(settings, load, args.count, topic=args.topic)
    return 0


async def _replay(args: argparse.Namespace, settings: Settings) -> int:
    rules = ReplayFilter(
        reason=DeadLetterReason(args.reason) if args.reason else None,
        code=args.code,
        key=args.key,
        since=args.since,
        until=args.until,
        limit=args.limit,
        max_replays=args.max_replays,
        include_superseded=args.include_superseded,
    )
    await replay(settings, rules, dry_run=args.dry_run)
    return 0


async def _validate(args: argparse.Namespace, _settings: Settings) -> int:
    return await asyncio.to_thread(validate_file, args.file)


async def _topics(args: argparse.Namespace, settings: Settings) -> int:
    await create_topics(
        settings, args.partitions, replication=args.replication_factor, configs=dict(args.config_entries)
    )
    return 0


async def _demo(args: argparse.Namespace, settings: Settings) -> int:
    tune_gc()
    # The service's JSON logs go to a file, so that the progress bar and the summary stay readable.
    log_file = args.log_file or Path(tempfile.gettempdir()) / "marketo-pipeline-demo.log"
    configure_logging(args.log_level, stream=log_file.open("a", encoding="utf-8"))
    sys.stderr.write(f"demo: the service's logs go to {log_file}\n")
    stop = asyncio.Event()
    _stop_on_signals(stop)
    return await demo(settings, count=args.count, sim_port=args.sim_port, stop=stop, api=args.api)


Verbs: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"  # noqa: SLF001 - argparse names no public type
Handler = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]


def _verb(verbs: Verbs, name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
    parser = verbs.add_parser(name, help=help_text)
    _common(parser, topic_configs=name == "topics")
    parser.set_defaults(handler=handler)
    return parser


def _add_produce(verbs: Verbs) -> None:
    produce_verb = _verb(verbs, "produce", _produce, "publish synthetic lead-change events")
    produce_verb.add_argument("--count", type=_positive, default=10_000, help="events to publish")
    produce_verb.add_argument(
        "--duplicates", type=_share, default=0.2, help="share of events that update an earlier lead"
    )
    produce_verb.add_argument("--invalid", type=_share, default=0.01, help="share of malformed events")
    produce_verb.add_argument("--mobjects", type=_share, default=0.05, help="share of Opportunity/Program events")
    produce_verb.add_argument("--cookies", type=_share, default=0.01, help="share of anonymous (cookie) leads")
    produce_verb.add_argument("--seed", type=int, default=1, help="the same seed publishes the same events")
    produce_verb.add_argument("--topic", help="target topic (default: kafka.input_topic)")


def _add_replay(verbs: Verbs) -> None:
    replay_verb = _verb(verbs, "replay", _replay, "copy dead letters back to the input topic")
    replay_verb.add_argument("--reason", choices=[r.value for r in DeadLetterReason], help="only this dlq.reason")
    replay_verb.add_argument("--code", help="only dead letters with this Marketo code (dlq.error.code), e.g. 20105")
    replay_verb.add_argument("--key", help="only dead letters with this message key, e.g. email:ada@example.com")
    replay_verb.add_argument(
        "--include-superseded", action="store_true", help="replay even when the key has a newer result already"
    )
    replay_verb.add_argument("--since", type=_moment, help="only dead letters failed at or after (RFC 3339)")
    replay_verb.add_argument("--until", type=_moment, help="only dead letters failed before (RFC 3339)")
    replay_verb.add_argument("--limit", type=_positive, help="replay at most this many")
    replay_verb.add_argument("--dry-run", action="store_true", help="count what would be replayed; publish nothing")
    replay_verb.add_argument("--max-replays", type=_positive, default=3, help="skip dead letters replayed this often")


def build_parser() -> argparse.ArgumentParser:
    """The command line of every verb."""
    parser = argparse.ArgumentParser(prog="marketo-pipeline", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    _verb(verbs, "run", _run, "the service: Kafka -> Marketo -> results")
    sim_command.add_arguments(_verb(verbs, "simulate", simulate, "run the Marketo simulator (SOAP and REST)"))
    _add_produce(verbs)
    _add_replay(verbs)
    demo_verb = _verb(verbs, "demo", _demo, "the simulator, the service and a demo load, with a summary")
    demo_verb.add_argument("--count", type=_positive, default=10_000, help="events in the demo load")
    demo_verb.add_argument("--sim-port", type=int, default=8089, help="port the simulator listens on")
    demo_verb.add_argument("--log-file", type=Path, help="where the service's logs go (default: in the temp dir)")
    demo_verb.add_argument(
        "--api", choices=("soap", "rest"), default="soap", help="the Marketo API the service speaks to the simulator"
    )
    validate = _verb(verbs, "validate", _validate, "say what the service would do with each event of a JSON-lines file")
    validate.add_argument("file", nargs="?", default="-", help="JSON lines, one event a line (default -: stdin)")
    topics = _verb(verbs, "topics", _topics, "create the input, results and dead-letter topics")
    topics.add_argument("--partitions", type=_positive, default=6, help="partitions of each topic created")
    topics.add_argument(
        "--replication-factor", type=_positive, default=1, help="replicas of each topic created (3 in production)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse argv, load settings, run the verb; configuration errors exit 2 with the key named."""
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level)
    try:
        # Sources merge key by key: a flag replaces one setting, not its whole section.
        overrides: dict[str, Any] = {"kafka": {"bootstrap": args.bootstrap}} if args.bootstrap else {}
        settings = load_settings(args.config, **overrides)
        handler: Handler = args.handler
        return asyncio.run(handler(args, settings))
    except (ConfigError, SimConfigError) as exc:
        print(f"marketo-pipeline: configuration error: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    except FatalError as exc:
        print(f"marketo-pipeline: {exc}", file=sys.stderr)  # noqa: T201
        return 1
