"""The composition root: the only module that knows every stage; the service's loops and lifecycle.

Data flow: EventSource -> decode -> Flow (window -> gate -> batcher) -> DeliveryPool -> OutcomePublisher,
which marks events answered in the OffsetBook; the committer commits what the book allows. What moves
records between window, gate and batcher is `pipeline.flow` (pure); this module runs it on the clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, Final

import aiohttp
import structlog
from aiokafka.errors import KafkaError

from pipeline._tasks import await_chains
from pipeline.config import Settings
from pipeline.deliver.access import AccessGate
from pipeline.deliver.budget import BUDGET_TOPIC_CONFIG, BudgetAssignor, DayLedger
from pipeline.deliver.clock import ClockCheck
from pipeline.deliver.delivery import BatchDelivery, DeliverPolicy
from pipeline.deliver.governor import RateGovernor
from pipeline.deliver.pool import DeliveryPool
from pipeline.deliver.rest import RestTransport
from pipeline.deliver.soap import SoapTransport
from pipeline.deliver.token import TokenSource
from pipeline.deliver.transport import Transport
from pipeline.errors import FatalError, fatal_in
from pipeline.flow import Flow, FlowLimits
from pipeline.ingest.admin import ensure_topics, max_message_bytes
from pipeline.ingest.consumer import EventSource
from pipeline.ingest.decode import decode_event, internal_error
from pipeline.marketo.rest.route import MAX_RECORDS_PER_CALL, RestRouting, rest_router
from pipeline.marketo.soap.route import soap_router
from pipeline.marketo.soap.signing import Credentials
from pipeline.metrics import Metrics, package_version
from pipeline.offsets import OffsetBook, PartitionId
from pipeline.ops.http import OpsServer
from pipeline.outcome.producer import MAX_BATCH_BYTES, MAX_REQUEST_BYTES, KafkaSink
from pipeline.outcome.publisher import OutcomePublisher
from pipeline.records import InvalidEvent, Record, RecordResult, Route

log = structlog.get_logger()

POLL_TIMEOUT_MS: Final = 100
TICK_S: Final = 0.05
RESUME_RATIO: Final = 0.8
LIVENESS_S: Final = 30.0
KAFKA_RETRY_FIRST_S: Final = 1.0  # a refused or absent Kafka at start is tried again after this, then twice as long
KAFKA_RETRY_MAX_S: Final = 60.0
REVOKE_MARGIN_S: Final = 1.0
RESULT_HEADROOM_BYTES: Final = 16 * 1024  # a result's fields but its event list (the error is cut at 4 KiB)
RESULT_BYTES_PER_EVENT: Final = 1100  # an event id (128 characters, escaped) and its source, at the most


@dataclass(frozen=True, slots=True)
class _Wiring:
    """The stages that need I/O, connected for one run."""

    source: EventSource
    sink: KafkaSink
    pool: DeliveryPool
    publisher: OutcomePublisher


def flow_limits(settings: Settings) -> FlowLimits:
    """The flow's windows and batch sizes, from the settings."""
    return FlowLimits(
        window_s=settings.dedupe.window_ms / 1000,
        max_wait_s=settings.batch.max_wait_ms / 1000,
        max_leads=settings.batch.max_leads,
        max_mobjects=settings.batch.max_mobjects,
        max_record_events=settings.dedupe.max_record_events,
        max_linked_identities=settings.dedupe.max_linked_identities,
        max_batch_bytes=settings.batch.max_bytes,
    )


def rest_routing(settings: Settings) -> RestRouting:
    """How records go to REST calls, from the settings."""
    m = settings.marketo
    return RestRouting(
        fsp_field=m.fsp_field or None,
        partitions=dict(m.partitions),
        dedup_enabled=m.dedup_enabled,
        max_leads=settings.batch.max_leads,
        max_objects=MAX_RECORDS_PER_CALL,
    )


def router(settings: Settings) -> Callable[[Record], Route]:
    """Which call carries each record, for the API the settings choose."""
    if settings.marketo.api == "rest":
        return rest_router(rest_routing(settings))
    return soap_router(max_leads=settings.batch.max_leads, max_mobjects=settings.batch.max_mobjects)


class Service:
    """One instance of the pipeline. Constructing it does no I/O; `run` does everything until `stop`."""

    def __init__(self, settings: Settings, *, metrics: Metrics | None = None, ops_host: str = "0.0.0.0") -> None:  # noqa: S104
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.metrics.build_info.labels(package_version(), settings.marketo.api).set(1)
        self.ops_host = ops_host
        self.ops_port: int | None = None
        self.book = OffsetBook()
        self.flow = Flow(flow_limits(settings), router(settings))
        self.access = AccessGate(settings.deliver.access_retry_s, on_change=self.metrics.marketo_access.set)
        self.clock = ClockCheck()
        rest = settings.marketo.api == "rest"
        d = settings.deliver
        self.governor = RateGovernor(
            calls_per_window=d.calls_per_20s,
            daily_quota=d.rest_daily_quota if rest else d.daily_quota,
            max_in_flight=d.max_concurrency,
        )
        # Shared: no call before the group says this instance's share (pipeline.deliver.budget).
        self.assignor = BudgetAssignor(d.calls_per_20s, d.max_concurrency) if d.shared_budget else None
        if self.assignor is not None:
            self.governor.limit(0, 0, at_once=True)
        self._ledger: DayLedger | None = None
        self._shared_yet = False  # whether a share came from the group yet
        self._publish_share()
        self.transport: Transport[Any] | None = None
        # Records out (sent, or on their way) when their partition was revoked: never sent again. By record, not by
        # partition: a partition given back later is a new ownership, whose records are new ones.
        self._abandoned: set[int] = set()
        self._wake = asyncio.Event()
        self._heartbeat = time.monotonic()
        self._merged_seen = 0
        self._wiring: _Wiring | None = None
        self._kafka_problem: str | None = None  # why Kafka did not take the service's clients at start
        self.started = asyncio.Event()

    # --- health ------------------------------------------------------------------------------

    def alive(self) -> bool:
        """The event loop has ticked recently."""
        return time.monotonic() - self._heartbeat < LIVENESS_S

    def kafka_not_ready(self) -> list[str]:
        """Why the service's Kafka clients are not up (/readyz/kafka); empty when they are."""
        reasons = []
        wiring = self._wiring
        if wiring is None and self._kafka_problem is not None:
            reasons.append(f"Kafka: {self._kafka_problem}")
        if wiring is None:
            reasons.append("consumer not started")
        elif not wiring.sink.connected:
            reasons.append("producer not connected")
        return reasons

    def not_ready(self) -> list[str]:
        """Why the service is not doing its work now (/readyz); empty when it is."""
        reasons = []
        wiring = self._wiring
        if wiring is None and self._kafka_problem is not None:
            reasons.append(f"Kafka: {self._kafka_problem}")
        if wiring is None or not wiring.source.assignment:
            reasons.append("consumer has no partition assigned")
        if wiring is None or not wiring.sink.connected:
            reasons.append("producer not connected")
        if not self.access.is_open:
            reasons.append(f"Marketo refuses our calls: {self.access.reason}")
        if self.clock.problem is not None:
            reasons.append(self.clock.problem)
        if self.governor.quota_remaining == 0:
            reasons.append("daily Marketo quota used up")
        return reasons

    # --- lifecycle ---------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Consume, deliver and publish until `stop` is set; then drain under the deadline, commit, close."""
        async with AsyncExitStack() as stack:
            wiring = await self._wire(stack, stop)
            if wiring is None:
                log.info("service_stopped_before_kafka_answered", error=self._kafka_problem)
                return
            self._wiring = wiring
            log.info("service_started", settings=self.settings.masked(), ops_port=self.ops_port)
            self.started.set()
            try:
                await self._run_loops(self._wiring, stop)
                await self._commit()
            except ExceptionGroup as group:
                fatal = fatal_in(group)
                if fatal is None:
                    raise
                raise fatal from group  # the command line says what stopped the service, without a traceback
            finally:
                self._wiring = None
        log.info("service_stopped", pending=self.book.pending)

    async def _wire(self, stack: AsyncExitStack, stop: asyncio.Event) -> _Wiring | None:
        """Enter every resource on `stack`, in the order they close in reverse; None when `stop` came first."""
        s = self.settings
        session = await stack.enter_async_context(
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=s.deliver.max_concurrency * 2))
        )
        ops = OpsServer(
            host=self.ops_host,
            port=s.http.port,
            registry=self.metrics.registry,
            ready=self.not_ready,
            alive=self.alive,
            kafka_ready=self.kafka_not_ready,
        )
        self.ops_port = (await stack.enter_async_context(ops)).port  # /readyz says why while Kafka does not answer
        connected = await self._connect(stack, stop)
        if connected is None:
            return None
        sink, limits = connected
        publisher = OutcomePublisher(
            sink,
            self.book,
            self.metrics,
            results_topic=s.kafka.results_topic,
            dlq_topic=s.kafka.dlq_topic,
            max_result_bytes=limits[s.kafka.results_topic],
            max_letter_bytes=limits[s.kafka.dlq_topic],
        )
        pool = DeliveryPool(self._delivery(session), s.deliver.max_concurrency, self._on_results)
        source = EventSource(
            bootstrap=s.kafka,
            topic=s.kafka.input_topic,
            group_id=s.kafka.group_id,
            client_id=s.kafka.client_id,
            on_revoked=self._on_revoked,
            on_assigned=self._on_assigned,
            max_poll_records=s.ingest.max_poll_records,
            assignors=() if self.assignor is None else (self.assignor,),
        )
        return _Wiring(await stack.enter_async_context(source), sink, pool, publisher)

    async def _connect(self, stack: AsyncExitStack, stop: asyncio.Event) -> tuple[KafkaSink, dict[str, int]] | None:
        """The producer, once Kafka takes it.

        A broker away or credentials refused are said in /readyz and the logs, and tried again with a growing
        pause, rather than ending the process (a supervisor's restart would meet the same refusal: a crash loop).
        """
        s, pause = self.settings, KAFKA_RETRY_FIRST_S
        while True:
            limits = await self._message_limits()
            sink = KafkaSink(
                bootstrap=s.kafka,
                client_id=s.kafka.client_id,
                max_batch_bytes=min(MAX_BATCH_BYTES, *limits.values()),
                max_request_bytes=max(MAX_REQUEST_BYTES, *limits.values()),
            )
            attempt = AsyncExitStack()
            try:
                entered = await attempt.enter_async_context(sink)
                if s.deliver.shared_budget:  # the day's count of the group, read before any call
                    self._ledger = await attempt.enter_async_context(await self._day_ledger())
            except FatalError as exc:
                await attempt.aclose()
                self._kafka_problem = str(exc)
                log.error("kafka_refuses_or_unreachable", error=str(exc), retry_in_s=pause)  # noqa: TRY400 - no trace
            else:
                await stack.enter_async_context(attempt.pop_all())
                return entered, limits
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=pause)
            if stop.is_set():
                return None
            pause = min(pause * 2, KAFKA_RETRY_MAX_S)

    async def _day_ledger(self) -> DayLedger:
        """The budget topic's ledger (the topic made, compacted, when it is missing)."""
        k = self.settings.kafka
        configs = {k.budget_topic: BUDGET_TOPIC_CONFIG}
        try:
            await ensure_topics(k, [k.budget_topic], partitions=1, replication=None, configs=configs)
        except KafkaError as exc:
            raise FatalError(f"cannot make the budget topic {k.budget_topic}: {exc}") from exc
        return DayLedger(k, k.budget_topic, self.governor, client_id=k.client_id)

    async def _message_limits(self) -> dict[str, int]:
        """What the results and dead-letter topics take, as the broker says; the configured size where it is silent.

        Records are bounded to the events a result message can name.
        """
        k = self.settings.kafka
        found = await max_message_bytes(k, [k.results_topic, k.dlq_topic])
        limits = {topic: found.get(topic, k.max_message_bytes) for topic in (k.results_topic, k.dlq_topic)}
        log.info("message_limits", **limits)
        # A result names each event of its record: records hold no more events than a result message can carry.
        room = (limits[k.results_topic] - RESULT_HEADROOM_BYTES) // RESULT_BYTES_PER_EVENT
        self.flow.window.max_events = max(1, min(self.settings.dedupe.max_record_events, room))
        return limits

    def _transport(self, session: aiohttp.ClientSession) -> Transport[Any]:
        m = self.settings.marketo
        if m.api == "rest":
            tokens = TokenSource(
                session,
                f"{m.rest_endpoint}/identity/oauth/token",
                m.client_id,
                m.client_secret.get_secret_value(),
                timeout_s=m.timeout_s,
                on_fetch=self.metrics.access_tokens.inc,
            )
            return RestTransport(
                session,
                m.rest_endpoint,
                tokens,
                rest_routing(self.settings),
                timeout_s=m.timeout_s,
                max_response_bytes=m.max_response_bytes,
            )
        return SoapTransport(
            session,
            m.endpoint,
            Credentials(m.user_id, m.secret_key.get_secret_value()),
            timeout_s=m.timeout_s,
            max_response_bytes=m.max_response_bytes,
            dedup_enabled=m.dedup_enabled,
        )

    def _delivery(self, session: aiohttp.ClientSession) -> BatchDelivery:
        s = self.settings
        self.transport = self._transport(session)
        policy = DeliverPolicy(
            max_attempts=s.deliver.max_attempts,
            backoff_base_s=s.deliver.backoff_base_ms / 1000,
            backoff_max_s=s.deliver.backoff_max_ms / 1000,
        )
        return BatchDelivery(
            self.transport, self.governor, self.access, policy, self.metrics, clock=self.clock, abandon=self._given_up
        )

    async def _run_loops(self, wiring: _Wiring, stop: asyncio.Event) -> None:
        async with asyncio.TaskGroup() as group:
            pool = group.create_task(wiring.pool.run())
            helpers = [group.create_task(loop(wiring)) for loop in (self._tick, self._dispatch, self._commit_loop)]
            if self._ledger is not None:
                helpers.append(group.create_task(self._ledger.run()))
            await self._consume(wiring, stop)
            if await self._drain():
                await wiring.pool.close()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(pool), timeout=5.0)
            for task in (pool, *helpers):
                task.cancel()

    def _backpressure(self, source: EventSource) -> None:
        """Pause reading while too many events, or too many bytes of them, are read and not answered."""
        book, ingest = self.book, self.settings.ingest
        if book.pending >= ingest.max_pending_events or book.pending_bytes >= ingest.max_pending_bytes:
            source.pause()
        elif (
            book.pending <= ingest.max_pending_events * RESUME_RATIO
            and book.pending_bytes <= ingest.max_pending_bytes * RESUME_RATIO
        ):
            source.resume()

    async def _consume(self, wiring: _Wiring, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._backpressure(wiring.source)
            messages = await wiring.source.poll(POLL_TIMEOUT_MS)
            now = time.monotonic()
            invalid: list[InvalidEvent] = []
            for message in messages:
                self.book.consumed(message.source, len(message.value or b""))
                decoded = decode_event(message)
                if isinstance(decoded, InvalidEvent):
                    invalid.append(decoded)
                    continue
                try:
                    self.flow.add(decoded, now)
                except Exception as exc:  # noqa: BLE001 - the second wall: one event never stops the service
                    invalid.append(internal_error(message, exc))
            self.metrics.events_consumed.inc(len(messages))
            self._wake_dispatch()  # full batches go before the dead letters are acknowledged
            if invalid:
                await wiring.publisher.publish_invalid(invalid)
            self._release(now)

    async def _drain(self) -> bool:
        """Send everything now; wait until every consumed event is answered or the deadline passes."""
        deadline = time.monotonic() + self.settings.service.drain_deadline_s
        log.info("draining", pending=self.book.pending)
        self.flow.drain(time.monotonic())
        self._wake_dispatch()
        next_report = time.monotonic() + 1.0
        while self.book.pending > 0 and time.monotonic() < deadline:
            await asyncio.sleep(TICK_S)
            if time.monotonic() >= next_report:
                log.info("draining", **self.stage_sizes())
                next_report += 1.0
        if self.book.pending:
            log.warning("drain_deadline_passed", **self.stage_sizes(), waiting_in=await_chains())
            return False
        return True

    def stage_sizes(self) -> dict[str, object]:
        """Where the unanswered events are: for logs and for finding a stall."""
        wiring = self._wiring
        return {
            "pending": self.book.pending,
            **self.flow.sizes(),
            "pool_queued": wiring.pool.queued if wiring else 0,
            "pool_busy": wiring.pool.busy if wiring else 0,
            "marketo_access": self.access.is_open,
        }

    # --- the flow on the clock ---------------------------------------------------------------

    def _held(self) -> bool:
        """Whether partial batches may wait for the events that will fill them.

        They may while reading is paused by backpressure, or while a backlog of a full batch or more waits in the
        input (the first read after a pause finds the window empty, which alone would send every partial batch).
        """
        wiring = self._wiring
        if wiring is None:
            return False
        source = wiring.source
        return source.paused or source.behind >= self.settings.batch.max_leads

    def _release(self, now: float) -> None:
        self.flow.release(now, held=self._held())
        merged = self.flow.merged
        if merged > self._merged_seen:
            self.metrics.events_merged.inc(merged - self._merged_seen)
            self._merged_seen = merged
        self._wake_dispatch()

    def _wake_dispatch(self) -> None:
        if self.flow.ready:
            self._wake.set()

    async def _on_results(self, results: list[RecordResult]) -> None:
        if self._wiring is None:
            return  # the run ended; these records' events stay uncommitted and will be read again
        await self._wiring.publisher.publish_results(results)
        records = [result.record for result in results]
        self.flow.complete(records, time.monotonic())
        if self._abandoned:
            self._abandoned.difference_update(map(id, records))
        self._wake_dispatch()

    async def _dispatch(self, wiring: _Wiring) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self.flow.ready:
                await wiring.pool.submit(self.flow.take())

    async def _tick(self, _wiring: _Wiring) -> None:
        while True:
            self._heartbeat = time.monotonic()
            self._release(self._heartbeat)
            deadline = self.flow.next_deadline(held=self._held())
            wait = TICK_S if deadline is None else min(TICK_S, deadline - time.monotonic())
            await asyncio.sleep(max(wait, 0.001))

    # --- commits -----------------------------------------------------------------------------

    async def _commit_loop(self, wiring: _Wiring) -> None:
        interval = self.settings.service.commit_interval_ms / 1000
        while True:
            await asyncio.sleep(interval)
            await self._commit()
            await self._observe(wiring)

    async def _commit(self, partitions: list[PartitionId] | None = None) -> None:
        """Commit every watermark that moved (of `partitions`, or all)."""
        if self._wiring is None:
            return
        offsets = self.book.to_commit(partitions)
        if not offsets:
            return
        try:
            await self._wiring.source.commit(offsets)
        except Exception as exc:  # noqa: BLE001 - a failed commit is retried at the next interval
            log.warning("commit_failed", error=str(exc), partitions=len(offsets))
            self.metrics.commits_failed.inc()
            return
        self.book.committed(offsets)

    async def _observe(self, wiring: _Wiring) -> None:
        self.metrics.pending_events.set(self.book.pending)
        self.metrics.pending_bytes.set(self.book.pending_bytes)
        self.metrics.daily_quota_remaining.set(self.governor.quota_remaining)
        if self._ledger is not None:
            self.metrics.group_calls_today.set(self._ledger.group_calls_today())
        for partition, lag in (await wiring.source.lag()).items():
            self.metrics.consumer_lag.labels(str(partition)).set(lag)
        for tp, end in wiring.source.log_ends().items():
            committed = self.book.committed_offset(tp)
            if committed is not None:
                self.metrics.consumer_group_lag.labels(str(tp[1])).set(max(end - committed, 0))

    # --- rebalances --------------------------------------------------------------------------

    def _given_up(self, record: Record) -> bool:
        """Whether `record`'s partition was revoked while it was out: then it is not sent again."""
        return id(record) in self._abandoned

    async def _on_revoked(self, partitions: list[PartitionId]) -> None:
        """From now on nothing of `partitions` is started or retried.

        What is at Marketo is awaited, its answers published and committed; then the partitions are let go. The
        next owner reads the rest again.
        """
        if self.assignor is not None:
            self.assignor.backlog = {}
        if not partitions:
            return
        self._abandoned.update(id(record) for record in self.flow.revoke(partitions, time.monotonic()))
        self.governor.wake()  # calls of those records waiting for a slot give up now
        self._wake_dispatch()  # records of other partitions that waited for dropped ones may go now
        # An attempt under way ends within the call timeout: its answer is awaited, never abandoned mid-call (a
        # call landing after the next owner's would write older data over newer).
        s = self.settings
        deadline = time.monotonic() + max(s.service.rebalance_drain_s, s.marketo.timeout_s + REVOKE_MARGIN_S)
        # Polled under a deadline: answers arrive from many tasks, and the deadline bounds the rebalance.
        while self.flow.out_in(partitions) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(TICK_S)
        await self._commit(partitions)
        self._report_backlog(partitions)
        left = self.book.pending_in(partitions)
        self.book.revoke(partitions)
        for _topic, partition in partitions:
            with contextlib.suppress(KeyError):
                self.metrics.consumer_lag.remove(str(partition))
            with contextlib.suppress(KeyError):
                self.metrics.consumer_group_lag.remove(str(partition))
        log.info("partitions_revoked", partitions=[p for _, p in partitions], left_to_the_next_owner=left)

    def _report_backlog(self, partitions: list[PartitionId]) -> None:
        """Tell the group's next assignment how far behind `partitions` are: the next owners read from the commit."""
        if self.assignor is None or self._wiring is None:
            return
        ends = self._wiring.source.log_ends()
        for tp in partitions:
            committed = self.book.committed_offset(tp)
            if tp in ends and committed is not None:
                self.assignor.backlog[tp] = max(ends[tp] - committed, 0)

    async def _on_assigned(self, partitions: list[PartitionId]) -> None:
        if self._wiring is not None:
            self._wiring.source.pause_new(partitions)
            self._take_share(partitions)
        log.info("partitions_assigned", partitions=[p for _, p in partitions])

    def _take_share(self, partitions: list[PartitionId]) -> None:
        """This instance's part of Marketo's limits, as the group's leader split them with the partitions.

        A group with a member of an older version, which knows no split, assigns by round robin and says no share:
        this instance makes no call then (the older members hold the limits as their settings split them) until
        the last of them leaves. A raise waits a window unless no other instance may have calls in it.
        """
        if self.assignor is None:
            return
        share, self.assignor.share = self.assignor.share, None
        calls, flight = (0, 0) if share is None else (share.calls, share.concurrency)
        if share is None and partitions:
            log.warning("budget_share_unknown", partitions=len(partitions))
        at_once = False
        if not self._shared_yet and self._ledger is not None:
            at_once, starts = self._ledger.quiet()
            if at_once:
                self.governor.seed(starts)
        self._shared_yet = True
        self.governor.limit(calls, flight, at_once=at_once)
        self._publish_share()
        log.info("budget_share", calls_per_20s=calls, concurrency=flight, at_once=at_once, share=share)

    def _publish_share(self) -> None:
        wanted = self.governor.pending_raise or (self.governor.calls_per_window, self.governor.max_in_flight)
        self.metrics.budget_calls.set(wanted[0])
        self.metrics.budget_concurrency.set(wanted[1])
