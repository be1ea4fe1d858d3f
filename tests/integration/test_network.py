"""The world's network, not loopback's: replies that arrive in small pieces, with gaps between them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from devkit.kafka import Topics, publish, read_all, wait_for
from devkit.proxy import SegmentingProxy
from devkit.results import read_results
from devkit.service import RunningService
from devkit.simulator import SimClient
from pipeline.deliver.soap import SoapTransport
from pipeline.marketo.soap.envelope import sync_multiple_leads_request
from pipeline.marketo.soap.schema import WSDL_VERSION
from pipeline.records import Lead, RecordStatus
from tests.integration.conftest import CREDENTIALS, pipeline_settings
from tests.integration.helpers import events

pytestmark = pytest.mark.integration


@pytest.fixture
async def proxy(sim: SimClient) -> AsyncIterator[SegmentingProxy]:
    host, port = sim.base_url.removeprefix("http://").split(":")
    async with SegmentingProxy(host, int(port), segment=64, gap_s=0.001) as running:
        yield running


async def test_a_reply_that_arrives_in_small_pieces_is_read_whole(proxy: SegmentingProxy) -> None:
    leads = [Lead(email=f"p{n}@example.com", attributes=(("FirstName", f"F{n}"),)) for n in range(300)]
    async with aiohttp.ClientSession() as session:
        client = SoapTransport(
            session,
            f"{proxy.base_url}/soap/mktows/{WSDL_VERSION}",
            CREDENTIALS,
            timeout_s=30,
            max_response_bytes=16 * 1024 * 1024,
        )
        outcomes = await client.call(sync_multiple_leads_request(leads, dedup_enabled=True), expected=300)
    assert [o.status for o in outcomes] == [RecordStatus.CREATED] * 300
    assert proxy.segments > 100  # the reply really came in pieces


async def test_the_pipeline_through_a_network_that_cuts_replies_answers_every_lead_first_time(
    kafka_bootstrap: str, topics: Topics, sim: SimClient, proxy: SegmentingProxy
) -> None:
    bodies: list[dict[str, Any]] = [
        {"_key": f"email:n{n}@example.com", "event_id": f"evt-{n}", "lead": {"Email": f"n{n}@example.com"}}
        for n in range(900)
    ]
    settings = pipeline_settings(
        kafka_bootstrap, topics, sim, marketo={"endpoint": f"{proxy.base_url}/soap/mktows/{WSDL_VERSION}"}
    )
    async with RunningService(settings):
        await publish(kafka_bootstrap, topics.input, events(bodies))

        async def answered() -> bool:
            return (await read_results(kafka_bootstrap, topics)).events >= len(bodies)

        await wait_for(answered, timeout_s=120, what="every lead answered")
    results = (await read_all(kafka_bootstrap, topics.results)).values
    assert {(r["status"], r["attempts"]) for r in results} == {("CREATED", 1)}
    assert (await read_all(kafka_bootstrap, topics.dlq, json_values=False)).raw == []
    assert (await sim.admin("stats"))["leads"] == len(bodies)
    assert proxy.segments > 100
