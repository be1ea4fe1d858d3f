"""The logs of a whole run: JSON lines, records located by topic/partition/offset, nothing personal or secret."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import structlog

from devkit.kafka import Topics, publish, read_all, wait_for
from devkit.service import RunningService
from devkit.simulator import SimClient
from pipeline.logs import configure_logging
from tests.integration.conftest import CREDENTIALS, pipeline_settings
from tests.integration.helpers import events

pytestmark = pytest.mark.integration

EMAILS = ("grace.hopper@navy.example", "alan.turing@bletchley.example", "bad.json@example.com")
COOKIE = "id:561-HYG-937&token:_mch-secret-cookie-123"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    configure_logging("debug", stream=buffer)
    yield buffer
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


async def test_a_run_logs_json_with_sources_and_without_personal_data_or_secrets(
    kafka_bootstrap: str, topics: Topics, sim: SimClient, captured: io.StringIO
) -> None:
    await sim.configure(lead_fields=["FirstName"])
    bodies: list[dict[str, Any]] = [
        {
            "_key": f"email:{EMAILS[0]}",
            "event_id": "evt-ok",
            "lead": {"Email": EMAILS[0], "attributes": {"FirstName": "Grace"}},
        },
        {
            "_key": f"email:{EMAILS[1]}",
            "event_id": "evt-poison",
            "lead": {"Email": EMAILS[1], "attributes": {"Enigma": "x"}},
        },
        {
            "_key": f"cookie:{COOKIE}",
            "event_id": "evt-cookie",
            "lead": {"MarketoCookie": COOKIE, "attributes": {"Unknown": "y"}},
        },
    ]
    messages = [
        *events(bodies),
        (b"bad", f'{{"event_id": "evt-bad", "lead": {{"Email": "{EMAILS[2]}", "Id": "x"}}}}'.encode()),
    ]
    async with RunningService(pipeline_settings(kafka_bootstrap, topics, sim)):
        await publish(kafka_bootstrap, topics.input, messages)

        async def three_dead_letters() -> bool:
            return len((await read_all(kafka_bootstrap, topics.dlq, json_values=False)).raw) >= 3

        await wait_for(three_dead_letters, what="the dead letters")
    text = captured.getvalue()
    lines = [orjson.loads(line) for line in text.splitlines() if line.strip()]
    assert lines, "the run logged nothing"
    assert all(isinstance(line, dict) and "event" in line and "timestamp" in line for line in lines)
    for secret in (*EMAILS, COOKIE, "_mch-secret-cookie-123", CREDENTIALS.secret_key):
        assert secret not in text, f"{secret!r} was written to the logs"
    assert not re.search(r"\b[0-9a-f]{40}\b", text), "a request signature was written to the logs"
    dead = [line for line in lines if line["event"] == "event_dead_lettered"]
    assert {line.get("event_id") or "invalid" for line in dead} == {"evt-poison", "evt-cookie", "invalid"}
    for line in dead:
        assert line["topic"] == topics.input
        assert isinstance(line["partition"], int)
        assert isinstance(line["offset"], int)
        assert line["reason"] in {"marketo_rejected", "invalid_event"}
    assert any("email:a***@bletchley.example" in str(line.get("key")) for line in dead)
    assert any(str(line.get("key")).startswith("cookie:***") for line in dead)
    started = next(line for line in lines if line["event"] == "service_started")
    assert started["settings"]["marketo"]["secret_key"] == "[redacted]"  # masked in nested values too
