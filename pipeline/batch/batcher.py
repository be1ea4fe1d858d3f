"""Records -> calls: full batches go at once, a partial one when its oldest record has waited long enough."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from pipeline.records import Batch, Record, Route


@dataclass(slots=True)
class _Open:
    route: Route
    records: list[Record]
    due: float
    bytes: int = 0


DEFAULT_MAX_BYTES: Final = 1024 * 1024


def record_bytes(record: Record) -> int:
    """What a record weighs in a call: the bytes of the events it merged (more than it carries: a bound)."""
    events = record.events
    if len(events) == 1:  # most records
        return len(events[0].message.value or b"")
    return sum(len(event.message.value or b"") for event in events)


class Batcher:
    """One open batch per route, the transport's call shape; a route that takes one record sends each alone.

    Routes: SOAP's syncMultipleLeads and syncMObjects per operation, REST's Sync Leads per (action, lookup field,
    partition), ...
    """

    def __init__(
        self, *, router: Callable[[Record], Route], max_wait_s: float, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> None:
        self.router = router
        self.max_wait_s = max_wait_s
        self.max_bytes = max_bytes
        self._open: dict[Route, _Open] = {}

    def __len__(self) -> int:
        """Records waiting in open batches."""
        return sum(len(b.records) for b in self._open.values())

    def add(self, record: Record, now: float) -> list[Batch]:
        """Place `record`; returns the batches it completes (by count, or by bytes: the one it would overflow)."""
        shape = self.router(record)
        if shape.max_records == 1:
            return [Batch(shape, (record,))]
        size = record_bytes(record)
        closed = []
        current = self._open.get(shape)
        if current is not None and current.bytes + size > self.max_bytes:
            closed.append(self._close(shape))  # this record would make the call's body too large
            current = None
        if current is None:
            current = _Open(shape, [], now + self.max_wait_s)
            self._open[shape] = current
        current.records.append(record)
        current.bytes += size
        if len(current.records) >= shape.max_records or current.bytes >= self.max_bytes:
            closed.append(self._close(shape))
        return closed

    def _close(self, shape: Route) -> Batch:
        current = self._open.pop(shape)
        return Batch(current.route, tuple(current.records))

    def due(self, now: float) -> list[Batch]:
        """Partial batches whose oldest record has waited `max_wait_s`."""
        return [self._close(shape) for shape, current in list(self._open.items()) if current.due <= now]

    def revoke(self, gone: Callable[[Record], bool]) -> None:
        """Take the records `gone` names out of the open batches (their partition was given up)."""
        for shape, current in list(self._open.items()):
            current.records[:] = [record for record in current.records if not gone(record)]
            current.bytes = sum(map(record_bytes, current.records))
            if not current.records:
                del self._open[shape]

    def drain(self) -> list[Batch]:
        """Every open batch, now."""
        return [self._close(shape) for shape in list(self._open)]

    def next_deadline(self) -> float | None:
        """When the next partial batch is due."""
        return min((current.due for current in self._open.values()), default=None)
