"""How every Kafka client of the service connects: the bootstrap servers and, for a secured cluster, TLS and SASL.

The consumer, the producer, the admin client, the topic readers, and the `topics`, `produce`, `replay` and `demo`
verbs all take a `KafkaTarget`: the `kafka` settings (secured as configured) or a bare HOST:PORT list (a plaintext
broker, as the tests' own tools use).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import ssl
from collections.abc import Iterator
from typing import Any, TypeAlias

from pipeline.config import KafkaSettings
from pipeline.errors import ConfigError

KafkaTarget: TypeAlias = KafkaSettings | str
_PASSWORD_MECHANISMS = frozenset({"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"})


def bootstrap_of(target: KafkaTarget) -> str:
    """The HOST:PORT list `target` names, for messages."""
    return target if isinstance(target, str) else target.bootstrap


def client_options(target: KafkaTarget) -> dict[str, Any]:
    """The aiokafka keyword arguments that reach `target`: bootstrap servers, security protocol, TLS, SASL."""
    if isinstance(target, str):
        return {"bootstrap_servers": target}
    options: dict[str, Any] = {"bootstrap_servers": target.bootstrap, "security_protocol": target.security_protocol}
    if target.security_protocol in {"SSL", "SASL_SSL"}:
        options["ssl_context"] = tls_context(target)
    mechanism = target.sasl_mechanism
    if mechanism:
        options["sasl_mechanism"] = mechanism
    if mechanism in _PASSWORD_MECHANISMS:
        options["sasl_plain_username"] = target.sasl_username
        options["sasl_plain_password"] = target.sasl_password.get_secret_value()
    if mechanism == "OAUTHBEARER":
        options["sasl_oauth_token_provider"] = token_provider(target.sasl_oauth_token_provider)
    return options


def tls_context(target: KafkaSettings) -> ssl.SSLContext:
    """TLS to the brokers: their certificates checked against `ssl_cafile` (or the system's CAs), ours when set."""
    try:
        context = ssl.create_default_context(cafile=target.ssl_cafile or None)
        if target.ssl_certfile:
            context.load_cert_chain(target.ssl_certfile, target.ssl_keyfile or None)
    except (OSError, ssl.SSLError) as exc:
        msg = f"config key kafka.ssl_cafile/ssl_certfile/ssl_keyfile: cannot use them: {exc}"
        raise ConfigError(msg) from exc
    context.check_hostname = target.ssl_check_hostname
    return context


def token_provider(path: str) -> Any:  # noqa: ANN401 - an aiokafka AbstractTokenProvider
    """The OAUTHBEARER token provider "module:attribute" names: an instance, or a class made with no arguments."""
    module_name, _, attribute = path.partition(":")
    try:
        found = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError) as exc:
        msg = f"config key kafka.sasl_oauth_token_provider: cannot load {path!r}: {exc}"
        raise ConfigError(msg) from exc
    return found() if isinstance(found, type) else found


class _Refusals(logging.Handler):
    """aiokafka says why a connection failed only in its log ("SaslAuthenticationFailed: ..."): keep the last."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.last: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "Unable connect to" in message or "Authentication" in message or "SSL" in message:
            self.last = message[:300]


@contextlib.contextmanager
def connection_refusals() -> Iterator[_Refusals]:
    """While inside, what aiokafka logs about connections refused (wrong credentials, TLS) is kept in `.last`."""
    handler = _Refusals()
    logger = logging.getLogger("aiokafka")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
