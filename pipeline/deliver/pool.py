"""Delivering batches: retries with backoff, the governor, pauses for access faults, splits to pin rejections."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog

from pipeline.batch.batcher import Batch
from pipeline.deliver.access import AccessGate
from pipeline.deliver.backoff import backoff_s
from pipeline.deliver.client import CallRejectedError, TransportError
from pipeline.deliver.governor import RateGovernor
from pipeline.errors import RetryableError
from pipeline.marketo.envelope import (
    SoapRequest,
    UnencodableRecordError,
    sync_lead_request,
    sync_mobjects_request,
    sync_multiple_leads_request,
)
from pipeline.marketo.fault import AccessFaultError, RejectedFaultError, TransientFaultError
from pipeline.marketo.response import RecordOutcome
from pipeline.metrics import Metrics
from pipeline.records import (
    DeadLetterReason,
    Operation,
    Record,
    RecordError,
    RecordResult,
    RecordStatus,
    SyncOperation,
)

log = structlog.get_logger()

UNKNOWN_FIELD_CODE = "20105"
# Marketo's text for 20105, e.g. "syncLead operation failed: unknown fields for import: pants (20105)".
_UNKNOWN_FIELDS = re.compile(r"unknown fields for import:\s*([^()]+?)\s*(?:\(\d+\))?\s*$")


class Caller(Protocol):
    """One attempt of one call (MarketoClient, or a stand-in in unit tests)."""

    async def call(self, request: SoapRequest, *, expected: int) -> list[RecordOutcome]:
        """Outcomes for `expected` records, or the classified error."""
        ...


@dataclass(frozen=True, slots=True)
class DeliverPolicy:
    """How hard to try."""

    max_attempts: int
    backoff_base_s: float
    backoff_max_s: float
    access_retry_s: float
    dedup_enabled: bool = True


class RetriesExhaustedError(Exception):
    """The call failed `attempts` times for transient reasons."""

    def __init__(self, attempts: int, last: Exception) -> None:
        super().__init__(f"retries exhausted after {attempts} attempts: {last}")
        self.attempts = attempts
        self.last = last


class _RejectedError(Exception):
    def __init__(self, attempts: int, code: str | None, message: str) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.code = code
        self.message = message


def build_request(
    operation: Operation, records: Sequence[Record], mobject_operation: SyncOperation | None, *, dedup_enabled: bool
) -> SoapRequest:
    """The body of the call that carries `records`."""
    if operation is Operation.SYNC_MOBJECTS:
        mobjects = [r.mobject for r in records if r.mobject is not None]
        return sync_mobjects_request(mobjects, operation=mobject_operation or SyncOperation.UPSERT)
    leads = [r.lead for r in records if r.lead is not None]
    if operation is Operation.SYNC_LEAD:
        record = records[0]
        return sync_lead_request(leads[0], return_lead=record.return_lead, workspace=record.workspace)
    return sync_multiple_leads_request(leads, dedup_enabled=dedup_enabled)


def _carrying_unknown_fields(records: Sequence[Record], message: str) -> list[Record]:
    """The records with an attribute named in a 20105 fault ("unknown fields for import: A, B"), if it names any."""
    named = _UNKNOWN_FIELDS.search(message)
    if named is None:
        return []
    fields = {name.strip().casefold() for name in named.group(1).split(",") if name.strip()}
    return [
        record
        for record in records
        if record.lead is not None and any(name.casefold() in fields for name, _ in record.lead.attributes)
    ]


def _result(record: Record, outcome: RecordOutcome, attempts: int) -> RecordResult:
    if outcome.status is not RecordStatus.FAILED:
        return RecordResult(record, outcome.status, attempts, outcome.lead_id, outcome.mobject_id, None, outcome.lead)
    return RecordResult(
        record=record,
        status=outcome.status,
        attempts=attempts,
        lead_id=outcome.lead_id,
        mobject_id=outcome.mobject_id,
        error=RecordError(outcome.error_code, outcome.error or "Marketo reported FAILED"),
        lead_data=outcome.lead,
        dead_letter=DeadLetterReason.MARKETO_REJECTED,
    )


def failed_result(
    record: Record, reason: DeadLetterReason, attempts: int, code: str | None, message: str
) -> RecordResult:
    """A FAILED result that dead-letters the record's events for `reason`."""
    return RecordResult(record, RecordStatus.FAILED, attempts, error=RecordError(code, message), dead_letter=reason)


class BatchDelivery:
    """Takes one batch to its end: a result for every record, whatever Marketo does."""

    def __init__(
        self, caller: Caller, governor: RateGovernor, access: AccessGate, policy: DeliverPolicy, metrics: Metrics
    ) -> None:
        self._caller = caller
        self._governor = governor
        self._access = access
        self._policy = policy
        self._metrics = metrics

    async def deliver(self, batch: Batch) -> list[RecordResult]:
        """Results for every record of `batch`, in no particular order."""
        return await self._deliver(batch.operation, list(batch.records), batch.mobject_operation, prior_attempts=0)

    async def _deliver(
        self,
        operation: Operation,
        records: list[Record],
        mobject_operation: SyncOperation | None,
        *,
        prior_attempts: int,
    ) -> list[RecordResult]:
        results: list[RecordResult] = []
        while True:
            try:
                request = build_request(operation, records, mobject_operation, dedup_enabled=self._policy.dedup_enabled)
                break
            except UnencodableRecordError as exc:  # validation at ingest should have caught it; never a broken call
                bad = records.pop(exc.index)
                results.append(failed_result(bad, DeadLetterReason.INVALID_EVENT, prior_attempts, None, str(exc)))
                if not records:
                    return results
        self._metrics.batch_records.labels(operation.value).observe(len(records))
        try:
            outcomes, attempts = await self._send(request, len(records))
        except RetriesExhaustedError as exc:
            code = getattr(getattr(exc.last, "fault", None), "code", None)
            attempts = prior_attempts + exc.attempts
            return results + [
                failed_result(r, DeadLetterReason.RETRIES_EXHAUSTED, attempts, code, str(exc)) for r in records
            ]
        except _RejectedError as exc:
            attempts = prior_attempts + exc.attempts
            if len(records) == 1:
                return [
                    *results,
                    failed_result(records[0], DeadLetterReason.MARKETO_REJECTED, attempts, exc.code, exc.message),
                ]
            carrying = _carrying_unknown_fields(records, exc.message) if exc.code == UNKNOWN_FIELD_CODE else []
            if carrying:
                # Marketo named the attributes it does not know: the records carrying them fail, the others go on.
                log.info("batch_unknown_fields", operation=operation.value, records=len(records), failed=len(carrying))
                failing = {id(r) for r in carrying}
                results += [
                    failed_result(r, DeadLetterReason.MARKETO_REJECTED, attempts, exc.code, exc.message)
                    for r in carrying
                ]
                rest = [r for r in records if id(r) not in failing]
                if rest:
                    results += await self._deliver(operation, rest, mobject_operation, prior_attempts=attempts)
                return results
            # A whole-call rejection: halve the batch until the record that causes it stands alone.
            middle = len(records) // 2
            log.info("batch_split", operation=operation.value, records=len(records), code=exc.code)
            for half in (records[:middle], records[middle:]):
                results += await self._deliver(operation, half, mobject_operation, prior_attempts=attempts)
            return results
        return results + [_result(r, o, prior_attempts + attempts) for r, o in zip(records, outcomes, strict=True)]

    async def _send(self, request: SoapRequest, expected: int) -> tuple[list[RecordOutcome], int]:
        """Outcomes and the attempts they took; raises RetriesExhaustedError or _RejectedError."""
        operation = request.operation.value
        attempts = 0
        probing = False
        while True:
            if not probing:
                await self._access.wait_open()
            self._metrics.governor_wait.inc(await self._governor.acquire())
            self._metrics.daily_quota_remaining.set(self._governor.quota_remaining)
            attempts += 1
            started = time.monotonic()
            self._metrics.requests_in_flight.inc()
            try:
                outcomes = await self._caller.call(request, expected=expected)
            except AccessFaultError as exc:
                self._observe(operation, "access_denied", started)
                # Credentials or quota: no amount of retrying this call fixes it. Pause everyone, retry slowly,
                # and do not spend the call's retry budget.
                attempts -= 1
                probing = True
                self._access.close(str(exc))
                self._metrics.marketo_access.set(0)
                log.warning("marketo_access_refused", operation=operation, error=str(exc))
                await asyncio.sleep(self._policy.access_retry_s)
                continue
            except (RejectedFaultError, CallRejectedError) as exc:
                self._observe(operation, "rejected", started)
                code = exc.fault.code if isinstance(exc, RejectedFaultError) else None
                raise _RejectedError(attempts, code, str(exc)) from exc
            except RetryableError as exc:
                reason = self._retry_reason(exc)
                self._observe(operation, reason, started)
                if attempts >= self._policy.max_attempts:
                    raise RetriesExhaustedError(attempts, exc) from exc
                self._metrics.retries.labels(operation, reason).inc()
                delay = exc.retry_after_s
                if delay is None:
                    delay = backoff_s(attempts, base_s=self._policy.backoff_base_s, cap_s=self._policy.backoff_max_s)
                await asyncio.sleep(delay)
                continue
            finally:
                self._metrics.requests_in_flight.dec()
            self._observe(operation, "ok", started)
            if not self._access.is_open:
                log.info("marketo_access_restored", operation=operation)
                self._access.open()
                self._metrics.marketo_access.set(1)
            return outcomes, attempts

    @staticmethod
    def _retry_reason(exc: RetryableError) -> str:
        if isinstance(exc, TransientFaultError):
            return f"fault_{exc.fault.code or 'unknown'}"
        if isinstance(exc, TransportError):
            return exc.reason
        return "bad_response"

    def _observe(self, operation: str, outcome: str, started: float) -> None:
        self._metrics.requests.labels(operation, outcome).inc()
        self._metrics.request_duration.labels(operation).observe(time.monotonic() - started)


class DeliveryPool:
    """`concurrency` workers taking batches from a bounded queue; each batch's results go to `sink`."""

    def __init__(
        self,
        delivery: BatchDelivery,
        concurrency: int,
        sink: Callable[[list[RecordResult]], Awaitable[None]],
    ) -> None:
        self._delivery = delivery
        self._concurrency = concurrency
        self._sink = sink
        self._queue: asyncio.Queue[Batch | None] = asyncio.Queue(maxsize=concurrency * 2)
        self.busy = 0

    @property
    def queued(self) -> int:
        """Batches waiting for a worker."""
        return self._queue.qsize()

    async def submit(self, batch: Batch) -> None:
        """Queue `batch`; waits while the queue is full (backpressure)."""
        await self._queue.put(batch)

    async def close(self) -> None:
        """Let the workers finish what is queued, then stop."""
        for _ in range(self._concurrency):
            await self._queue.put(None)

    async def run(self) -> None:
        """The workers, until `close`."""
        async with asyncio.TaskGroup() as group:
            for _ in range(self._concurrency):
                group.create_task(self._work())

    async def _work(self) -> None:
        while (batch := await self._queue.get()) is not None:
            self.busy += 1
            try:
                results = await self._delivery.deliver(batch)
                await self._sink(results)
            finally:
                self.busy -= 1
