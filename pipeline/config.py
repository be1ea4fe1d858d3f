"""Settings: `config/pipeline.toml` overridden by `PIPELINE_<SECTION>__<KEY>` environment variables.

Loaded once at start into one frozen object; a wrong value stops start-up with a ConfigError that
names the key (`deliver.max_concurrency`), never its secret value.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Final, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from pipeline.errors import ConfigError

DEFAULT_CONFIG_PATH: Final = Path("config/pipeline.toml")

_REST_FIELD: Final = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class KeyedValueError(ValueError):
    """A wrong value found while checking a whole section: `key` is the setting it concerns."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _secrets_from_files(data: Any, names: tuple[str, ...], section: str) -> Any:  # noqa: ANN401 - raw input
    """`<name>_file` read into `<name>`: a secret from a mounted file (a Kubernetes secret), not the environment."""
    if not isinstance(data, dict):
        return data
    found = dict(data)
    for name in names:
        path = found.pop(f"{name}_file", None)
        if not path:
            continue
        try:
            found[name] = Path(str(path)).read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise KeyedValueError(f"{section}.{name}_file", f"cannot read {path}: {type(exc).__name__}") from exc
    return found


class KafkaSettings(_Section):
    """Where events come from and where results and dead letters go."""

    bootstrap: str = "127.0.0.1:9092"
    input_topic: str = "leads.changes"
    results_topic: str = "leads.results"
    dlq_topic: str = "leads.dlq"
    group_id: str = "marketo-pipeline"
    client_id: str = "marketo-pipeline"
    # The compacted topic where the group counts its Marketo calls of the day (deliver.shared_budget).
    budget_topic: str = "marketo.budget"
    # The largest message the input topic takes (Kafka's default); `topics` gives the dead-letter topic room for
    # that and the dead-letter headers, and no message the service publishes is larger than its topic takes.
    max_message_bytes: Annotated[int, Field(ge=64 * 1024)] = 1_048_588
    # A secured cluster: TLS (SSL), SASL, or both; the same for every client the service and its verbs make.
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"] = ""
    sasl_username: str = ""
    sasl_password: SecretStr = SecretStr("")
    # OAUTHBEARER: "module:attribute", an aiokafka AbstractTokenProvider class (made with no arguments) or instance.
    sasl_oauth_token_provider: str = ""
    ssl_cafile: str = ""  # PEM: the CAs that signed the brokers' certificates (default: the system's)
    ssl_certfile: str = ""  # PEM: this client's certificate, for brokers that ask for one (mTLS)
    ssl_keyfile: str = ""  # PEM: its private key
    ssl_check_hostname: bool = True

    @model_validator(mode="before")
    @classmethod
    def _read_secret_files(cls, data: Any) -> Any:  # noqa: ANN401 - raw input
        return _secrets_from_files(data, ("sasl_password",), "kafka")

    @field_validator("ssl_cafile", "ssl_certfile", "ssl_keyfile")
    @classmethod
    def _readable_file(cls, value: str) -> str:
        if value and not Path(value).is_file():
            msg = f"no such file: {value}"
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _security_complete(self) -> KafkaSettings:
        sasl = self.security_protocol.startswith("SASL_")
        if sasl and not self.sasl_mechanism:
            raise KeyedValueError(
                "kafka.sasl_mechanism", f"required when kafka.security_protocol is {self.security_protocol}"
            )
        if not sasl and self.sasl_mechanism:
            msg = f"{self.sasl_mechanism} needs kafka.security_protocol SASL_SSL or SASL_PLAINTEXT"
            raise KeyedValueError("kafka.sasl_mechanism", msg)
        if self.sasl_mechanism in {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}:
            for key, value in (
                ("sasl_username", self.sasl_username),
                ("sasl_password", self.sasl_password.get_secret_value()),
            ):
                if not value:
                    raise KeyedValueError(f"kafka.{key}", f"required with kafka.sasl_mechanism {self.sasl_mechanism}")
        if self.sasl_mechanism == "OAUTHBEARER" and ":" not in self.sasl_oauth_token_provider:
            msg = 'required with OAUTHBEARER, as "module:attribute"'
            raise KeyedValueError("kafka.sasl_oauth_token_provider", msg)
        if bool(self.ssl_certfile) != bool(self.ssl_keyfile):
            raise KeyedValueError("kafka.ssl_keyfile", "kafka.ssl_certfile and kafka.ssl_keyfile go together")
        return self

    @field_validator("bootstrap")
    @classmethod
    def _host_port_list(cls, value: str) -> str:
        for address in value.split(","):
            host, _, port = address.strip().rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:  # noqa: PLR2004
                msg = f"expected HOST:PORT[,HOST:PORT...], got {value!r}"
                raise ValueError(msg)
        return value


class MarketoSettings(_Section):
    """Which Marketo API, where, and its credentials: SOAP (`endpoint`, `user_id`, `secret_key`) or REST."""

    api: Literal["soap", "rest"] = "soap"
    endpoint: str = "http://127.0.0.1:8089/soap/mktows/2_2"
    user_id: str = "demo_user"
    secret_key: SecretStr = SecretStr("demo-secret-key")
    # REST: the instance's base URL (Admin > Web Services > REST API, without /rest), the LaunchPoint service's
    # client id and secret, the custom dedupe field holding ForeignSysPersonId, and workspace -> lead partition.
    rest_endpoint: str = ""
    client_id: str = ""
    client_secret: SecretStr = SecretStr("")
    fsp_field: str = ""
    partitions: dict[str, str] = Field(default_factory=dict)
    dedup_enabled: bool = True
    timeout_s: Annotated[float, Field(gt=0)] = 30.0
    max_response_bytes: PositiveInt = 4 * 1024 * 1024

    @model_validator(mode="before")
    @classmethod
    def _read_secret_files(cls, data: Any) -> Any:  # noqa: ANN401 - raw input
        return _secrets_from_files(data, ("secret_key", "client_secret"), "marketo")

    @field_validator("endpoint")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            msg = f"expected an http:// or https:// URL, got {value!r}"
            raise ValueError(msg)
        return value

    @field_validator("rest_endpoint")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if not value:
            return value
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.netloc or parts.query or parts.fragment:
            msg = f"expected the instance's base URL, https://<munchkin id>.mktorest.com, got {value!r}"
            raise ValueError(msg)
        if parts.path.rstrip("/"):
            msg = f"expected the base URL without a path (no /rest or /identity), got {value!r}"
            raise ValueError(msg)
        return value.rstrip("/")

    @field_validator("fsp_field")
    @classmethod
    def _field_name(cls, value: str) -> str:
        if value and not _REST_FIELD.match(value):
            msg = f"expected a REST field name (a letter, then letters, digits or _), got {value!r}"
            raise ValueError(msg)
        return value

    @field_validator("partitions")
    @classmethod
    def _partition_names(cls, value: dict[str, str]) -> dict[str, str]:
        for workspace, partition in value.items():
            if not workspace.strip() or not partition.strip():
                msg = "expected workspace name -> lead partition name, both non-empty"
                raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _rest_needs(self) -> MarketoSettings:
        if self.api != "rest":
            return self
        for key, value in (
            ("rest_endpoint", self.rest_endpoint),
            ("client_id", self.client_id),
            ("client_secret", self.client_secret.get_secret_value()),
        ):
            if not value.strip():
                raise KeyedValueError(f"marketo.{key}", 'required when marketo.api is "rest"')
        return self


class IngestSettings(_Section):
    """How much is read ahead of Marketo."""

    max_pending_events: PositiveInt = 50_000
    max_pending_bytes: Annotated[int, Field(ge=1024 * 1024)] = 16 * 1024 * 1024
    max_poll_records: PositiveInt = 2_000


class DedupeSettings(_Section):
    """How long events of one lead are merged before the record moves on."""

    window_ms: NonNegativeInt = 1000
    max_record_events: Annotated[int, Field(gt=0, le=10_000)] = 500
    max_linked_identities: PositiveInt = 50_000


class BatchSettings(_Section):
    """How full a call gets and how long a partial one waits."""

    max_wait_ms: NonNegativeInt = 500
    max_leads: Annotated[int, Field(gt=0, le=300)] = 300
    max_mobjects: Annotated[int, Field(gt=0, le=100)] = 100
    max_bytes: Annotated[int, Field(ge=64 * 1024)] = 1024 * 1024


class DeliverSettings(_Section):
    """Concurrency, Marketo's limits, and the retry policy."""

    max_concurrency: PositiveInt = 10
    calls_per_20s: PositiveInt = 100
    daily_quota: PositiveInt = 10_000  # SOAP calls a day
    rest_daily_quota: PositiveInt = 50_000  # REST calls a day (Marketo's default subscription)
    max_attempts: PositiveInt = 8
    backoff_base_ms: PositiveInt = 200
    backoff_max_ms: PositiveInt = 30_000
    access_retry_s: Annotated[float, Field(gt=0)] = 30.0
    # The limits above are the Marketo instance's: the consumer group splits them among its members and counts
    # the day's calls together in kafka.budget_topic. False: this process alone uses every one of them.
    shared_budget: bool = True


class HttpSettings(_Section):
    """The operations endpoint: /metrics, /healthz, /readyz."""

    port: Annotated[int, Field(ge=0, lt=65536)] = 9108


class ServiceSettings(_Section):
    """Lifecycle: commits, drains on shutdown and rebalance."""

    commit_interval_ms: PositiveInt = 1_000
    drain_deadline_s: Annotated[float, Field(gt=0)] = 30.0
    rebalance_drain_s: Annotated[float, Field(gt=0)] = 10.0


class Settings(BaseSettings):
    """Every setting of the service, one section per stage."""

    model_config = SettingsConfigDict(
        env_prefix="PIPELINE_", env_nested_delimiter="__", frozen=True, extra="forbid", case_sensitive=False
    )

    kafka: KafkaSettings = KafkaSettings()
    marketo: MarketoSettings = MarketoSettings()
    ingest: IngestSettings = IngestSettings()
    dedupe: DedupeSettings = DedupeSettings()
    batch: BatchSettings = BatchSettings()
    deliver: DeliverSettings = DeliverSettings()
    http: HttpSettings = HttpSettings()
    service: ServiceSettings = ServiceSettings()

    def masked(self) -> dict[str, Any]:
        """The effective settings with every secret replaced, for the start-up log."""
        return self.model_dump(mode="json")  # SecretStr dumps as '**********'


def _describe(error: Any) -> str:  # noqa: ANN401 - pydantic's ErrorDetails is a TypedDict
    key = ".".join(str(part) for part in error["loc"])
    message = error["msg"]
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, KeyedValueError):
        return f"config key {cause.key}: {cause}"
    if key.endswith(("secret_key", "client_secret", "sasl_password")) or error["type"] == "extra_forbidden":
        return f"config key {key}: {message}"
    return f"config key {key}: {message} (got {error['input']!r})"


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:  # noqa: ANN401
    """Settings from `path` (default config/pipeline.toml when present), the environment, then `overrides`.

    Raises ConfigError naming the first wrong key.
    """
    toml_file = path if path is not None else (DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.exists() else None)
    if path is not None and not path.is_file():
        msg = f"config file {path} does not exist"
        raise ConfigError(msg)
    if toml_file is not None:
        try:
            tomllib.loads(toml_file.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            msg = f"config file {toml_file} is not valid TOML: {exc}"
            raise ConfigError(msg) from exc

    class _FromFile(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            del dotenv_settings, file_secret_settings
            sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
            if toml_file is not None:
                sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
            return tuple(sources)

    try:
        return _FromFile(**overrides)
    except ValidationError as exc:
        raise ConfigError("; ".join(_describe(error) for error in exc.errors())) from exc
