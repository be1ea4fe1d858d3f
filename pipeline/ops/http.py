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
    """Serves /metrics, /healthz and /readyz on `port` (0 picks a free one) for the life of the context."""

    def __init__(
        self, *, host: str, port: int, registry: CollectorRegistry, ready: ReadinessCheck, alive: LivenessCheck
    ) -> None:
        self.host = host
        self.port = port
        self._registry = registry
        self._ready = ready
        self._alive = alive
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
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
        reasons = self._ready()
        body = orjson.dumps({"ready": not reasons, "reasons": reasons})
        return web.Response(body=body, status=503 if reasons else 200, content_type="application/json")
