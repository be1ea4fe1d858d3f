"""The whole pipeline on the real Kafka broker and the simulator over HTTP."""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import pytest

from devkit.kafka import Topics, committed, create_topics, publish, read_all, wait_for
from devkit.results import read_results
from devkit.service import RunningService
from devkit.simulator import SimClient
from pipeline.contract import DlqHeader
from tests.integration.conftest import CREDENTIALS, pipeline_settings
from tests.integration.helpers import events, published_results

pytestmark = pytest.mark.integration


def lead(n: int, **attributes: Any) -> dict[str, Any]:
    email = f"person{n}@example.com"
    return {
        "_key": f"email:{email}",
        "event_id": f"evt-{n}",
        "lead": {"Email": email, "attributes": {"FirstName": f"F{n}", **attributes}},
    }


async def results_for(bootstrap: str, topics: Topics, count: int) -> list[dict[str, Any]]:
    async def enough() -> list[dict[str, Any]] | None:
        values = (await read_all(bootstrap, topics.results)).values
        return values if sum(len(v["event_ids"]) for v in values) >= count else None

    result: list[dict[str, Any]] = await wait_for(enough, what=f"results for {count} events")
    return published_results(result)


async def test_happy_path_for_all_three_calls(kafka_bootstrap: str, topics: Topics, sim: SimClient) -> None:
    bodies = [lead(n) for n in range(500)]
    bodies += [
        {"_key": "cookie:c-1", "event_id": "evt-cookie", "lead": {"MarketoCookie": "c-1", "attributes": {"City": "Paris"}}},
        {"_key": "email:r@example.com", "event_id": "evt-return", "lead": {"Email": "r@example.com"}, "return_lead": True},
        {"_key": "mobj:Opportunity:ExtId=O-1", "event_id": "evt-opp", "kind": "mobject",
         "mobject": {"type": "Opportunity", "externalKey": {"name": "ExtId", "value": "O-1"}, "attribs": {"Name": "Deal"}}},
        {"_key": "mobj:Program:1970", "event_id": "evt-prog", "kind": "mobject", "operation": "UPDATE",
         "mobject": {"type": "Program", "id": 1970, "typeAttribs": [{"attrType": "Cost", "attribs": {"Month": "2026-11", "Amount": 500}}]}},
    ]  # fmt: skip
    async with RunningService(pipeline_settings(kafka_bootstrap, topics, sim)):
        await publish(kafka_bootstrap, topics.input, events(bodies))
        results = await results_for(kafka_bootstrap, topics, len(bodies))
    by_event = {event_id: r for r in results for event_id in r["event_ids"]}
    assert set(by_event) == {b["event_id"] for b in bodies}
    assert len(results) == len(bodies)
    assert by_event["evt-0"]["operation"] == "syncMultipleLeads"
    assert by_event["evt-0"]["status"] == "CREATED"
    assert by_event["evt-0"]["sources"][0]["topic"] == topics.input
    assert by_event["evt-cookie"]["operation"] == "syncLead"
    assert by_event["evt-return"]["lead"]["Email"] == "r@example.com"
    assert by_event["evt-opp"]["operation"] == "syncMObjects"
    assert by_event["evt-opp"]["mobject_id"] is not None
    assert by_event["evt-prog"]["status"] == "UPDATED"
    leads = (await sim.admin("leads"))["leads"]
    assert len(leads) == 502
    stats = await sim.admin("stats")
    assert stats["calls"]["syncMultipleLeads"] <= 4  # 500 leads: two full calls and what the windows left
    assert (await read_all(kafka_bootstrap, topics.dlq, json_values=False)).raw == []
    offsets = await committed(kafka_bootstrap, topics.group)
    assert sum(offsets.values()) == len(bodies)
    assert Counter(r["status"] for r in results)["FAILED"] == 0


async def test_merge_order_and_identity_conflicts(kafka_bootstrap: str, topics: Topics, sim: SimClient) -> None:
    # Three changes of one lead inside the window: one record, later wins.
    bodies: list[dict[str, Any]] = [
        {
            "_key": "email:m@example.com",
            "event_id": f"evt-m{step}",
            "lead": {"Email": "m@example.com", "attributes": {"Step": str(step), f"Only{step}": "x"}},
        }
        for step in range(3)
    ]
    for n in range(60):  # pairs of records that share an Email but not a precedence key
        shared = f"shared{n}@example.com"
        bodies.append(
            {
                "_key": f"fsp:SFDC:S-{n}",
                "event_id": f"evt-fsp{n}",
                "lead": {
                    "ForeignSysPersonId": f"S-{n}",
                    "ForeignSysType": "SFDC",
                    "Email": shared,
                    "attributes": {"Source": "crm"},
                },
            }
        )
        bodies.append(
            {
                "_key": f"email:{shared}",
                "event_id": f"evt-mail{n}",
                "lead": {"Email": shared, "attributes": {"Source": "web"}},
            }
        )
    bodies += [lead(n) for n in range(200)]
    settings = pipeline_settings(kafka_bootstrap, topics, sim, dedupe={"window_ms": 1500}, batch={"max_wait_ms": 300})
    async with RunningService(settings):
        await publish(kafka_bootstrap, topics.input, events(bodies))
        results = await results_for(kafka_bootstrap, topics, len(bodies))
    merged = [r for r in results if r["key"] == "email:m@example.com"]
    assert len(merged) == 1
    assert merged[0]["event_ids"] == ["evt-m0", "evt-m1", "evt-m2"]
    stored = {lead["Email"]: lead for lead in (await sim.admin("leads"))["leads"]}
    assert stored["m@example.com"]["attributes"] == {"Step": "2", "Only0": "x", "Only1": "x", "Only2": "x"}
    calls = (await sim.admin("calls"))["calls"]
    spans: dict[str, list[tuple[float, float]]] = {}
    for call in calls:
        identities = call["identities"]
        assert len(identities) == len(set(identities)), "two records sharing an identity in one call"
        for identity in identities:
            spans.setdefault(identity, []).append((call["started"], call["ended"]))
    for identity, intervals in spans.items():
        ordered = sorted(intervals)
        for (_, first_end), (second_start, _) in itertools.pairwise(ordered):
            assert first_end <= second_start, f"{identity} was in two calls at once"
    assert sum(len(v) > 1 for k, v in spans.items() if k.startswith("email:shared")) == 60


INVALID = [
    b'{"event_id": "broken", "lead": ',
    b"\xff\xfe\x00 not utf-8",
    b'{"lead": {"Email": "no-id@example.com"}}',
    b'{"event_id": "e-bad-id", "lead": {"Id": "seven"}}',
    b'{"event_id": "e-ctrl", "lead": {"Email": "c@example.com", "attributes": {"Notes": "\\u0007"}}}',
    b"[1, 2, 3]",
]


async def test_malformed_events_are_dead_lettered_with_reasons_and_the_partition_moves_on(
    kafka_bootstrap: str, topics: Topics, sim: SimClient
) -> None:
    good = [lead(n) for n in range(20)]
    messages = [(f"bad-{n}".encode(), raw) for n, raw in enumerate(INVALID)] + events(good)
    async with RunningService(pipeline_settings(kafka_bootstrap, topics, sim)) as running:
        await publish(kafka_bootstrap, topics.input, messages, headers=[("trace-id", b"abc")])
        await results_for(kafka_bootstrap, topics, len(good))

        async def dead_letters() -> Any:
            collected = await read_all(kafka_bootstrap, topics.dlq, json_values=False)
            return collected if len(collected.raw) >= len(INVALID) else None

        dlq = await wait_for(dead_letters, what="dead letters")
        metrics = await _text(f"{running.ops_url}/metrics")
    assert sorted(dlq.raw) == sorted(INVALID)  # the original bytes, unchanged
    assert sorted(k or b"" for k in dlq.keys) == sorted(f"bad-{n}".encode() for n in range(len(INVALID)))
    reasons = Counter(h[DlqHeader.REASON] for h in dlq.headers)
    assert reasons == {b"invalid_json": 2, b"invalid_event": 4}
    for headers in dlq.headers:
        assert headers[DlqHeader.SOURCE_TOPIC] == topics.input.encode()
        assert int(headers[DlqHeader.SOURCE_OFFSET]) >= 0
        assert headers[DlqHeader.ERROR]
        assert headers[DlqHeader.ATTEMPTS] == b"0"
        assert headers[DlqHeader.REPLAYS] == b"0"
        assert headers[DlqHeader.FAILED_AT].endswith(b"Z")
        assert headers["trace-id"] == b"abc"
    assert 'marketo_pipeline_events_invalid_total{reason="invalid_json"} 2.0' in metrics
    assert sum((await committed(kafka_bootstrap, topics.group)).values()) == len(messages)


async def _text(url: str) -> str:
    import aiohttp  # noqa: PLC0415

    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return await response.text()


async def _status(url: str) -> int:
    import aiohttp  # noqa: PLC0415

    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status


async def test_a_poison_attribute_fails_only_its_record(kafka_bootstrap: str, topics: Topics, sim: SimClient) -> None:
    await sim.configure(lead_fields=["FirstName"])
    bodies = [lead(n) for n in range(300)]
    bodies[137]["lead"]["attributes"]["Pants"] = "purple"
    settings = pipeline_settings(kafka_bootstrap, topics, sim, dedupe={"window_ms": 100}, batch={"max_wait_ms": 3000})
    async with RunningService(settings):
        await publish(kafka_bootstrap, topics.input, events(bodies))
        results = await results_for(kafka_bootstrap, topics, len(bodies))

        async def dead_letter() -> Any:
            collected = await read_all(kafka_bootstrap, topics.dlq, json_values=False)
            return collected if collected.raw else None

        dlq = await wait_for(dead_letter, what="the poison record's dead letter")
    failed = [r for r in results if r["status"] == "FAILED"]
    assert [r["event_ids"] for r in failed] == [["evt-137"]]
    assert failed[0]["error"]["code"] == "20105"
    assert Counter(r["status"] for r in results)["CREATED"] == 299
    assert len(dlq.raw) == 1
    assert dlq.headers[0][DlqHeader.REASON] == b"marketo_rejected"
    assert "evt-137" in dlq.raw[0].decode()
    assert len((await sim.admin("leads"))["leads"]) == 299


async def test_transient_faults_lose_nothing(kafka_bootstrap: str, topics: Topics, sim: SimClient) -> None:
    await sim.configure(
        faults=[
            {"kind": "http_500", "rate": 0.04},
            {"kind": "http_503", "rate": 0.04},
            {"kind": "fault", "code": "20011", "rate": 0.04},
            {"kind": "fault", "code": "20023", "rate": 0.02},
            {"kind": "fault", "code": "20024", "rate": 0.02},
            {"kind": "reset", "rate": 0.02},
            {"kind": "timeout", "rate": 0.01},
            {"kind": "http_500", "rate": 0.02, "phase": "after"},
        ],
        timeout_hold_s=30,
    )
    bodies = [lead(n) for n in range(900)]
    bodies += [{"_key": f"cookie:c{n}", "event_id": f"evt-c{n}", "lead": {"MarketoCookie": f"c{n}"}} for n in range(60)]
    settings = pipeline_settings(
        kafka_bootstrap, topics, sim, marketo={"timeout_s": 1.0}, batch={"max_leads": 50}, deliver={"max_attempts": 12}
    )
    async with RunningService(settings) as running:
        await publish(kafka_bootstrap, topics.input, events(bodies))
        results = await results_for(kafka_bootstrap, topics, len(bodies))
        metrics = await _text(f"{running.ops_url}/metrics")
    assert {e for r in results for e in r["event_ids"]} == {b["event_id"] for b in bodies}
    assert all(r["status"] in {"CREATED", "UPDATED"} for r in results)
    assert (await read_all(kafka_bootstrap, topics.dlq, json_values=False)).raw == []
    assert len((await sim.admin("leads"))["leads"]) == len(bodies)
    assert (await sim.admin("stats"))["faults_injected"] > 0
    assert "marketo_pipeline_retries_total" in metrics


async def test_rate_and_concurrency_limits_are_never_exceeded(
    kafka_bootstrap: str, topics: Topics, sim: SimClient
) -> None:
    await sim.configure(calls_per_20s=12, max_concurrency=2, latency_ms=150)
    bodies = [{"_key": f"cookie:c{n}", "event_id": f"evt-c{n}", "lead": {"MarketoCookie": f"c{n}"}} for n in range(20)]
    settings = pipeline_settings(kafka_bootstrap, topics, sim, deliver={"calls_per_20s": 12, "max_concurrency": 2})
    async with RunningService(settings):
        await publish(kafka_bootstrap, topics.input, events(bodies))
        await results_for(kafka_bootstrap, topics, len(bodies))
    stats = await sim.admin("stats")
    assert stats["calls"]["syncLead"] == 20
    assert stats["rejected"]["20023"] == 0
    assert stats["rejected"]["20024"] == 0
    assert stats["peak_concurrency"] == 2


async def test_rejected_credentials_pause_and_recover_without_dead_letters(
    kafka_bootstrap: str, topics: Topics, sim: SimClient
) -> None:
    await sim.configure(secret_key="not-the-pipelines-key")
    bodies = [lead(n) for n in range(30)]
    async with RunningService(pipeline_settings(kafka_bootstrap, topics, sim)) as running:
        await publish(kafka_bootstrap, topics.input, events(bodies))

        async def refused() -> bool:
            return (
                await _status(f"{running.ops_url}/readyz") == 503
                and (await sim.admin("stats"))["rejected"]["20014"] > 2
            )

        await wait_for(refused, what="the service to stop being ready")
        assert "Marketo refuses our calls" in await _text(f"{running.ops_url}/readyz")
        # what an orchestrator probes: the Kafka clients are up, so the pod is not taken out for Marketo's refusal
        assert await _status(f"{running.ops_url}/readyz/kafka") == 200
        assert (await read_all(kafka_bootstrap, topics.results)).values == []
        await sim.configure(secret_key=CREDENTIALS.secret_key)
        results = await results_for(kafka_bootstrap, topics, len(bodies))

        async def ready() -> bool:
            return await _status(f"{running.ops_url}/readyz") == 200

        await wait_for(ready, what="readiness to come back")
    assert {r["status"] for r in results} == {"CREATED"}
    assert (await read_all(kafka_bootstrap, topics.dlq, json_values=False)).raw == []


async def test_a_spent_retry_budget_fails_the_record_as_retries_exhausted(
    kafka_bootstrap: str, topics: Topics, sim: SimClient
) -> None:
    await sim.configure(faults=[{"kind": "http_503", "rate": 1.0, "operation": "syncLead"}])
    bodies = [lead(1), {"_key": "cookie:c-9", "event_id": "evt-cookie", "lead": {"MarketoCookie": "c-9"}}]
    settings = pipeline_settings(kafka_bootstrap, topics, sim, deliver={"max_attempts": 3})
    async with RunningService(settings):
        await publish(kafka_bootstrap, topics.input, events(bodies))
        results = await results_for(kafka_bootstrap, topics, len(bodies))

        async def dead_letter() -> Any:
            collected = await read_all(kafka_bootstrap, topics.dlq, json_values=False)
            return collected if collected.raw else None

        dlq = await wait_for(dead_letter, what="the exhausted record's dead letter")
    by_event = {r["event_ids"][0]: r for r in results}
    assert by_event["evt-1"]["status"] == "CREATED"
    assert (by_event["evt-cookie"]["status"], by_event["evt-cookie"]["attempts"]) == ("FAILED", 3)
    assert "retries exhausted after 3 attempts" in by_event["evt-cookie"]["error"]["message"]
    assert [h[DlqHeader.REASON] for h in dlq.headers] == [b"retries_exhausted"]
    assert dlq.headers[0][DlqHeader.ATTEMPTS] == b"3"
    assert (await sim.admin("stats"))["calls"]["syncLead"] == 3


async def test_a_dead_letter_too_large_for_its_topic_goes_without_its_value_and_the_service_goes_on(
    kafka_bootstrap: str, sim: SimClient
) -> None:
    topics = Topics.unique()
    await create_topics(kafka_bootstrap, topics, partitions=1, configs={topics.dlq: {"max.message.bytes": "100000"}})
    huge = {"_key": "email:h@example.com", "event_id": "evt-huge", "lead": {"Email": "h@example.com", "attributes": {"Notes": "n" * 200_000}}}  # fmt: skip
    bodies = [huge, lead(1)]
    async with RunningService(pipeline_settings(kafka_bootstrap, topics, sim)):
        await publish(kafka_bootstrap, topics.input, events(bodies))

        async def accounted() -> bool:
            return (await read_results(kafka_bootstrap, topics)).events >= len(bodies)

        await wait_for(accounted, what="the huge event dead-lettered and the other answered")

        async def committed_all() -> bool:
            return sum((await committed(kafka_bootstrap, topics.group)).values()) == len(bodies)

        await wait_for(committed_all, what="both offsets committed")
    dlq = await read_all(kafka_bootstrap, topics.dlq, json_values=False)
    assert len(dlq.headers) == 1
    assert dlq.headers[0][DlqHeader.VALUE_OMITTED] == b"true"
    assert dlq.headers[0][DlqHeader.SOURCE_OFFSET] == b"0"
    assert dlq.raw == [b""]  # no value: the source coordinates find the original


async def test_the_topics_command_gives_the_dead_letter_topic_room_for_any_input_message_and_its_headers(
    kafka_bootstrap: str,
) -> None:
    from rich.console import Console  # noqa: PLC0415

    from pipeline.config import Settings  # noqa: PLC0415
    from pipeline.ingest.admin import max_message_bytes  # noqa: PLC0415
    from pipeline.ops.topics import create_topics as create_pipeline_topics  # noqa: PLC0415
    from pipeline.outcome.letter import DLQ_HEADROOM_BYTES  # noqa: PLC0415

    names = Topics.unique()
    kafka = {"bootstrap": kafka_bootstrap, "input_topic": names.input, "results_topic": names.results}
    settings = Settings(kafka={**kafka, "dlq_topic": names.dlq, "budget_topic": names.budget})
    status = await create_pipeline_topics(settings, 1, console=Console(quiet=True))
    assert status[names.budget] == "created"  # the group's Marketo budget of the day
    limits = await max_message_bytes(kafka_bootstrap, [names.input, names.dlq])
    assert limits[names.dlq] == settings.kafka.max_message_bytes + DLQ_HEADROOM_BYTES
    assert limits[names.dlq] > limits[names.input]


async def test_the_topics_command_applies_the_topic_configs_given_and_keeps_the_dead_letter_room(
    kafka_bootstrap: str,
) -> None:
    from rich.console import Console  # noqa: PLC0415

    from pipeline.config import Settings  # noqa: PLC0415
    from pipeline.ingest.admin import max_message_bytes  # noqa: PLC0415
    from pipeline.ops.topics import create_topics as create_pipeline_topics  # noqa: PLC0415
    from pipeline.outcome.letter import DLQ_HEADROOM_BYTES  # noqa: PLC0415

    names = Topics.unique()
    settings = Settings(
        kafka={"bootstrap": kafka_bootstrap, "input_topic": names.input, "results_topic": names.results,
               "dlq_topic": names.dlq, "budget_topic": names.budget}
    )  # fmt: skip
    await create_pipeline_topics(
        settings, 1, console=Console(quiet=True), replication=1, configs={"max.message.bytes": "2000000"}
    )
    limits = await max_message_bytes(kafka_bootstrap, [names.input, names.results, names.dlq])
    assert (limits[names.input], limits[names.results]) == (2_000_000, 2_000_000)
    assert limits[names.dlq] == settings.kafka.max_message_bytes + DLQ_HEADROOM_BYTES
