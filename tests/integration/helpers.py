"""Building the input messages of integration tests."""

from __future__ import annotations

from typing import Any

import orjson


def events(bodies: list[dict[str, Any]]) -> list[tuple[bytes | None, bytes]]:
    """Input messages for `bodies`, keyed as a producer should (the precedence key is computed by the test)."""
    return [
        (str(body.get("_key", body["event_id"])).encode(), orjson.dumps({k: v for k, v in body.items() if k != "_key"}))
        for body in bodies
    ]
