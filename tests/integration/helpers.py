"""Building the input messages of integration tests, and holding results to the published schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
from jsonschema import Draft202012Validator

RESULT_SCHEMA = Draft202012Validator(
    json.loads((Path(__file__).resolve().parents[2] / "schemas" / "v1" / "result.schema.json").read_text())
)


def published_results(values: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`values`, each checked against schemas/v1/result.schema.json (what consumers of the topic code against)."""
    for value in values:
        RESULT_SCHEMA.validate(value)
    return values


def events(bodies: list[dict[str, Any]]) -> list[tuple[bytes | None, bytes]]:
    """Input messages for `bodies`, keyed as a producer should (the precedence key is computed by the test)."""
    return [
        (str(body.get("_key", body["event_id"])).encode(), orjson.dumps({k: v for k, v in body.items() if k != "_key"}))
        for body in bodies
    ]
