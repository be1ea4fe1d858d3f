"""The operations endpoint: Prometheus metrics, liveness and readiness."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Self

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

# Readiness: the reasons the service is not ready (empty when it is).
ReadinessCheck = Callable[[], list[str]]
LivenessCheck = Callable[[], bool]


class OpsServer:
    """Serves /metrics, /healthz, /readyz and /readyz/kafka on `port` (0 picks a free one) for the context's life.

    /readyz says whether the service does its work now (partitions, Marketo's access, the quota: for people and
    alerts); /readyz/kafka only whether its Kafka clients are up, which is what an orchestrator's readiness probe
    wants (a new pod of a rolling update may get no partition, and a spent quota is every pod's at once).
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        registry: CollectorRegistry,
        ready: ReadinessCheck,
        alive: LivenessCheck,
        kafka_ready: ReadinessCheck | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self._registry = registry
        self._ready = ready
        self._kafka_ready = kafka_ready or ready
        self._alive = alive
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/readyz/kafka", self._readyz_kafka)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, self.host, self.port, reuse_address=True).start()
        self._runner = runner
        self.port = runner.addresses[0][1]
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _metrics(self, _request: web.Request) -> web.Response:
        response = web.Response(body=generate_latest(self._registry))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def _healthz(self, _request: web.Request) -> web.Response:
        alive = self._alive()
        return web.Response(
            body=orjson.dumps({"alive": alive}), status=200 if alive else 503, content_type="application/json"
        )

    async def _readyz(self, _request: web.Request) -> web.Response:
        return _readiness(self._ready())

    async def _readyz_kafka(self, _request: web.Request) -> web.Response:
        return _readiness(self._kafka_ready())


def _readiness(reasons: list[str]) -> web.Response:
    body = orjson.dumps({"ready": not reasons, "reasons": reasons})
    return web.Response(body=body, status=503 if reasons else 200, content_type="application/json")
