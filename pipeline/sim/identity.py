"""The simulated identity service: OAuth 2 client credentials in, access tokens out, and their checks.

As Marketo's (authentication.md): a token lives `token_ttl_s` (an hour by default); asked again while the token
lives, the service hands back the same token with its remaining lifespan. A token's end is computed with the
current `token_ttl_s`, so lowering it expires live tokens at once: that is how tests force 602. A token seen expired
(or replaced by a new one) stays expired when `token_ttl_s` is raised again, as Marketo's never come back.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Final

REMEMBERED_TOKENS: Final = 1_000  # expired tokens are told from unknown ones (602 versus 601) this far back
_ENDED: Final = float("-inf")  # the issue time of a token known to be expired: no lifetime brings it back


class TokenIssuer:
    """Issues and checks access tokens for one client id."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._issued: OrderedDict[str, float] = OrderedDict()  # token -> when it was issued
        self._current: str | None = None
        self.issued = 0

    def token(self, ttl_s: float) -> tuple[str, int]:
        """The live token and its remaining seconds, or a new one."""
        now = self._clock()
        current = self._current
        if current is not None:
            left = self._issued[current] + ttl_s - now
            if left > 0:
                return current, int(left)
            self._issued[current] = _ENDED
        token = f"{secrets.token_hex(16)}:sim"
        self._issued[token] = now
        while len(self._issued) > REMEMBERED_TOKENS:
            self._issued.popitem(last=False)
        self._current = token
        self.issued += 1
        return token, int(ttl_s)

    def check(self, token: str | None, ttl_s: float) -> str | None:
        """None when `token` is live; else 601 (unknown, or none) or 602 (expired)."""
        if not token:
            return "601"
        issued = self._issued.get(token)
        if issued is None:
            return "601"
        if self._clock() < issued + ttl_s:
            return None
        self._issued[token] = _ENDED
        return "602"

    def reset(self) -> None:
        """Forget every token."""
        self._issued.clear()
        self._current = None
