from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from pipeline.config import Settings, load_settings
from pipeline.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
CONTRACT_KEYS = {
    "kafka": {"bootstrap", "input_topic", "results_topic", "dlq_topic", "group_id"},
    "marketo": {"endpoint", "user_id", "secret_key", "dedup_enabled", "timeout_s"},
    "dedupe": {"window_ms"},
    "batch": {"max_wait_ms", "max_leads", "max_mobjects"},
    "deliver": {"max_concurrency", "calls_per_20s", "daily_quota", "max_attempts", "backoff_base_ms", "backoff_max_ms"},
    "http": {"port"},
}


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os  # noqa: PLC0415

    for name in list(os.environ):
        if name.upper().startswith("PIPELINE_"):
            monkeypatch.delenv(name)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pipeline.toml"
    path.write_text(text)
    return path


def test_shipped_config_names_every_contract_key_and_loads() -> None:
    shipped = tomllib.loads((ROOT / "config/pipeline.toml").read_text())
    for section, keys in CONTRACT_KEYS.items():
        assert keys <= set(shipped[section]), f"config/pipeline.toml lacks {section}: {keys - set(shipped[section])}"
    settings = load_settings(ROOT / "config/pipeline.toml")
    assert settings.kafka.input_topic == "leads.changes"
    assert settings.deliver.max_concurrency == 10


def test_shipped_config_documents_every_key() -> None:
    lines = (ROOT / "config/pipeline.toml").read_text().splitlines()
    for number, line in enumerate(lines):
        if "=" in line and not line.startswith("#"):
            assert lines[number - 1].startswith("#"), f"key without a comment: {line}"


def test_shipped_config_agrees_with_the_defaults() -> None:
    assert load_settings(ROOT / "config/pipeline.toml").masked() == Settings().masked()


def test_file_values_apply(tmp_path: Path) -> None:
    path = _write(tmp_path, '[kafka]\ninput_topic = "in"\n[deliver]\nmax_concurrency = 4\n')
    settings = load_settings(path)
    assert settings.kafka.input_topic == "in"
    assert settings.deliver.max_concurrency == 4
    assert settings.kafka.results_topic == "leads.results"


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, "[deliver]\nmax_concurrency = 4\n")
    monkeypatch.setenv("PIPELINE_DELIVER__MAX_CONCURRENCY", "7")
    monkeypatch.setenv("PIPELINE_KAFKA__BOOTSTRAP", "broker-1:9093,broker-2:9093")
    monkeypatch.setenv("PIPELINE_MARKETO__SECRET_KEY", "s3cr3t")
    settings = load_settings(path)
    assert settings.deliver.max_concurrency == 7
    assert settings.kafka.bootstrap == "broker-1:9093,broker-2:9093"
    assert settings.marketo.secret_key.get_secret_value() == "s3cr3t"


def test_an_override_changes_one_key_of_a_section(tmp_path: Path) -> None:
    path = _write(tmp_path, '[kafka]\ninput_topic = "in"\n')
    settings = load_settings(path, kafka={"bootstrap": "other:1"})
    assert (settings.kafka.bootstrap, settings.kafka.input_topic) == ("other:1", "in")


@pytest.mark.parametrize(
    ("text", "env", "key"),
    [
        ("[deliver]\nmax_concurrency = 0\n", {}, "deliver.max_concurrency"),
        ("", {"PIPELINE_DELIVER__CALLS_PER_20S": "lots"}, "deliver.calls_per_20s"),
        ("[batch]\nmax_leads = 301\n", {}, "batch.max_leads"),
        ('[kafka]\nbootstrap = "no-port"\n', {}, "kafka.bootstrap"),
        ('[marketo]\nendpoint = "ftp://x"\n', {}, "marketo.endpoint"),
        ("[http]\nport = 70000\n", {}, "http.port"),
        ("[marketo]\ntimeout_s = -1\n", {}, "marketo.timeout_s"),
        ("[deliver]\nmax_concurency = 3\n", {}, "deliver.max_concurency"),
        ("[nonsense]\nx = 1\n", {}, "nonsense"),
    ],
)
def test_a_wrong_value_stops_start_up_naming_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, env: dict[str, str], key: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=rf"config key {key}\b"):
        load_settings(_write(tmp_path, text))


def test_errors_never_echo_the_secret(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(_write(tmp_path, "[marketo]\nsecret_key = 12345\n"))
    assert "marketo.secret_key" in str(caught.value)
    assert "12345" not in str(caught.value)


def test_the_secret_is_masked_in_the_logged_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPELINE_MARKETO__SECRET_KEY", "hunter2")
    assert "hunter2" not in repr(load_settings().masked())


def test_a_missing_or_broken_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "absent.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(_write(tmp_path, "[kafka\n"))
