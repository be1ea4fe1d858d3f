"""The REST access token: OAuth 2 client credentials, one token shared by every worker.

Fetched once however many workers ask at the same moment (single flight), renewed before it expires, and renewed
again when Marketo answers 601 or 602. Marketo's identity service hands back the token it already issued while that
one lives (authentication.md), with its remaining lifespan: a token that comes back about to expire is waited out,
then fetched anew, so a renewal never spins.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import Final

import aiohttp
import orjson
import structlog

from pipeline.deliver.http import TransportError, read_body
from pipeline.marketo.rest.codes import RestAccessError

log = structlog.get_logger()

NEARLY_EXPIRED_S: Final = 2.0  # a token handed back with this little left is waited out, not used
MAX_REFUSALS: Final = 5  # fresh tokens refused in a row (601/602 with no call accepted between): access fault
MAX_IDENTITY_BYTES: Final = 64 * 1024
# 404: no identity service at this address (a mistyped rest_endpoint): as for wrong credentials, pause and say why.
_CREDENTIAL_STATUSES: Final = frozenset({400, 401, 403, 404})
# RFC 6750's b64token: what a Bearer header may carry (anything else would break the header, or smuggle another).
_TOKEN: Final = re.compile(r"[A-Za-z0-9\-._~+/:]+=*")
MAX_WAITS: Final = 3  # a same token handed back nearly expired, waited out at most this often before giving up


def renew_margin_s(lifetime_s: float) -> float:
    """How long before its end a token is renewed: a tenth of its life, at most a minute."""
    return min(60.0, lifetime_s / 10)


class TokenSource:
    """Access tokens from `<rest_endpoint>/identity/oauth/token`; the client secret is sent in a POST body only."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        identity_url: str,
        client_id: str,
        client_secret: str,
        *,
        timeout_s: float,
        clock: Callable[[], float] = time.monotonic,
        on_fetch: Callable[[], None] | None = None,
    ) -> None:
        self._session = session
        self._url = identity_url
        self._form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._clock = clock
        self._on_fetch = on_fetch
        self._lock = asyncio.Lock()
        self._token: str | None = None
        self._use_until = 0.0
        self._refusals = 0
        self._refusal_counted = False  # the current token's refusal is counted already
        self.fetched = 0  # tokens fetched since the start: what `make bench` reports as renewals

    async def token(self) -> str:
        """A token that is good now; raises RestAccessError when the identity service refuses our credentials."""
        token = self._token
        if token is not None and self._clock() < self._use_until:
            return token
        async with self._lock:  # one fetch, however many workers wait for it
            token = self._token
            if token is not None and self._clock() < self._use_until:
                return token
            if self._refusals >= MAX_REFUSALS:
                self._refusals = 0  # the next probe of the access gate tries afresh
                msg = f"Marketo refused {MAX_REFUSALS} access tokens in a row (601/602)"
                raise RestAccessError("601", msg, counted=False)
            return await self._renew()

    async def _renew(self) -> str:
        for _ in range(MAX_WAITS + 1):
            asked = self._clock()
            token, lifetime = await self._fetch()
            if token == self._token and lifetime <= NEARLY_EXPIRED_S:
                await asyncio.sleep(lifetime + 0.1)  # the old token is about to end; its successor comes after
                continue
            self._token = token
            self._use_until = asked + lifetime - renew_margin_s(lifetime)
            self._refusal_counted = False
            self.fetched += 1
            if self._on_fetch is not None:
                self._on_fetch()
            log.info("rest_token_fetched", expires_in_s=lifetime)
            return token
        msg = "the identity service keeps handing back a token about to expire"
        raise TransportError("identity_bad_response", msg, counted=False)

    def refused(self, token: str) -> None:
        """Marketo answered 601 or 602 to a call made with `token`: the next call gets a new one.

        A token handed out is counted refused once, however many calls in flight carried it; a refusal of an older
        token changes nothing (its successor is fetched already).
        """
        if token != self._token or self._refusal_counted:
            return
        self._refusal_counted = True
        self._use_until = 0.0
        self._refusals += 1

    def accepted(self) -> None:
        """A call made with the current token went through."""
        self._refusals = 0

    async def _fetch(self) -> tuple[str, float]:
        try:
            async with self._session.post(self._url, data=self._form, timeout=self._timeout) as response:
                status = response.status
                body = await read_body(response.content, MAX_IDENTITY_BYTES)
        except TimeoutError as exc:
            raise TransportError("identity_timeout", "no reply from the identity service", counted=False) from exc
        except (aiohttp.ClientError, ConnectionError) as exc:
            raise TransportError("identity_connection", f"{type(exc).__name__}: {exc}", counted=False) from exc
        return _read_token(status, body)


def _read_token(status: int, body: bytes) -> tuple[str, float]:
    """The token and its lifetime from an identity reply; the typed error for anything else."""
    try:
        reply = orjson.loads(body)
    except orjson.JSONDecodeError:
        reply = None
    if status in _CREDENTIAL_STATUSES:
        said = reply.get("error_description") if isinstance(reply, dict) else None
        detail = said if isinstance(said, str) else f"HTTP {status}"
        msg = f"the identity service refuses the client id and secret: {detail[:200]}"
        if status == 404:  # noqa: PLR2004
            msg = "no identity service at marketo.rest_endpoint + /identity (HTTP 404): is the base URL right?"
        raise RestAccessError(None, msg, counted=False)
    if status != 200 or not isinstance(reply, dict):  # noqa: PLR2004
        raise TransportError(f"identity_http_{status // 100}xx", f"identity service: HTTP {status}", counted=False)
    token, lifetime = reply.get("access_token"), reply.get("expires_in")
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        raise TransportError("identity_bad_response", "identity reply has no usable access_token", counted=False)
    if isinstance(lifetime, bool) or not isinstance(lifetime, int | float) or lifetime < 0:
        raise TransportError("identity_bad_response", "identity reply has no expires_in", counted=False)
    return token, float(lifetime)
