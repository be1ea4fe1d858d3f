"""The simulator's REST face: Marketo's REST API on the same port and over the same store as SOAP.

It answers as Adobe documents (`marketo/rest/`): the envelope (`requestId`, `success`, `errors`, `result`),
errors with HTTP 200 and `success: false`, per-record `status` and `reasons`, a Bearer token from the identity
service, and Marketo's limits: 100 calls / 20 s (606), 10 concurrent (615), the daily quota (607), 1 MB bodies
(HTTP 413). Where the documentation is silent, the choice is the simulator's own and says so (`SIMULATOR'S CHOICE`).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qsl

import orjson
from aiohttp import web

from pipeline.marketo.rest.codes import ERROR_TEXT, NOT_COUNTED
from pipeline.records import RestOperation
from pipeline.sim.catalog import visible
from pipeline.sim.reasons import RestCallError
from pipeline.sim.restapi import (
    associate_lead,
    get_leads,
    sync_leads,
    sync_opportunities,
    sync_roles,
    update_program,
)

if TYPE_CHECKING:
    from pipeline.sim.server import Simulator
    from pipeline.sim.settings import FaultSpec, SimSettings

JSON: Final = "application/json"
FORM: Final = "application/x-www-form-urlencoded"
# The limiter's refusals, as REST spells them.
_REST_REFUSALS: Final = {"20024": "615", "20023": "606", "20015": "607"}
_REFUSAL_TEXT: Final = {
    "606": "Max rate limit '100' exceeded with in '20' secs",
    "607": "Daily quota reached",
    "615": "Concurrent access limit reached",
}
_request_ids = itertools.count(1)


def _request_id() -> str:
    return f"{next(_request_ids):x}#{int(time.time() * 1000):x}"


def reply(result: list[Any] | None = None) -> web.Response:
    """A successful call's envelope."""
    body: dict[str, Any] = {"requestId": _request_id(), "success": True}
    if result is not None:
        body["result"] = result
    return web.Response(body=orjson.dumps(body), content_type=JSON)


def error_reply(code: str, message: str | None = None) -> web.Response:
    """A refused call's envelope: HTTP 200, `success: false`, one error."""
    error = {"code": code, "message": message or _REFUSAL_TEXT.get(code) or ERROR_TEXT.get(code, "Error")}
    body = {"requestId": _request_id(), "success": False, "errors": [error]}
    return web.Response(body=orjson.dumps(body), content_type=JSON)


@dataclass(frozen=True, slots=True)
class RestCall:
    """A REST call as the handlers see it: its path parameters, query, body and content type."""

    match: dict[str, str]
    query: dict[str, str]
    body: bytes
    content_type: str

    def json_body(self) -> Any:  # noqa: ANN401 - JSON
        """The body as JSON; 612 for another content type, 609 for a body that is not JSON."""
        if self.content_type != JSON:
            raise RestCallError("612", f"Invalid Content Type: {self.content_type or 'none'}")
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError as exc:
            raise RestCallError("609", f"Invalid JSON: {exc}") from exc

    def form(self) -> dict[str, str]:
        """The query and, for a form body, its fields (the body wins)."""
        values = dict(self.query)
        if self.content_type == FORM:
            values.update(parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True))
        return values


Handler = Callable[["Simulator", RestCall], tuple[list[Any], int, tuple[str, ...]]]


class RestFront:
    """The REST routes of one Simulator."""

    def __init__(self, simulator: Simulator) -> None:
        self._sim = simulator

    def add_routes(self, app: web.Application) -> None:
        """Register the identity service and the REST API on `app`."""
        app.router.add_route("*", "/identity/oauth/token", self._token)
        app.router.add_get("/rest/v1/leads/describe.json", self._describe)
        app.router.add_route("*", "/rest/v1/leads.json", self._leads)
        app.router.add_post("/rest/v1/leads/{id}/associate.json", self._associate)
        app.router.add_post("/rest/v1/opportunities.json", self._opportunities)
        app.router.add_post("/rest/v1/opportunities/roles.json", self._roles)
        app.router.add_post("/rest/asset/v1/program/{id}.json", self._program)

    # --- identity ----------------------------------------------------------------------------------------------------

    async def _token(self, request: web.Request) -> web.Response:
        settings = self._sim.settings
        values = dict(request.query)
        if request.method == "POST" and request.content_type == FORM:
            values.update(parse_qsl((await request.read()).decode("utf-8", "replace"), keep_blank_values=True))
        if values.get("grant_type") != "client_credentials":
            return _oauth_error(400, "unsupported_grant_type", "Only client_credentials is supported")
        given = (values.get("client_id"), values.get("client_secret"))
        if settings.auth and given != (settings.client_id, settings.client_secret):
            self._sim.stats.rejected["401"] += 1
            return _oauth_error(401, "unauthorized", "Bad client credentials")
        token, lifetime = self._sim.tokens.token(settings.token_ttl_s)
        body = {"access_token": token, "token_type": "bearer", "expires_in": lifetime, "scope": "api@simulator"}
        return web.Response(body=orjson.dumps(body), content_type=JSON)

    # --- the API -----------------------------------------------------------------------------------------------------

    async def _describe(self, request: web.Request) -> web.StreamResponse:
        return await self._api(request, RestOperation.DESCRIBE_LEADS, _describe)

    async def _leads(self, request: web.Request) -> web.StreamResponse:
        if request.method == "GET" or request.query.get("_method") == "GET":
            return await self._api(request, RestOperation.GET_LEADS, get_leads)
        if request.method != "POST":
            return error_reply("605", f"HTTP Method {request.method} not supported")
        return await self._api(request, RestOperation.SYNC_LEADS, sync_leads)

    async def _associate(self, request: web.Request) -> web.StreamResponse:
        return await self._api(request, RestOperation.ASSOCIATE_LEAD, associate_lead)

    async def _opportunities(self, request: web.Request) -> web.StreamResponse:
        return await self._api(request, RestOperation.SYNC_OPPORTUNITIES, sync_opportunities)

    async def _roles(self, request: web.Request) -> web.StreamResponse:
        return await self._api(request, RestOperation.SYNC_OPPORTUNITY_ROLES, sync_roles)

    async def _program(self, request: web.Request) -> web.StreamResponse:
        return await self._api(request, RestOperation.UPDATE_PROGRAM, update_program)

    def _refusal(self, request: web.Request, settings: SimSettings) -> str | None:
        """601/602 for a missing, unknown or expired token (the query parameter is no longer accepted)."""
        if not settings.auth:
            return None
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        bearer = token.strip() if scheme.lower() == "bearer" else None
        return self._sim.tokens.check(bearer, settings.token_ttl_s)

    async def _api(self, request: web.Request, operation: RestOperation, handler: Handler) -> web.StreamResponse:
        arrived = time.monotonic()
        sim, settings = self._sim, self._sim.settings
        sim.stats.calls[operation.value] += 1
        body = await request.read()
        if len(body) > settings.rest_max_body_bytes:
            sim.stats.rejected["413"] += 1
            return web.Response(status=413, text="Request Entity Too Large")
        refused = self._refusal(request, settings) or _REST_REFUSALS.get(
            sim.limiter.admit(settings, arrived, refusals_count=True) or ""
        )
        if refused is not None:
            sim.stats.rejected[refused] += 1
            return error_reply(refused)
        call = RestCall(dict(request.match_info), dict(request.query), body, request.content_type)
        started, outcome, counted = time.monotonic(), "cancelled", True
        identities: tuple[str, ...] = ()
        try:
            response, counted, identities = await self._admitted(request, operation, handler, call)
            outcome = str(response.status)
            return response
        finally:
            sim.limiter.release()
            if not counted:
                sim.limiter.refund(arrived)
            sim.log_call(operation.value, started, outcome, identities)

    async def _admitted(
        self, request: web.Request, operation: RestOperation, handler: Handler, call: RestCall
    ) -> tuple[web.StreamResponse, bool, tuple[str, ...]]:
        sim, settings = self._sim, self._sim.settings
        spec = sim.injector.pick(settings, operation.value, api="rest")
        if spec is not None and spec.phase == "before":
            return await self._inject(request, spec, settings, 0), _counted(spec), ()
        latency = sim.injector.latency_s(settings)
        if latency > 0:
            await asyncio.sleep(latency)
        try:
            result, records, identities = handler(sim, call)
        except RestCallError as exc:
            return error_reply(exc.code, exc.message), exc.code not in NOT_COUNTED, ()
        sim.stats.records[operation.value] += records
        if spec is not None:
            return await self._inject(request, spec, settings, len(result)), _counted(spec), identities
        return reply(result), True, identities

    async def _inject(
        self, request: web.Request, spec: FaultSpec, settings: SimSettings, records: int
    ) -> web.StreamResponse:
        self._sim.stats.faults_injected += 1
        match spec.kind:
            case "fault":
                return error_reply(spec.code or "611")
            case "truncated":
                return web.Response(body=b'{"requestId":"1#1","success":true,"result":[{"id":1,"sta', content_type=JSON)
            case "wrong_count":
                items = [{"id": n + 1, "status": "created"} for n in range(records + 1)]
                return web.Response(body=orjson.dumps({"requestId": "1#1", "success": True, "result": items}))
            case "xxe" | "entities":
                return web.Response(body=b"<html><body>502 Bad Gateway</body></html>", content_type="text/html")
            case _:
                return await self._sim.inject_transport(request, spec, settings)


def _counted(spec: FaultSpec) -> bool:
    return not (spec.kind == "fault" and spec.code in NOT_COUNTED)


def _oauth_error(status: int, error: str, description: str) -> web.Response:
    return web.Response(
        body=orjson.dumps({"error": error, "error_description": description}), status=status, content_type=JSON
    )


def _describe(sim: Simulator, _call: RestCall) -> tuple[list[Any], int, tuple[str, ...]]:
    fields = visible(sim.settings.lead_fields, sim.settings.custom_fields)
    return [field.describe() for field in fields], 0, ()
