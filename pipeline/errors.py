"""The error taxonomy: every error says what the pipeline must do with the work that raised it."""

from __future__ import annotations


class PipelineError(Exception):
    """Root of every error the pipeline raises on purpose."""


class RetryableError(PipelineError):
    """The same work may succeed later: retry with capped backoff (after `retry_after_s` when given)."""

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class PermanentError(PipelineError):
    """This record can never succeed as it is: result FAILED, dead-letter it, move on."""


class FatalError(PipelineError):
    """The service cannot continue: stop without committing."""


class ConfigError(FatalError):
    """A configuration value is missing or wrong; the message names the key."""
