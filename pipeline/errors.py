"""The error taxonomy: every error says what the pipeline must do with the work that raised it."""

from __future__ import annotations


class PipelineError(Exception):
    """Root of every error the pipeline raises on purpose; `code` is Marketo's code for it, when it gave one.

    `counted` says whether Marketo counts the call that drew it against its rate limit and daily quota (it does not
    count an expired token, a time-out on its side, a system error: error-codes.md).
    """

    code: str | None = None
    counted: bool = True


class RetryableError(PipelineError):
    """The same work may succeed later: retry with capped backoff (after `retry_after_s` when given).

    `reason` names the cause as a bounded metric label. `pauses_sending` says the cause is the client's, not
    the call's (credentials, quota): every call waits until Marketo accepts us again, and none spends its
    retry budget meanwhile.
    """

    reason: str = "retryable"
    pauses_sending: bool = False
    counts_as_attempt: bool = True  # false: sent again at once, without spending the budget (a renewed token)

    def __init__(self, message: str, *, retry_after_s: float | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        if reason is not None:
            self.reason = reason


class PermanentError(PipelineError):
    """This record can never succeed as it is: result FAILED, dead-letter it, move on.

    For a call, `splits` says whether splitting it can pin the refusal on some record (false: the request itself
    is refused, and every record of it fails).
    """

    splits: bool = True
    # Whether the same refusal on batch after batch says Marketo refuses everything (then sending pauses), rather
    # than something about these records or their call's parameters.
    refuses_everything: bool = True


class FatalError(PipelineError):
    """The service cannot continue: stop without committing."""


class ConfigError(FatalError):
    """A configuration value is missing or wrong; the message names the key."""


def fatal_in(group: BaseExceptionGroup[BaseException]) -> FatalError | None:
    """The first FatalError among a task group's failures (however nested), so its message can be shown alone."""
    for exc in group.exceptions:
        found = fatal_in(exc) if isinstance(exc, BaseExceptionGroup) else exc
        if isinstance(found, FatalError):
            return found
    return None


def describe_exception(exc: BaseException, limit: int = 1000) -> str:
    """`Type: message`, at most `limit` characters: what a dead letter's `dlq.error` says of an unforeseen error."""
    return f"{type(exc).__name__}: {exc}"[:limit]
