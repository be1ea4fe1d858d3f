"""The simulator's HTTP face: SOAP at /soap/mktows/<version>, REST at /rest and /identity, admin JSON under /_sim/."""

from __future__ import annotations

import asyncio
import html
import socket
import struct
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Final, Self

import orjson
from aiohttp import web

from pipeline.identity import identity_values, mobject_ref
from pipeline.marketo.soap.schema import WSDL_VERSION, wsdl_bytes
from pipeline.marketo.soap.signing import AuthHeader, verify_signature
from pipeline.records import Operation, RestOperation
from pipeline.sim.chaos import FaultInjector
from pipeline.sim.identity import TokenIssuer
from pipeline.sim.leads import LeadRejectedError, LeadStore, SyncContext
from pipeline.sim.limits import CallLimiter
from pipeline.sim.mobjects import MObjectStore
from pipeline.sim.rest import RestFront
from pipeline.sim.settings import FaultSpec, SimConfigError, SimSettings, apply_patch
from pipeline.sim.soap import (
    SimRequest,
    SoapFaultError,
    read_call,
    read_envelope,
    render_fault,
    render_sync_lead,
    render_sync_mobjects,
    render_sync_multiple_leads,
)

_WSDL_ADDRESS: Final = b"https://na-aba.marketo.com/soap/mktows/2_2"
_TRACKED_REJECTIONS: Final = ("20023", "20024", "20015", "20014", "606", "615", "607", "601", "602")
_OPERATIONS: Final = (*(op.value for op in Operation), *(op.value for op in RestOperation))
CALL_LOG_SIZE: Final = 10_000


@dataclass(frozen=True, slots=True)
class CallEntry:
    """One admitted call, for `GET /_sim/calls`: when it ran, what it carried, how it ended."""

    operation: str
    started: float
    ended: float
    outcome: str
    identities: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """As `GET /_sim/calls` shows it."""
        return {
            "operation": self.operation,
            "started": self.started,
            "ended": self.ended,
            "outcome": self.outcome,
            "identities": list(self.identities),
        }


def _identities(call: SimRequest) -> tuple[str, ...]:
    """The identity values a call's records carry, spelled as the pipeline spells them (pipeline.identity)."""
    found: list[str] = []
    for lead in call.leads:
        found += sorted(
            identity_values(
                lead_id=lead.id,
                foreign_sys_type=lead.foreign_sys_type,
                foreign_sys_person_id=lead.foreign_sys_person_id,
                cookie=None,
                email=lead.email,
            )
        )
    if call.cookie is not None:
        found.append(f"cookie:{call.cookie}")
    for mobject in call.mobjects:
        found.append(mobject_ref(mobject.type, mobject.id, mobject.external_key) or f"mobj:{mobject.type}:=")
    return tuple(found)


@dataclass(slots=True)
class SimStats:
    """Counters behind `GET /_sim/stats`."""

    calls: Counter[str] = field(default_factory=Counter)
    records: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    faults_injected: int = 0


def _json(data: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _soap_fault(code: str, message: str) -> web.Response:
    return web.Response(body=render_fault(code, message), status=500, content_type="text/xml", charset="utf-8")


def _parse_timestamp(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


class Simulator:
    """One simulated Marketo instance: its leads, objects, limits, faults and counters."""

    def __init__(self, settings: SimSettings | None = None, *, seed: int | None = None) -> None:
        self.settings = settings or SimSettings()
        self.leads = LeadStore(self.settings.workspaces, self.settings.assignment_rules)
        self.mobjects = self._mobject_store()
        self.limiter = CallLimiter()
        self.injector = FaultInjector(seed)
        self.stats = SimStats()
        self.calls: deque[CallEntry] = deque(maxlen=CALL_LOG_SIZE)
        self.tokens = TokenIssuer()
        self.rest = RestFront(self)

    def _mobject_store(self) -> MObjectStore:
        settings = self.settings
        return MObjectStore(
            settings.programs, leads=self.leads, tags=settings.program_tags, channels=settings.program_channels
        )

    def configure(self, settings: SimSettings) -> None:
        """Use `settings` from the next call on; stored leads and objects stay."""
        self.settings = settings
        self.leads.workspaces = settings.workspaces
        self.leads.assignment_rules = settings.assignment_rules
        self.mobjects.programs = settings.programs
        self.mobjects.tags, self.mobjects.channels = settings.program_tags, settings.program_channels

    def reset(self) -> None:
        """Forget every lead, object and counter; the settings stay."""
        self.leads = LeadStore(self.settings.workspaces, self.settings.assignment_rules)
        self.mobjects = self._mobject_store()
        self.limiter.reset()
        self.stats = SimStats()
        self.calls.clear()

    def app(self) -> web.Application:
        """The aiohttp application serving this instance."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/soap/mktows/{version}", self._soap)
        app.router.add_get("/soap/mktows/{version}", self._wsdl)
        self.rest.add_routes(app)
        app.router.add_get("/_sim/leads", self._leads)
        app.router.add_get("/_sim/mobjects", self._mobjects)
        app.router.add_get("/_sim/stats", self._stats)
        app.router.add_get("/_sim/calls", self._calls)
        app.router.add_get("/_sim/config", self._get_config)
        app.router.add_post("/_sim/config", self._post_config)
        app.router.add_post("/_sim/reset", self._reset)
        return app

    # --- SOAP ---------------------------------------------------------------------------------

    def _check_auth(self, auth: AuthHeader | None, settings: SimSettings) -> None:
        if not settings.auth:
            return
        if auth is None:
            raise SoapFaultError("20014", "Authentication failed: no AuthenticationHeader")
        if auth.user_id != settings.user_id or not verify_signature(settings.secret_key, auth):
            raise SoapFaultError("20014")
        # SIMULATOR'S CHOICE: a signature lives `request_ttl_s` (900 s by default). Marketo faults a stale
        # requestTimestamp with 20016 (Request expired) but documents no lifetime; 15 minutes is the choice.
        moment = _parse_timestamp(auth.timestamp)
        if moment is None:
            raise SoapFaultError("20014", "Authentication failed: unreadable requestTimestamp")
        if abs(datetime.now(UTC) - moment) > timedelta(seconds=settings.request_ttl_s):
            raise SoapFaultError("20016")

    def _check_call(self, call: SimRequest, settings: SimSettings) -> None:
        limit = (
            settings.max_mobjects_per_call if call.operation is Operation.SYNC_MOBJECTS else settings.max_leads_per_call
        )
        if limit is not None and call.records > limit:
            # SIMULATOR'S CHOICE: the docs advise batches of at most 300 leads ("larger batch sizes are not
            # supported, and can result in timeouts and in extreme cases, throttling") and allow 100 objects per
            # call, but name no fault; 20110 (Parameter bad) is Marketo's code for a request it will not take.
            raise SoapFaultError("20110", f"{call.operation} carries {call.records} records; the limit is {limit}")
        if settings.lead_fields is not None and call.operation is not Operation.SYNC_MOBJECTS:
            known = {*settings.lead_fields, "Email"}
            unknown = sorted({name for lead in call.leads for name, _ in lead.attributes} - known)
            if unknown:
                message = f"{call.operation} operation failed: unknown fields for import: {', '.join(unknown)}"
                raise SoapFaultError("20105", message)

    def _apply(self, call: SimRequest) -> bytes:
        """Run the call against the stores; synchronous, so atomic among concurrent calls."""
        match call.operation:
            case Operation.SYNC_MULTIPLE_LEADS:
                ctx = SyncContext(dedup=call.dedup)
                statuses: list[tuple[int, str, str | None]] = []
                for lead in call.leads:
                    try:
                        status, stored = self.leads.sync(lead, ctx)
                        statuses.append((stored.id, status, None))
                    except LeadRejectedError as exc:
                        statuses.append((lead.id or 0, "FAILED", str(exc)))
                return render_sync_multiple_leads(statuses)
            case Operation.SYNC_LEAD:
                ctx = SyncContext(single=True, cookie=call.cookie, workspace=call.workspace)
                try:
                    status, stored = self.leads.sync(call.leads[0], ctx)
                except LeadRejectedError as exc:
                    raise SoapFaultError(exc.code, exc.message) from exc
                returned = stored.to_json() if call.return_lead else None
                return render_sync_lead(stored.id, status, None, returned)
            case Operation.SYNC_MOBJECTS:
                outcomes = [self.mobjects.sync(m, call.mobject_operation) for m in call.mobjects]
                return render_sync_mobjects(outcomes)

    def log_call(self, operation: str, started: float, outcome: str, identities: tuple[str, ...]) -> None:
        """Remember an admitted call for `GET /_sim/calls`."""
        self.calls.append(CallEntry(operation, started, time.monotonic(), outcome, identities))

    async def inject_transport(
        self, request: web.Request, spec: FaultSpec, settings: SimSettings
    ) -> web.StreamResponse:
        """The faults of the wire, alike for both APIs: HTTP 500 and 503, a held call, a reset connection."""
        match spec.kind:
            case "http_500":
                return web.Response(status=500, text="Internal Server Error")
            case "http_503":
                return web.Response(status=503, text="Service Unavailable", headers={"Retry-After": "1"})
            case "timeout":
                # Held until the client gives up (the handler is cancelled when it disconnects).
                await asyncio.sleep(settings.timeout_hold_s)
                return web.Response(status=504, text="Gateway Timeout")
            case _:
                _reset_connection(request)
                return web.Response(status=500)

    async def _inject(
        self, request: web.Request, spec: FaultSpec, settings: SimSettings, records: int
    ) -> web.StreamResponse:
        self.stats.faults_injected += 1
        match spec.kind:
            case "http_500" | "http_503" | "timeout" | "reset":
                return await self.inject_transport(request, spec, settings)
            case "xxe" | "entities" | "truncated" | "wrong_count":
                return web.Response(body=_hostile(spec.kind, records), content_type="text/xml", charset="utf-8")
            case _:
                code = spec.code or "20011"
                return _soap_fault(code, SoapFaultError(code).message)

    async def _soap(self, request: web.Request) -> web.StreamResponse:
        arrived = time.monotonic()
        settings = self.settings
        try:
            envelope = read_envelope(await request.read())
        except SoapFaultError as exc:
            return _soap_fault(exc.code, exc.message)
        self.stats.calls[envelope.operation.value] += 1
        try:
            self._check_auth(envelope.auth, settings)  # who calls, before what the call says
        except SoapFaultError as exc:
            self.stats.rejected[exc.code] += 1
            return _soap_fault(exc.code, exc.message)
        try:
            call = read_call(envelope, validate=settings.validate)
        except SoapFaultError as exc:
            return _soap_fault(exc.code, exc.message)
        refusal = self.limiter.admit(settings, arrived)
        if refusal is not None:
            self.stats.rejected[refusal] += 1
            return _soap_fault(refusal, SoapFaultError(refusal).message)
        started = time.monotonic()
        outcome = "cancelled"
        try:
            response = await self._admitted(request, call, settings)
            outcome = str(response.status)
            return response
        finally:
            self.limiter.release()
            self.log_call(call.operation.value, started, outcome, _identities(call))

    async def _admitted(self, request: web.Request, call: SimRequest, settings: SimSettings) -> web.StreamResponse:
        spec = self.injector.pick(settings, call.operation.value)
        if spec is not None and spec.phase == "before":
            return await self._inject(request, spec, settings, call.records)
        latency = self.injector.latency_s(settings)
        if latency > 0:
            await asyncio.sleep(latency)
        try:
            self._check_call(call, settings)
            reply = self._apply(call)
        except SoapFaultError as exc:
            return _soap_fault(exc.code, exc.message)
        self.stats.records[call.operation.value] += call.records
        if spec is not None:
            return await self._inject(request, spec, settings, call.records)
        return web.Response(body=reply, content_type="text/xml", charset="utf-8")

    async def _wsdl(self, request: web.Request) -> web.Response:
        if "wsdl" not in {key.lower() for key in request.query}:
            return web.Response(status=405, text="POST a SOAP envelope, or GET ?WSDL for the service description")
        # The Host header is the client's to write: escaped, it can only ever be text of the attribute.
        address = html.escape(f"{request.scheme}://{request.host}{request.path}", quote=True).encode()
        return web.Response(body=wsdl_bytes().replace(_WSDL_ADDRESS, address), content_type="text/xml", charset="utf-8")

    # --- admin --------------------------------------------------------------------------------

    async def _leads(self, _request: web.Request) -> web.Response:
        return _json({"leads": [lead.to_json() for lead in self.leads.all()]})

    async def _mobjects(self, _request: web.Request) -> web.Response:
        return _json({"mobjects": [obj.to_json() for obj in self.mobjects.all()]})

    def stats_json(self) -> dict[str, Any]:
        """The counters as `GET /_sim/stats` shows them."""
        rejected = {code: self.stats.rejected.get(code, 0) for code in _TRACKED_REJECTIONS}
        rejected.update(self.stats.rejected)
        return {
            "calls": {op: self.stats.calls.get(op, 0) for op in _OPERATIONS},
            "records": {op: self.stats.records.get(op, 0) for op in _OPERATIONS},
            "tokens_issued": self.tokens.issued,
            "peak_concurrency": self.limiter.peak_concurrency,
            "in_flight": self.limiter.in_flight,
            "rejected": rejected,
            "faults_injected": self.stats.faults_injected,
            "quota_used": self.limiter.quota_used,
            "leads": len(self.leads),
            "duplicate_email_matches": self.leads.duplicate_matches,
            "mobjects": len(self.mobjects.all()),
        }

    async def _calls(self, _request: web.Request) -> web.Response:
        return _json({"calls": [entry.to_json() for entry in self.calls]})

    async def _stats(self, _request: web.Request) -> web.Response:
        return _json(self.stats_json())

    async def _get_config(self, _request: web.Request) -> web.Response:
        return _json(self.settings.public())

    async def _post_config(self, request: web.Request) -> web.Response:
        try:
            patch = orjson.loads(await request.read())
            self.configure(apply_patch(self.settings, patch))
        except orjson.JSONDecodeError as exc:
            return _json({"error": f"body is not JSON: {exc}"}, status=400)
        except SimConfigError as exc:
            return _json({"error": str(exc)}, status=400)
        return _json(self.settings.public())

    async def _reset(self, _request: web.Request) -> web.Response:
        self.reset()
        return _json({"reset": True})


_XXE: Final = (
    b'<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    b'<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body>&xxe;'
    b"</SOAP-ENV:Body></SOAP-ENV:Envelope>"
)
_ENTITY_BOMB: Final = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
    b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">'
    b'<!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]><lolz>&lol9;</lolz>'
)


def _hostile(kind: str, records: int) -> bytes:
    """A reply no client should trust: what the `xxe`, `entities`, `truncated` and `wrong_count` faults send."""
    if kind == "xxe":
        return _XXE
    if kind == "entities":
        return _ENTITY_BOMB
    # One status more than the call carried (so never right by accident), or that reply cut in half.
    reply = render_sync_multiple_leads([(n + 1, "CREATED", None) for n in range(records + 1)])
    return reply[: len(reply) // 2] if kind == "truncated" else reply


def _reset_connection(request: web.Request) -> None:
    """Close the client's connection with a TCP RST, as a crashed proxy would."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


class SimulatorServer:
    """Serves a Simulator over HTTP on `host:port` (port 0 picks a free one) for the life of the context."""

    def __init__(self, simulator: Simulator | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.simulator = simulator or Simulator()
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        """http://host:port of the running server."""
        return f"http://{self.host}:{self.port}"

    @property
    def endpoint(self) -> str:
        """The SOAP endpoint, as `marketo.endpoint` wants it."""
        return f"{self.base_url}/soap/mktows/{WSDL_VERSION}"

    @property
    def rest_endpoint(self) -> str:
        """The REST base URL, as `marketo.rest_endpoint` wants it (the identity service is under it)."""
        return self.base_url

    async def __aenter__(self) -> Self:
        runner = web.AppRunner(self.simulator.app(), handler_cancellation=True, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, backlog=1024, reuse_address=True)
        await site.start()
        self._runner = runner
        self.port = runner.addresses[0][1]
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
