"""Structured logs: JSON, one event per line, emails and cookies masked, secrets never written."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, Final, TextIO

import structlog

_SECRET_KEYS: Final = frozenset({"secret_key", "signature", "requestSignature", "password", "authorization"})
_MASKED_KEYS: Final = frozenset({"email", "Email", "cookie", "marketoCookie", "MarketoCookie"})
_EMAIL: Final = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+)")
# A precedence key or text that carries a Munchkin cookie: `cookie:id:561-HYG-937&token:...`.
_COOKIE: Final = re.compile(r"(cookie:)[^\s|\"']+")
_MAX_DEPTH: Final = 8


def mask_email(text: str) -> str:
    """`ada@example.com` -> `a***@example.com`, wherever an address appears in `text`."""
    return _EMAIL.sub(r"\1***@\2", text)


def mask_text(text: str) -> str:
    """Every email address and every `cookie:` key in `text` masked."""
    if "@" in text:
        text = mask_email(text)
    if "cookie:" in text:
        text = _COOKIE.sub(r"\1***", text)
    return text


def mask_value(value: str) -> str:
    """Keep a hint of a cookie or identifier, never the whole of it."""
    return f"{value[:4]}***" if len(value) > 8 else "***"  # noqa: PLR2004


def _masked(key: str, value: object, depth: int = 0) -> object:
    """`value` with secrets redacted and personal data masked, however deep it sits in lists and mappings."""
    if key in _SECRET_KEYS:
        return "[redacted]"
    if isinstance(value, str):
        if key in _MASKED_KEYS:
            return mask_email(value) if "@" in value else mask_value(value)
        return mask_text(value)
    if depth >= _MAX_DEPTH:
        return value if isinstance(value, int | float | bool) or value is None else "[too deep to log]"
    if isinstance(value, Mapping):
        return {str(k): _masked(str(k), v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_masked(key, item, depth + 1) for item in value]
    if isinstance(value, int | float | bool) or value is None:
        return value
    return mask_text(str(value))  # anything else is logged as its text, masked like text


def _mask(_logger: object, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    # Runs after the exception is formatted, so an exception's text is masked like any other.
    for key in list(event):
        event[key] = _masked(key, event[key])
    return event


# What aiokafka logs at ERROR while a group or a topic is being set up, and which resolves itself in a moment: a
# coordinator not elected yet, a leader not known yet. Reported as warnings, so that errors mean something to fix.
_TRANSIENT: Final = ("GroupCoordinatorNotAvailableError", "NotLeaderForPartitionError", "Marking the coordinator dead")


def _transient_startup(record: logging.LogRecord) -> bool:
    if record.levelno >= logging.ERROR and record.name.startswith("aiokafka"):
        message = record.getMessage()
        if any(marker in message for marker in _TRANSIENT):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
    return True


def configure_logging(level: str = "info", stream: TextIO | None = None) -> None:
    """Route structlog, and the standard library's logging (aiokafka, aiohttp), to `stream` (stdout) as JSON lines."""
    out = stream or sys.stdout
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        _mask,
    ]
    numeric = logging.getLevelNamesMapping()[level.upper()]
    structlog.configure(
        processors=[*shared, structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,  # logging is per batch, not per event: keep it reconfigurable
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    handler.addFilter(_transient_startup)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # Libraries are chatty at info; their warnings and errors are what an operator needs.
    root.setLevel(max(numeric, logging.WARNING))
