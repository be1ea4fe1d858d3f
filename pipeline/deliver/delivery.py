"""Taking one batch to its end: retries with backoff, the governor, pauses for access faults, splits to pin rejections.

What an error means is carried by the error (pipeline.errors): a RetryableError is tried again after a backoff (at
once and without spending the budget when it does not `count_as_attempt`, as a renewed token), or, when it
`pauses_sending`, pauses every call at the access gate without spending the call's budget; a PermanentError rejects
the call as it is, and the split policy (deliver.split) says which records fail, unless it `splits` not (the
request is at fault, not a record). A call Marketo does not count (`counted` false) gives its governor slot back.
The API itself is the transport's (deliver.transport): SOAP or REST.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import structlog

from pipeline.deliver.access import AccessGate
from pipeline.deliver.backoff import backoff_s
from pipeline.deliver.clock import ClockCheck
from pipeline.deliver.governor import RateGovernor
from pipeline.deliver.split import Split, split_rejected
from pipeline.deliver.transport import FollowUp, Transport
from pipeline.errors import PermanentError, PipelineError, RetryableError
from pipeline.marketo.soap.fault import RequestExpiredError
from pipeline.metrics import Metrics
from pipeline.records import (
    Batch,
    CallName,
    DeadLetterReason,
    Record,
    RecordError,
    RecordOutcome,
    RecordResult,
    RecordStatus,
    Route,
)

log = structlog.get_logger()


@dataclass(frozen=True, slots=True)
class DeliverPolicy:
    """How hard to try."""

    max_attempts: int
    backoff_base_s: float
    backoff_max_s: float


CALL_FAULTS_BEFORE_PAUSE: Final = 3  # batches in a row rejected as a whole, for one code, before sending pauses
MAX_RENEWALS_PER_ATTEMPT: Final = 2  # token renewals a call may take for free before one counts as an attempt


class CallAbandonedError(PipelineError):
    """Records of the call were given up (their partition revoked) before the next attempt; `attempts` so far."""

    def __init__(self, attempts: int) -> None:
        super().__init__(f"records abandoned after {attempts} attempts")
        self.attempts = attempts


def abandoned_result(record: Record, operation: CallName | None = None) -> RecordResult:
    """`record` is not sent: its partition went to another instance, which reads its events again."""
    return RecordResult(record, RecordStatus.FAILED, 0, abandoned=True, operation=operation)


def _never(_record: Record) -> bool:
    return False


class RetriesExhaustedError(PermanentError):
    """The call failed `attempts` times for transient reasons; `last` is the last of them."""

    def __init__(self, attempts: int, last: RetryableError) -> None:
        super().__init__(f"retries exhausted after {attempts} attempts: {last}")
        self.attempts = attempts
        self.last = last
        self.code = last.code


class BatchRejectedError(PermanentError):
    """Marketo rejected the call as a whole, after `attempts` attempts; `message` says why."""

    def __init__(self, attempts: int, cause: PermanentError) -> None:
        super().__init__(str(cause))
        self.attempts = attempts
        self.code = cause.code
        self.splits = cause.splits
        self.message = str(cause)

    def same_fault(self, other: BatchRejectedError) -> bool:
        """Whether `other` is the same refusal: the same code and the same words."""
        return (self.code, self.message) == (other.code, other.message)


@dataclass(frozen=True, slots=True)
class _Rejected:
    """A call rejected as a whole: the records it carried, why, the attempts so far, and results already known."""

    records: list[Record]
    error: BatchRejectedError
    attempts: int
    results: list[RecordResult]


def _log_split(route: Route, split: Split, records: int, code: str | None) -> None:
    if split.cause == "named":
        log.info("batch_unknown_fields", operation=route.operation.value, records=records, failed=len(split.failing))
    elif split.cause == "halved":
        log.info("batch_split", operation=route.operation.value, records=records, code=code)


def outcome_result(
    record: Record, outcome: RecordOutcome, attempts: int, operation: CallName | None = None
) -> RecordResult:
    """The result of `record` as Marketo's reply gave it; a FAILED one is dead-lettered as rejected."""
    if outcome.status is not RecordStatus.FAILED:
        return RecordResult(
            record,
            outcome.status,
            attempts,
            outcome.lead_id,
            outcome.mobject_id,
            None,
            outcome.lead,
            operation=operation,
            guid=outcome.guid,
        )
    return RecordResult(
        record=record,
        status=outcome.status,
        attempts=attempts,
        lead_id=outcome.lead_id,
        mobject_id=outcome.mobject_id,
        error=RecordError(outcome.error_code, outcome.error or "Marketo reported FAILED"),
        lead_data=outcome.lead,
        dead_letter=DeadLetterReason.MARKETO_REJECTED,
        operation=operation,
        guid=outcome.guid,
    )


def failed_result(  # noqa: PLR0917 - a result's every field
    record: Record,
    reason: DeadLetterReason,
    attempts: int,
    code: str | None,
    message: str,
    operation: CallName | None = None,
) -> RecordResult:
    """A FAILED result that dead-letters the record's events for `reason`."""
    return RecordResult(
        record,
        RecordStatus.FAILED,
        attempts,
        error=RecordError(code, message),
        dead_letter=reason,
        operation=operation,
    )


def _failed_all(
    records: Sequence[Record], error: RetriesExhaustedError | BatchRejectedError, attempts: int, route: Route
) -> list[RecordResult]:
    reason = (
        DeadLetterReason.RETRIES_EXHAUSTED
        if isinstance(error, RetriesExhaustedError)
        else DeadLetterReason.MARKETO_REJECTED
    )
    return [failed_result(r, reason, attempts, error.code, str(error), route.operation) for r in records]


class BatchDelivery:
    """Takes one batch to its end: a result for every record, whatever Marketo does."""

    def __init__(
        self,
        transport: Transport[Any],
        governor: RateGovernor,
        access: AccessGate,
        policy: DeliverPolicy,
        metrics: Metrics,
        *,
        clock: ClockCheck | None = None,
        abandon: Callable[[Record], bool] = _never,
    ) -> None:
        self._transport = transport
        self._governor = governor
        self._access = access
        self._policy = policy
        self._metrics = metrics
        self._clock = clock or ClockCheck()
        self._abandon = abandon
        self._prelude_lock = asyncio.Lock()
        self._call_faults: tuple[str | None, int] = (None, 0)  # the code of the last whole-call faults, and how many

    async def deliver(self, batch: Batch) -> list[RecordResult]:
        """Results for every record of `batch`, in no particular order."""
        return await self._deliver(batch.route, batch.records, prior_attempts=0)

    async def _deliver(self, route: Route, records: Sequence[Record], *, prior_attempts: int) -> list[RecordResult]:
        tried = await self._try(route, records, prior_attempts)
        if isinstance(tried, _Rejected):
            return tried.results + await self._after_rejection(route, tried)
        return tried

    async def _try(
        self, route: Route, records: Sequence[Record], prior_attempts: int
    ) -> list[RecordResult] | _Rejected:
        """One call's worth: every record's result, or the rejection of the call with the records it carried.

        Records given up meanwhile (their partition revoked) are taken out before every attempt, never sent again.
        """
        abandon, operation = self._abandon, route.operation
        results = [abandoned_result(r, operation) for r in records if abandon(r)]
        kept = [r for r in records if not abandon(r)]
        failed = await self._prelude(route, kept, prior_attempts)
        if failed is not None:
            return results + failed
        request, sendable, refused = self._encode(route, kept, prior_attempts)
        results += refused
        if request is None:
            return results
        self._metrics.batch_records.labels(operation.value).observe(len(sendable))
        try:
            outcomes, attempts = await self._send(request, sendable)
        except CallAbandonedError as exc:
            return results + await self._deliver(route, sendable, prior_attempts=prior_attempts + exc.attempts)
        except RetriesExhaustedError as exc:
            attempts = prior_attempts + exc.attempts
            results += [abandoned_result(r, operation) for r in sendable if abandon(r)]  # the next owner's to answer
            return results + _failed_all([r for r in sendable if not abandon(r)], exc, attempts, route)
        except BatchRejectedError as exc:
            results += [abandoned_result(r, operation) for r in sendable if abandon(r)]
            kept = [r for r in sendable if not abandon(r)]
            return _Rejected(kept, exc, prior_attempts + exc.attempts, results) if kept else results
        return results + await self._follow(route, request, sendable, outcomes, prior_attempts + attempts)

    async def _prelude(self, route: Route, records: list[Record], attempts: int) -> list[RecordResult] | None:
        """The call the transport needs before these records (REST: field names); their failures if it fails."""
        if not records or self._transport.prelude(records) is None:
            return None
        async with self._prelude_lock:  # one flight: the workers that need it too wait for it, then need it no more
            prelude = self._transport.prelude(records)
            if prelude is None:
                return None
            try:
                await self._send(prelude, [])
            except (RetriesExhaustedError, BatchRejectedError) as exc:
                log.warning("prelude_failed", operation=prelude.operation.value, error=str(exc))
                if not self._transport.prelude_failed():
                    return _failed_all(records, exc, attempts + exc.attempts, route)
        return None

    def _encode(
        self, route: Route, records: Sequence[Record], attempts: int
    ) -> tuple[Any, list[Record], list[RecordResult]]:
        """The call's body and the records it carries; a record the API cannot carry fails alone, never the call."""
        encoded = self._transport.encode(route, records)
        refused = [
            failed_result(
                records[r.index],
                DeadLetterReason.INVALID_EVENT if r.invalid else DeadLetterReason.MARKETO_REJECTED,
                attempts,
                r.code,
                r.message,
                route.operation,
            )
            for r in encoded.refused
        ]
        return encoded.request, [records[i] for i in encoded.sent], refused

    async def _follow(
        self,
        route: Route,
        request: Any,  # noqa: ANN401 - the transport's own request type
        records: list[Record],
        outcomes: list[RecordOutcome],
        attempts: int,
    ) -> list[RecordResult]:
        """The calls that follow a successful one (REST: cookies, leads asked back), and then every record's result."""
        settled: list[RecordOutcome | None] = list(outcomes)
        for follow in self._transport.follow_ups(request, records, outcomes):
            await self._follow_one(follow, records, settled)
        operation = route.operation
        return [
            abandoned_result(r, operation) if o is None else outcome_result(r, o, attempts, operation)
            for r, o in zip(records, settled, strict=True)
        ]

    async def _follow_one(self, follow: FollowUp, records: list[Record], settled: list[RecordOutcome | None]) -> None:
        """One follow-up, for the records it serves that are not given up.

        A record given up meanwhile (its partition revoked) gets no result; the follow-up goes again for the others.
        """
        settle = self._transport.settle
        while True:
            for position in follow.positions:
                if self._abandon(records[position]):
                    settled[position] = None
            live = [p for p in follow.positions if settled[p] is not None]
            if not live:
                return
            try:
                extra, _ = await self._send(follow.request, [records[p] for p in live])
            except CallAbandonedError:
                continue
            except (RetriesExhaustedError, BatchRejectedError) as exc:
                log.warning("follow_up_failed", operation=follow.request.operation.value, error=str(exc))
                for position in live:
                    settled[position] = settle(follow, settled[position], None, exc)  # type: ignore[arg-type]
                return
            break
        for position, answer in zip(follow.positions, extra, strict=True):
            if (outcome := settled[position]) is not None:
                settled[position] = settle(follow, outcome, answer, None)

    async def _after_rejection(self, route: Route, rejected: _Rejected) -> list[RecordResult]:
        """Fail the records the rejection is pinned on; send the others again, as the split policy says.

        When both halves of a split draw the very fault the whole call drew, one record of each is sent alone; if
        those draw it too, the fault is the call's, not a record's, and splitting further would only spend the
        day's quota (2n - 1 calls for n records): 5 calls decide it instead. Two poisoned records, one in each
        half, are told apart by the lone records, which go through. A fault that says the request is at fault,
        not a record (`splits` false), fails the call's records at once.
        """
        error, records = rejected.error, rejected.records
        if not error.splits:
            return self._rejected_as_a_call(route, [rejected])
        split = split_rejected(records, error.code, error.message)
        _log_split(route, split, len(records), error.code)
        results = _failed_all(split.failing, error, rejected.attempts, route)
        if split.cause != "halved":
            for group in split.again:
                results += await self._deliver(route, group, prior_attempts=rejected.attempts)
            return results
        halves = [await self._try(route, half, rejected.attempts) for half in split.again]
        same = [h for h in halves if isinstance(h, _Rejected) and h.error.same_fault(error)]
        if len(same) == len(halves):
            call_level, probed, halves_left = await self._alone(route, same)
            if call_level:
                return results + self._rejected_as_a_call(route, halves_left)
            results += probed
            halves = list(halves_left)
        for half in halves:
            results += half.results + await self._after_rejection(route, half) if isinstance(half, _Rejected) else half
        return results

    async def _alone(self, route: Route, halves: list[_Rejected]) -> tuple[bool, list[RecordResult], list[_Rejected]]:
        """The first record of each rejected half, sent alone.

        Returns whether each drew the fault too (then the fault is the call's), the results of those that did not,
        and the rejections left to act on.
        """
        call_level, results, left = True, [], []
        for half in halves:
            if len(half.records) == 1:
                left.append(half)  # sent alone already
                continue
            alone = await self._try(route, half.records[:1], half.attempts)
            left.append(_Rejected(half.records[1:], half.error, half.attempts, half.results))
            if isinstance(alone, _Rejected) and alone.error.same_fault(half.error):
                left.append(alone)
                continue
            call_level = False
            results += (
                alone.results + await self._after_rejection(route, alone) if isinstance(alone, _Rejected) else alone
            )
        return call_level, results, left

    def _rejected_as_a_call(self, route: Route, halves: list[_Rejected]) -> list[RecordResult]:
        """Every record of `halves` fails with the call's fault; the same fault on several batches pauses sending."""
        error = halves[0].error
        log.warning("marketo_rejects_the_call", operation=route.operation.value, code=error.code, error=error.message)
        if not error.refuses_everything or route.max_records == 1:
            return [r for h in halves for r in (*h.results, *_failed_all(h.records, h.error, h.attempts, route))]
        self._call_faults = (error.code, self._call_faults[1] + 1 if self._call_faults[0] == error.code else 1)
        if self._call_faults[1] >= CALL_FAULTS_BEFORE_PAUSE:
            self._access.pause(f"Marketo rejects every call with {error.code or 'an error'} ({error.message})")
        results = [r for h in halves for r in h.results]
        return results + [r for h in halves for r in _failed_all(h.records, h.error, h.attempts, route)]

    async def _send(self, request: Any, records: list[Record]) -> tuple[list[RecordOutcome], int]:  # noqa: ANN401
        """Outcomes and the attempts they took.

        Raises RetriesExhaustedError, BatchRejectedError, or CallAbandonedError when records of the call are given
        up before an attempt.
        """
        attempts = renewals = 0
        while True:
            attempts += 1
            try:
                return await self._attempt(request, records, attempts), attempts
            except RetryableError as exc:
                if not exc.counts_as_attempt and renewals < MAX_RENEWALS_PER_ATTEMPT:
                    renewals += 1  # a renewed token: at once, and not an attempt (twice; then it counts as one)
                    attempts -= 1
                    continue
                renewals = 0
                if isinstance(exc, RequestExpiredError):
                    self._clock.expired(exc.clock_skew_s, operation=request.operation.value)
                if attempts >= self._policy.max_attempts:
                    raise RetriesExhaustedError(attempts, exc) from exc
                self._metrics.retries.labels(request.operation.value, exc.reason).inc()
                delay = exc.retry_after_s
                if delay is None:
                    delay = backoff_s(attempts, base_s=self._policy.backoff_base_s, cap_s=self._policy.backoff_max_s)
                await asyncio.sleep(delay)
            except PermanentError as exc:
                raise BatchRejectedError(attempts, exc) from exc

    async def _attempt(self, request: Any, records: list[Record], attempt: int) -> list[RecordOutcome]:  # noqa: ANN401
        """One attempt Marketo lets us make: a refusal of access pauses all sending and is not an attempt."""
        operation = request.operation.value
        while True:
            await self._access.wait_open()  # or this call's turn to probe
            waited = await self._governor.acquire(given_up=lambda: any(map(self._abandon, records)))
            if waited is None:  # given up while this call waited: not sent again
                raise CallAbandonedError(attempt - 1)
            self._metrics.governor_wait.inc(waited)
            self._metrics.daily_quota_remaining.set(self._governor.quota_remaining)
            try:
                outcomes = await self._timed_call(request, len(records))
            except PipelineError as exc:
                if not exc.counted:
                    self._governor.refund()  # Marketo does not count it: neither do we
                if not isinstance(exc, RetryableError) or not exc.pauses_sending:
                    raise
                self._refused(exc, operation)
                continue
            finally:
                self._governor.release()
            self._access.accepted(operation=operation)
            self._clock.accepted()
            self._call_faults = (None, 0)
            return outcomes

    def _refused(self, exc: RetryableError, operation: str) -> None:
        """Marketo refuses this client: close the gate; a spent quota keeps it closed until Marketo's day turns."""
        self._access.refused(str(exc), operation=operation, after_s=exc.retry_after_s)
        if exc.reason == "quota":
            self._governor.spend_day()

    async def _timed_call(self, request: Any, expected: int) -> list[RecordOutcome]:  # noqa: ANN401
        """The call, counted and timed by its outcome: `ok`, `rejected`, or the retry reason."""
        operation = request.operation.value
        started = time.monotonic()
        outcome: str | None = None
        self._metrics.requests_in_flight.inc()
        try:
            outcomes = await self._transport.call(request, expected=expected)
            outcome = "ok"
        except RetryableError as exc:
            outcome = exc.reason
            raise
        except PermanentError:
            outcome = "rejected"
            raise
        finally:
            self._metrics.requests_in_flight.dec()
            if outcome is not None:
                self._metrics.requests.labels(operation, outcome).inc()
                self._metrics.request_duration.labels(operation).observe(time.monotonic() - started)
        return outcomes
