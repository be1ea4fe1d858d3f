from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest

from pipeline.app import Service
from pipeline.config import Settings
from pipeline.metrics import BatchHistogram, package_version

BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 300)


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in registry.collect()
        for sample in family.samples
    }


@given(st.lists(st.floats(min_value=0, max_value=1000, allow_nan=False), max_size=200), st.integers(1, 4))
def test_observe_many_counts_as_many_observe_calls(amounts: list[float], chunks: int) -> None:
    one, many = CollectorRegistry(), CollectorRegistry()
    single = BatchHistogram("latency_seconds", "test", buckets=BUCKETS, registry=one)
    batched = BatchHistogram("latency_seconds", "test", buckets=BUCKETS, registry=many)
    for amount in amounts:
        single.observe(amount)
    size = max(len(amounts) // chunks, 1)
    for start in range(0, len(amounts), size):
        batched.observe_many(amounts[start : start + size])
    expected, got = _samples(one), _samples(many)
    assert expected.keys() == got.keys()
    for name, value in expected.items():
        assert math.isclose(got[name], value, rel_tol=1e-9, abs_tol=1e-9), name


def test_observe_many_of_nothing_changes_nothing() -> None:
    registry = CollectorRegistry()
    histogram = BatchHistogram("latency_seconds", "test", buckets=BUCKETS, registry=registry)
    histogram.observe_many([])
    assert all(value == 0 for value in _samples(registry).values())


def test_the_registry_says_the_version_transport_and_process_figures() -> None:
    service = Service(Settings(marketo={"api": "soap"}))
    text = generate_latest(service.metrics.registry).decode()
    assert f'marketo_pipeline_build_info{{transport="soap",version="{package_version()}"}} 1.0' in text
    for name in ("process_resident_memory_bytes", "process_open_fds", "python_info", "python_gc_collections_total"):
        assert f"\n{name}" in text, name
    assert "marketo_pipeline_commits_failed_total 0.0" in text
    assert "# TYPE marketo_pipeline_consumer_group_lag gauge" in text
