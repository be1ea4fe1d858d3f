from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from pipeline.metrics import BatchHistogram

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
