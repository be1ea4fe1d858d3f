from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from pipeline.cli import build_parser, main
from pipeline.config import Settings
from pipeline.metrics import package_version as version
from pipeline.sim.command import simulator_settings
from pipeline.sim.leads import AssignmentRule
from pipeline.sim.settings import FaultSpec


def _settings(*argv: str) -> object:
    marketo = Settings().marketo
    return simulator_settings(
        build_parser().parse_args(["simulate", *argv]),
        user_id=marketo.user_id,
        secret_key=marketo.secret_key.get_secret_value(),
    )


def test_simulate_defaults_take_the_service_credentials_and_leave_limits_off() -> None:
    settings = _settings()
    assert settings.auth is True  # type: ignore[attr-defined]
    assert settings.user_id == Settings().marketo.user_id  # type: ignore[attr-defined]
    assert settings.calls_per_20s is None  # type: ignore[attr-defined]


def test_simulate_flags_set_every_field() -> None:
    settings = _settings(
        "--auth", "off", "--marketo-limits", "--max-concurrency", "4", "--lead-fields", "FirstName, Company",
        "--latency-ms", "300", "--latency-jitter-ms", "50", "--fault", "kind=fault,code=20023,rate=0.05,operation=syncLead",
        "--fault", "kind=reset,rate=0.01", "--workspace", "EMEA=EMEA Primary", "--programs", "1970,1971",
        "--assignment-rule", "Country=France:Europe", "--assignment-rule", "Country=Peru:Americas: South",
        "--program-channels", "Webinar, Podcast",
    )  # fmt: skip
    assert settings.auth is False  # type: ignore[attr-defined]
    assert (settings.calls_per_20s, settings.max_concurrency, settings.daily_quota) == (100, 4, 10_000)  # type: ignore[attr-defined]
    assert settings.lead_fields == ("FirstName", "Company")  # type: ignore[attr-defined]
    assert settings.latency_ms == 300  # type: ignore[attr-defined]
    assert settings.faults == (  # type: ignore[attr-defined]
        FaultSpec("fault", 0.05, code="20023", operation="syncLead"),
        FaultSpec("reset", 0.01),
    )
    assert settings.workspaces == {"Default": "Default", "EMEA": "EMEA Primary"}  # type: ignore[attr-defined]
    assert settings.programs == (1970, 1971)  # type: ignore[attr-defined]
    assert settings.assignment_rules == (  # type: ignore[attr-defined]
        AssignmentRule("Country", "France", "Europe"),
        AssignmentRule("Country", "Peru:Americas", "South"),
    )
    assert settings.program_channels == ("Webinar", "Podcast")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--fault", "kind=fault,rate=0.1"], "faults.code"),
        (["--fault", "boom"], "key=value"),
        (["--calls-per-20s", "0"], "positive integer"),
        (["--assignment-rule", "Country:Europe"], "FIELD=VALUE:PARTITION"),
    ],
)
def test_bad_simulate_flags_exit_2_with_the_reason(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["simulate", *argv])
    assert caught.value.code == 2
    assert message in capsys.readouterr().err


def test_a_bad_configuration_exits_2_naming_the_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PIPELINE_HTTP__PORT", "-5")
    assert main(["simulate"]) == 2
    assert "config key http.port" in capsys.readouterr().err


def test_every_flag_of_every_verb_says_what_it_does() -> None:
    parser = build_parser()
    [verbs] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    silent = [
        f"{name} {'/'.join(action.option_strings)}"
        for name, verb in verbs.choices.items()
        for action in verb._actions
        if action.option_strings and not action.help and action.dest != "help"
    ]
    assert silent == []
    assert len(verbs.choices) >= 6  # run, simulate, produce, replay, demo, topics


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"marketo-pipeline {version()}"
    assert version()[0].isdigit()


def test_topics_takes_a_replication_factor_and_topic_configs() -> None:
    args = build_parser().parse_args(
        [
            "topics",
            "--replication-factor",
            "3",
            "--config",
            "retention.ms=604800000",
            "--config",
            "min.insync.replicas=2",
        ]
    )
    assert args.replication_factor == 3
    assert dict(args.config_entries) == {"retention.ms": "604800000", "min.insync.replicas": "2"}
    with pytest.raises(SystemExit):
        build_parser().parse_args(["topics", "--config", "retention.ms="])
    assert build_parser().parse_args(["topics", "--config", "other.toml"]).config == Path("other.toml")
