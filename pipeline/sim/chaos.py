"""Fault and latency injection: each configured fault hits its share of calls, drawn independently."""

from __future__ import annotations

import random

from pipeline.sim.settings import FaultSpec, SimSettings


class FaultInjector:
    """Draws from one seeded generator, so a run with a seed injects the same faults."""

    def __init__(self, seed: int | None = None) -> None:
        self._random = random.Random(seed)  # noqa: S311 - fault injection, not cryptography

    def pick(self, settings: SimSettings, operation: str, *, api: str = "soap") -> FaultSpec | None:
        """The first configured fault that applies to `operation` (a call of `api`) and hits this call, if any.

        A `fault` with a five-digit code is SOAP's, any other REST's: each hits only its own API's calls.
        """
        for spec in settings.faults:
            if spec.operation not in {None, operation}:
                continue
            if spec.code is not None and (len(spec.code) == 5) != (api == "soap"):  # noqa: PLR2004
                continue
            if self._random.random() < spec.rate:
                return spec
        return None

    def latency_s(self, settings: SimSettings) -> float:
        """This call's latency: the base plus a uniform share of the jitter."""
        jitter = self._random.uniform(0, settings.latency_jitter_ms) if settings.latency_jitter_ms else 0.0
        return (settings.latency_ms + jitter) / 1000
