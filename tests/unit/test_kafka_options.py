"""A secured cluster's settings: checked at start, naming the key, and the same options for every Kafka client."""

from __future__ import annotations

import re
import ssl
from pathlib import Path

import pytest
from aiokafka.abc import AbstractTokenProvider

from pipeline.config import KafkaSettings, load_settings
from pipeline.errors import ConfigError
from pipeline.kafka import client_options

SCRAM = {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "sasl_username": "svc"}


class StaticToken(AbstractTokenProvider):  # type: ignore[misc]
    async def token(self) -> str:
        return "a-token"


def test_a_bootstrap_list_alone_is_a_plaintext_client() -> None:
    assert client_options("127.0.0.1:9092") == {"bootstrap_servers": "127.0.0.1:9092"}
    assert client_options(KafkaSettings())["security_protocol"] == "PLAINTEXT"


def test_sasl_over_tls_gives_every_client_the_credentials_and_a_verifying_tls_context() -> None:
    options = client_options(KafkaSettings(**SCRAM, sasl_password="pw"))
    assert (options["sasl_mechanism"], options["sasl_plain_username"], options["sasl_plain_password"]) == (
        "SCRAM-SHA-512",
        "svc",
        "pw",
    )
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_REQUIRED, True)


def test_hostname_checks_can_be_turned_off_for_brokers_known_by_address() -> None:
    options = client_options(KafkaSettings(security_protocol="SSL", ssl_check_hostname=False))
    assert options["ssl_context"].check_hostname is False
    assert "sasl_mechanism" not in options


def test_oauthbearer_loads_the_token_provider_it_names() -> None:
    kafka = KafkaSettings(
        security_protocol="SASL_SSL",
        sasl_mechanism="OAUTHBEARER",
        sasl_oauth_token_provider="tests.unit.test_kafka_options:StaticToken",
    )
    assert isinstance(client_options(kafka)["sasl_oauth_token_provider"], StaticToken)
    with pytest.raises(ConfigError, match=r"kafka\.sasl_oauth_token_provider"):
        client_options(kafka.model_copy(update={"sasl_oauth_token_provider": "no.such.module:Provider"}))


@pytest.mark.parametrize(
    ("kafka", "key"),
    [
        ({"security_protocol": "SASL_SSL"}, "kafka.sasl_mechanism"),
        ({"sasl_mechanism": "PLAIN"}, "kafka.sasl_mechanism"),
        (SCRAM, "kafka.sasl_password"),
        ({**SCRAM, "sasl_username": "", "sasl_password": "pw"}, "kafka.sasl_username"),
        ({"security_protocol": "SASL_SSL", "sasl_mechanism": "OAUTHBEARER"}, "kafka.sasl_oauth_token_provider"),
        ({"security_protocol": "SSL", "ssl_cafile": "/no/such/ca.pem"}, "kafka.ssl_cafile"),
        ({"security_protocol": "SASL_TLS"}, "kafka.security_protocol"),
        ({"sasl_password_file": "/no/such/secret"}, "kafka.sasl_password_file"),
    ],
)
def test_an_incomplete_or_wrong_security_setting_stops_start_up_naming_its_key(kafka: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"config key {key}")):
        load_settings(kafka=kafka)


def test_the_password_comes_from_a_mounted_file_and_never_shows(tmp_path: Path) -> None:
    secret = tmp_path / "kafka-password"
    secret.write_text("from-the-secret\n")
    settings = load_settings(kafka={**SCRAM, "sasl_password_file": str(secret)})
    assert settings.kafka.sasl_password.get_secret_value() == "from-the-secret"
    assert "from-the-secret" not in str(settings.masked())


def test_marketo_secrets_come_from_files_too(tmp_path: Path) -> None:
    secret = tmp_path / "client-secret"
    secret.write_text("rest-secret")
    settings = load_settings(marketo={"client_secret_file": str(secret)})
    assert settings.marketo.client_secret.get_secret_value() == "rest-secret"
