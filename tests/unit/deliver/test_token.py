from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from types import SimpleNamespace

import aiohttp
import orjson
import pytest
from yarl import URL

from pipeline.deliver.http import TransportError
from pipeline.deliver.rest import RestTransport
from pipeline.deliver.token import MAX_REFUSALS, TokenSource, _read_token, renew_margin_s
from pipeline.marketo.rest.codes import RestAccessError, TokenRefusedError
from pipeline.marketo.rest.request import describe_request
from pipeline.marketo.rest.route import RestRouting
from pipeline.sim.identity import TokenIssuer
from pipeline.sim.server import Simulator, SimulatorServer
from pipeline.sim.settings import SimSettings

SETTINGS = SimSettings()


class Clock:
    """The time both the token source and the simulated identity service read: it moves when the test says."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class RunningClock(Clock):
    """A clock the test moves that also runs with real time (for the code's own short waits)."""

    def __init__(self) -> None:
        super().__init__()
        self._start = time.monotonic()

    def __call__(self) -> float:
        return self.now + time.monotonic() - self._start


@dataclass
class Identity:
    """The simulator serving the identity service and the REST API, and what the test sees of it."""

    simulator: Simulator
    server: SimulatorServer
    session: aiohttp.ClientSession
    clock: Clock
    asked: list[URL] = field(default_factory=list)  # every request to the identity service, in order

    @property
    def url(self) -> str:
        return f"{self.server.rest_endpoint}/identity/oauth/token"

    def source(self, secret: str = SETTINGS.client_secret, fetched: list[int] | None = None) -> TokenSource:
        on_fetch = None if fetched is None else (lambda: fetched.append(1))
        return TokenSource(
            self.session, self.url, SETTINGS.client_id, secret, timeout_s=5.0, clock=self.clock, on_fetch=on_fetch
        )

    def transport(self, tokens: TokenSource) -> RestTransport:
        routing = RestRouting(fsp_field=None)
        return RestTransport(
            self.session, self.server.rest_endpoint, tokens, routing, timeout_s=5.0, max_response_bytes=1 << 20
        )

    def lower_ttl(self, ttl_s: float) -> None:
        """Marketo ends live tokens early (what the simulator does when its token_ttl_s is lowered)."""
        self.simulator.configure(replace(self.simulator.settings, token_ttl_s=ttl_s))

    def live(self, token: str) -> bool:
        return self.simulator.tokens.check(token, self.simulator.settings.token_ttl_s) is None


async def serve(clock: Clock) -> AsyncIterator[Identity]:
    simulator = Simulator(SimSettings())
    simulator.tokens = TokenIssuer(clock)
    asked: list[URL] = []

    async def on_request_start(
        _session: aiohttp.ClientSession, _context: SimpleNamespace, params: aiohttp.TraceRequestStartParams
    ) -> None:
        if params.url.path == "/identity/oauth/token":
            asked.append(params.url)

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_request_start)
    async with SimulatorServer(simulator) as server, aiohttp.ClientSession(trace_configs=[trace]) as session:
        yield Identity(simulator, server, session, clock, asked)


@pytest.fixture
async def identity() -> AsyncIterator[Identity]:
    async for served in serve(Clock()):
        yield served


@pytest.fixture
async def running() -> AsyncIterator[Identity]:
    async for served in serve(RunningClock()):
        yield served


# --- one token for every worker ----------------------------------------------------------------------------------


async def test_many_callers_at_once_share_one_fetch(identity: Identity) -> None:
    fetched: list[int] = []
    source = identity.source(fetched=fetched)
    tokens = await asyncio.gather(*(source.token() for _ in range(50)))
    assert len(set(tokens)) == 1
    assert identity.live(tokens[0])
    assert len(identity.asked) == 1
    assert source.fetched == len(fetched) == identity.simulator.tokens.issued == 1


async def test_the_secret_goes_in_a_post_body_never_in_the_url(identity: Identity) -> None:
    await identity.source().token()
    [url] = identity.asked
    assert url.query_string == ""


async def test_a_token_is_renewed_before_it_expires(identity: Identity) -> None:
    source, clock = identity.source(), identity.clock
    first = await source.token()
    clock.now += 3600 - renew_margin_s(3600) - 1  # a minute before its end: still used as it is
    assert await source.token() == first
    assert len(identity.asked) == 1
    clock.now += 2  # within its last minute: asked again; Marketo hands back the same token while it lives
    assert await source.token() == first
    assert len(identity.asked) == 2
    assert identity.live(first)
    clock.now += 59  # past its end: a new one
    second = await source.token()
    assert second != first
    assert identity.live(second)
    assert not identity.live(first)
    assert len(identity.asked) == 3


async def test_callers_arriving_as_the_token_nears_its_end_share_one_renewal(identity: Identity) -> None:
    source = identity.source()
    first = await source.token()
    for expiry in range(1, 4):
        identity.clock.now += 3601
        tokens = await asyncio.gather(*(source.token() for _ in range(30)))
        assert len(set(tokens)) == 1
        assert tokens[0] != first
        assert identity.live(tokens[0])
        assert len(identity.asked) == 1 + expiry
        first = tokens[0]


@pytest.mark.parametrize(("lifetime_s", "margin_s"), [(3600, 60), (3599, 60), (100, 10), (5, 0.5), (0, 0)])
def test_the_renewal_margin_is_a_tenth_of_the_life_at_most_a_minute(lifetime_s: float, margin_s: float) -> None:
    assert renew_margin_s(lifetime_s) == margin_s


async def test_a_token_handed_back_about_to_expire_is_waited_out(running: Identity) -> None:
    source = running.source()
    first = await source.token()
    running.clock.now += 3600 - 0.25  # the identity service will hand it back with 0 seconds left
    second = await source.token()
    assert second != first
    assert running.live(second)
    assert source.fetched == 2
    assert await source.token() == second


# --- tokens Marketo refuses --------------------------------------------------------------------------------------


async def test_a_refused_token_is_renewed_and_the_next_call_gets_the_new_one(identity: Identity) -> None:
    source = identity.source()
    transport = identity.transport(source)
    first = await source.token()
    identity.simulator.tokens.reset()  # Marketo no longer knows it: 601
    with pytest.raises(TokenRefusedError) as caught:
        await transport.call(describe_request(), expected=0)
    assert caught.value.code == "601"
    second = await source.token()
    assert second != first
    assert await transport.call(describe_request(), expected=0) == []
    assert transport.fields.rest_name("FirstName") == "firstName"
    assert len(identity.asked) == 2


async def test_an_expired_token_is_renewed_and_the_next_call_gets_the_new_one(identity: Identity) -> None:
    source = identity.source()
    transport = identity.transport(source)
    first = await source.token()
    identity.lower_ttl(10)
    identity.clock.now += 11  # expired for Marketo, though not by the lifetime it told us: 602
    with pytest.raises(TokenRefusedError) as caught:
        await transport.call(describe_request(), expected=0)
    assert caught.value.code == "602"
    assert await transport.call(describe_request(), expected=0) == []
    second = await source.token()
    assert second != first
    assert identity.live(second)
    assert len(identity.asked) == 2


async def test_a_stale_refusal_does_not_throw_away_a_newer_token(identity: Identity) -> None:
    source = identity.source()
    first = await source.token()
    identity.simulator.tokens.reset()
    source.refused(first)
    second = await source.token()
    assert second != first
    source.refused(first)  # a call made with the old token comes back late
    assert await source.token() == second
    assert len(identity.asked) == 2


async def test_every_call_in_flight_refused_with_one_token_renews_it_once(identity: Identity) -> None:
    source = identity.source()
    first = await source.token()
    identity.simulator.tokens.reset()
    for _ in range(3 * MAX_REFUSALS):  # the workers' calls made with it all come back 601
        source.refused(first)
    second = await source.token()  # one token was refused, however many calls carried it: no access fault
    assert second != first
    assert len(identity.asked) == 2


async def test_fresh_tokens_refused_in_a_row_are_an_access_fault(identity: Identity) -> None:
    source = identity.source()
    for _ in range(MAX_REFUSALS):
        token = await source.token()
        identity.simulator.tokens.reset()
        source.refused(token)
    with pytest.raises(RestAccessError) as caught:
        await source.token()
    error = caught.value
    assert (error.code, error.counted, error.pauses_sending) == ("601", False, True)
    assert len(identity.asked) == MAX_REFUSALS
    assert identity.live(await source.token())  # the access gate's next probe tries afresh
    assert len(identity.asked) == MAX_REFUSALS + 1


async def test_a_call_accepted_between_refusals_starts_the_count_again(identity: Identity) -> None:
    source = identity.source()
    for round_ in range(3):
        for _ in range(MAX_REFUSALS - 1):
            token = await source.token()
            identity.simulator.tokens.reset()
            source.refused(token)
        await source.token()
        source.accepted()
        # Five tokens fetched in the first round; each later one starts with the token the call was accepted with.
        assert len(identity.asked) == MAX_REFUSALS + round_ * (MAX_REFUSALS - 1)


async def test_a_token_that_expires_under_load_is_fetched_once(identity: Identity) -> None:
    source = identity.source()
    transport = identity.transport(source)
    refusals: list[str | None] = []

    async def worker() -> None:
        for _ in range(3):
            for _attempt in range(10):
                try:
                    await transport.call(describe_request(), expected=0)
                    break
                except TokenRefusedError as exc:
                    refusals.append(exc.code)
                    await asyncio.sleep(0)  # the delivery waits its turn at the governor before sending again
            else:
                pytest.fail("the call never got a token Marketo accepts")

    await asyncio.gather(*(worker() for _ in range(20)))
    assert len(identity.asked) == 1
    identity.lower_ttl(30)
    identity.clock.now += 31  # the token dies while every worker holds it
    await asyncio.gather(*(worker() for _ in range(20)))
    assert len(refusals) >= 20  # the calls in flight with it were all refused...
    assert set(refusals) == {"602"}
    assert len(identity.asked) == 2  # ...and it was fetched anew once
    assert identity.simulator.tokens.issued == 2


# --- credentials the identity service refuses --------------------------------------------------------------------


async def test_a_wrong_client_secret_is_an_access_fault_at_once(identity: Identity) -> None:
    source = identity.source(secret="wrong")
    for asked in range(1, 3):
        with pytest.raises(RestAccessError) as caught:
            await source.token()
        error = caught.value
        assert (error.code, error.counted, error.pauses_sending) == (None, False, True)
        assert "Bad client credentials" in str(error)
        assert len(identity.asked) == asked  # nothing is remembered: each probe asks again
    assert identity.simulator.stats.rejected["401"] == 2
    assert source.fetched == 0


async def test_an_identity_service_that_cannot_be_reached_is_a_transport_error(identity: Identity) -> None:
    await identity.server.__aexit__(None, None, None)
    with pytest.raises(TransportError) as caught:
        await identity.source().token()
    assert (caught.value.reason, caught.value.counted) == ("identity_connection", False)


def reply(**body: object) -> bytes:
    return orjson.dumps(body)


def test_an_identity_reply_gives_the_token_and_its_remaining_life() -> None:
    body = reply(access_token="cdf01657-110d-4155-99a7-f986b2ff13a0:int", token_type="bearer", expires_in=3599)
    assert _read_token(200, body) == ("cdf01657-110d-4155-99a7-f986b2ff13a0:int", 3599.0)


@pytest.mark.parametrize("status", [400, 401, 403])
def test_a_credentials_refusal_is_an_access_fault(status: int) -> None:
    with pytest.raises(RestAccessError, match="unauthorized client"):
        _read_token(status, reply(error="unauthorized", error_description="unauthorized client"))
    with pytest.raises(RestAccessError, match=f"HTTP {status}"):
        _read_token(status, b"<html>no</html>")


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (500, reply(access_token="t", expires_in=1), "identity_http_5xx"),
        (502, b"Bad Gateway", "identity_http_5xx"),
        (200, b"not json", "identity_http_2xx"),
        (200, b"[]", "identity_http_2xx"),
        (200, reply(expires_in=3599), "identity_bad_response"),
        (200, reply(access_token="", expires_in=3599), "identity_bad_response"),
        (200, reply(access_token=7, expires_in=3599), "identity_bad_response"),
        (200, reply(access_token="t"), "identity_bad_response"),
        (200, reply(access_token="t", expires_in=-1), "identity_bad_response"),
        (200, reply(access_token="t", expires_in=True), "identity_bad_response"),
        (200, reply(access_token="t", expires_in="3599"), "identity_bad_response"),
    ],
)
def test_any_other_identity_reply_is_a_transport_error_marketo_does_not_count(
    status: int, body: bytes, reason: str
) -> None:
    with pytest.raises(TransportError) as caught:
        _read_token(status, body)
    assert (caught.value.reason, caught.value.counted) == (reason, False)
