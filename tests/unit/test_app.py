from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from typing import Any

import pytest

from pipeline.app import Service
from pipeline.config import Settings
from pipeline.errors import FatalError


async def test_a_fatal_error_inside_the_task_group_comes_out_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    service = Service(Settings())
    fatal = FatalError("the broker did not acknowledge results or dead letters")

    async def wire(_stack: AsyncExitStack, _stop: asyncio.Event) -> Any:
        return object()

    async def loops(*_: object) -> None:
        raise ExceptionGroup("unhandled errors in a TaskGroup", [fatal])

    monkeypatch.setattr(service, "_wire", wire)
    monkeypatch.setattr(service, "_run_loops", loops)
    with pytest.raises(FatalError) as caught:
        await service.run(asyncio.Event())
    assert caught.value is fatal


async def test_other_failures_of_the_task_group_are_not_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    service = Service(Settings())

    async def wire(_stack: AsyncExitStack, _stop: asyncio.Event) -> Any:
        return object()

    async def loops(*_: object) -> None:
        raise ExceptionGroup("unhandled errors in a TaskGroup", [ValueError("a bug")])

    monkeypatch.setattr(service, "_wire", wire)
    monkeypatch.setattr(service, "_run_loops", loops)
    with pytest.raises(ExceptionGroup):
        await service.run(asyncio.Event())


class _Source:
    def __init__(self) -> None:
        self.paused = False

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False


def test_reading_pauses_on_bytes_as_well_as_on_events() -> None:
    from pipeline.records import Source  # noqa: PLC0415

    service = Service(Settings(ingest={"max_pending_events": 1000, "max_pending_bytes": 1024 * 1024}))
    source = _Source()
    for offset in range(4):  # four events of 300 KB: few, but heavy
        service.book.consumed(Source("t", 0, offset), 300 * 1024)
    service._backpressure(source)  # type: ignore[arg-type]
    assert source.paused
    for offset in range(3):
        service.book.completed(Source("t", 0, offset))
    service._backpressure(source)  # type: ignore[arg-type]
    assert not source.paused


async def test_a_record_out_when_its_partition_was_revoked_stays_given_up_when_the_partition_comes_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pipeline import app  # noqa: PLC0415
    from tests.unit.events import lead_event  # noqa: PLC0415

    monkeypatch.setattr(app, "REVOKE_MARGIN_S", 0.0)
    service = Service(
        Settings(marketo={"timeout_s": 0.01}, service={"rebalance_drain_s": 0.01}, dedupe={"window_ms": 0})
    )
    event = lead_event("e1", partition=4, Email="a@x.com")
    service.flow.add(event, 0.0)
    service.flow.drain(0.0)
    [record] = service.flow.take().records  # out: at the pool, or at Marketo
    partition = [("leads.changes", 4)]
    await service._on_revoked(partition)
    assert service._given_up(record)
    await service._on_assigned(partition)  # the partition comes back: a new ownership
    assert service._given_up(record)  # the old copy is still not to be sent: the next owner sent newer data
    newer = lead_event("e2", partition=4, Email="a@x.com")
    service.flow.add(newer, 1.0)
    service.flow.drain(1.0)
    assert not service.flow.ready  # it waits in the gate for the old copy's answer
    service.flow.complete([record], 1.1)
    [fresh] = service.flow.take().records
    assert not service._given_up(fresh)
