"""The service's Prometheus metrics (prefix `marketo_pipeline_`), on a registry of its own per instance."""

from __future__ import annotations

import math
from bisect import bisect_right
from importlib import metadata

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)

from pipeline.records import DeadLetterReason, Operation, RestOperation

# `_created` series double every counter's cardinality and no dashboard reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus-client leaves it unannotated

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 120, 300)
_BATCH_BUCKETS = (1, 5, 10, 25, 50, 100, 150, 200, 250, 299, 300)


class BatchHistogram(Histogram):
    """A Histogram that also takes many observations at once: sorted in C, one bucket search per bound."""

    def observe_many(self, amounts: list[float]) -> None:
        """Observe every amount of `amounts`, as many `observe` calls would."""
        if not amounts:
            return
        self._raise_if_not_observable()  # type: ignore[no-untyped-call]  # unannotated upstream
        ordered = sorted(amounts)
        below = 0
        for bound, bucket in zip(self._upper_bounds, self._buckets, strict=True):
            upto = bisect_right(ordered, bound)
            if upto > below:
                bucket.inc(upto - below)
                below = upto
            if below == len(ordered):
                break
        self._sum.inc(math.fsum(ordered))


def package_version() -> str:
    """The installed package's version."""
    try:
        return metadata.version("marketo-pipeline")
    except metadata.PackageNotFoundError:
        return "unknown"


class Metrics:
    """Every metric the contract names; labels take bounded values only (operations, statuses, reasons)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        p = "marketo_pipeline_"
        self.events_consumed = Counter(f"{p}events_consumed", "Input messages consumed.", registry=r)
        self.events_invalid = Counter(
            f"{p}events_invalid", "Input messages dead-lettered as invalid.", ["reason"], registry=r
        )
        self.events_merged = Counter(f"{p}events_merged", "Events merged into an already open record.", registry=r)
        self.batch_records = Histogram(
            f"{p}batch_records", "Records per Marketo call.", ["operation"], buckets=_BATCH_BUCKETS, registry=r
        )
        self.requests = Counter(f"{p}requests", "Marketo calls by outcome.", ["operation", "outcome"], registry=r)
        self.request_duration = Histogram(
            f"{p}request_duration_seconds",
            "Marketo call duration.",
            ["operation"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.requests_in_flight = Gauge(f"{p}requests_in_flight", "Marketo calls in flight.", registry=r)
        self.retries = Counter(f"{p}retries", "Marketo call retries.", ["operation", "reason"], registry=r)
        self.results = Counter(f"{p}results", "Results published.", ["operation", "status"], registry=r)
        self.dlq = Counter(f"{p}dlq", "Dead letters published.", ["reason"], registry=r)
        self.consumer_lag = Gauge(f"{p}consumer_lag", "Messages behind the log end.", ["partition"], registry=r)
        self.event_to_result = BatchHistogram(
            f"{p}event_to_result_seconds",
            "From an event's Kafka timestamp to its result.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.governor_wait = Counter(
            f"{p}governor_wait_seconds", "Time calls waited for the rate governor.", registry=r
        )
        self.pending_events = Gauge(f"{p}pending_events", "Events consumed and not yet answered.", registry=r)
        self.pending_bytes = Gauge(f"{p}pending_bytes", "Bytes of the events not yet answered.", registry=r)
        self._access_series(r, p)
        self._process_series(r, p)
        self._zero_series()

    def _process_series(self, r: CollectorRegistry, p: str) -> None:
        # The standard process, platform and garbage-collector collectors (resident memory, CPU, open files, ...).
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        self.build_info = Gauge(
            f"{p}build_info", "1, labelled with the version and the Marketo API.", ["version", "transport"], registry=r
        )
        self.commits_failed = Counter(
            f"{p}commits_failed", "Offset commits that failed (tried again at the next interval).", registry=r
        )
        self.consumer_group_lag = Gauge(
            f"{p}consumer_group_lag",
            "Log end minus this group's committed offset, as Kafka's tools and autoscalers see it.",
            ["partition"],
            registry=r,
        )

    def _access_series(self, r: CollectorRegistry, p: str) -> None:
        self.daily_quota_remaining = Gauge(f"{p}daily_quota_remaining", "Marketo calls left today.", registry=r)
        self.marketo_access = Gauge(f"{p}marketo_access_ok", "1 while Marketo accepts our calls.", registry=r)
        self.marketo_access.set(1)
        self.budget_calls = Gauge(
            f"{p}budget_calls_per_20s", "This instance's share of Marketo's calls per 20 s.", registry=r
        )
        self.budget_concurrency = Gauge(
            f"{p}budget_concurrency", "This instance's share of Marketo's concurrent calls.", registry=r
        )
        self.group_calls_today = Gauge(
            f"{p}group_calls_today", "Marketo calls the whole group made today, as the budget topic says.", registry=r
        )
        self.access_tokens = Counter(
            f"{p}access_tokens", "REST access tokens fetched from Marketo's identity service.", registry=r
        )

    def _zero_series(self) -> None:
        # Every bounded label set exists from the start at zero, so rate() and alerts see a series, not a gap.
        for reason in DeadLetterReason:
            self.dlq.labels(reason.value)
        for reason in (DeadLetterReason.INVALID_JSON, DeadLetterReason.INVALID_EVENT, DeadLetterReason.INTERNAL_ERROR):
            self.events_invalid.labels(reason.value)
        statuses = {
            Operation.SYNC_LEAD: ("CREATED", "UPDATED", "FAILED"),
            Operation.SYNC_MULTIPLE_LEADS: ("CREATED", "UPDATED", "FAILED"),
            Operation.SYNC_MOBJECTS: ("CREATED", "UPDATED", "FAILED", "UNCHANGED", "SKIPPED"),
            RestOperation.SYNC_LEADS: ("CREATED", "UPDATED", "FAILED"),
            RestOperation.SYNC_OPPORTUNITIES: ("CREATED", "UPDATED", "FAILED", "SKIPPED"),
            RestOperation.SYNC_OPPORTUNITY_ROLES: ("CREATED", "UPDATED", "FAILED", "SKIPPED"),
            RestOperation.UPDATE_PROGRAM: ("UPDATED", "FAILED"),
        }
        for operation, names in statuses.items():
            for status in names:
                self.results.labels(operation.value, status)
            self.requests.labels(operation.value, "ok")
