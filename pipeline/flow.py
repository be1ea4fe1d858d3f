"""The in-memory flow: dedupe window -> ordering gate -> batcher -> outbox. Events in, batches out.

Pure: no asyncio, no Kafka, the clock passed in. The service feeds it events and results and sends what it
puts out; tests drive it with any stream of events and any clock. It guarantees (property-tested):

- every event it is given ends in exactly one batch, once the batches it put out are completed and it is
  drained;
- no batch is over its call's limit (300 leads, 100 objects, one syncLead);
- records that share an identity value are never in one batch, nor out (taken and not completed) together:
  the later waits in the gate until the earlier completes, so per-lead order holds.

When a partial batch goes: when its oldest record has waited `max_wait_s`; at once when no record could
still join it (the window and the gate hold none, and a batch waits no longer than a record spends in the
window); under backpressure up to `HOLD_WINDOWS` windows later, for the events behind the pause.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Final

from pipeline.batch.batcher import DEFAULT_MAX_BYTES, Batcher
from pipeline.dedupe.gate import OrderGate
from pipeline.dedupe.links import DEFAULT_CAPACITY, IdentityLinks
from pipeline.dedupe.window import DEFAULT_MAX_EVENTS, DedupeWindow
from pipeline.marketo.soap.route import soap_router
from pipeline.offsets import PartitionId
from pipeline.records import Batch, Event, Record, Route

HOLD_WINDOWS: Final = 4  # dedupe windows a partial batch may wait beyond its time under backpressure


@dataclass(frozen=True, slots=True)
class FlowLimits:
    """How long events merge, how long and how full batches get, how much the flow remembers."""

    window_s: float
    max_wait_s: float
    max_leads: int
    max_mobjects: int
    max_record_events: int = DEFAULT_MAX_EVENTS
    max_linked_identities: int = DEFAULT_CAPACITY
    max_batch_bytes: int = DEFAULT_MAX_BYTES


class Flow:
    """Window, gate, batcher and outbox, and the rules that move records between them."""

    def __init__(self, limits: FlowLimits, router: Callable[[Record], Route] | None = None) -> None:
        """`router` says which call carries a record (the transport's); SOAP's by default."""
        links = IdentityLinks(limits.max_linked_identities, busy=self._busy)
        self.gate = OrderGate(links)
        self.window = DedupeWindow(
            limits.window_s, links=links, on_link=self.gate.join, max_events=limits.max_record_events
        )
        self.batcher = Batcher(
            router=router or soap_router(max_leads=limits.max_leads, max_mobjects=limits.max_mobjects),
            max_wait_s=limits.max_wait_s,
            max_bytes=limits.max_batch_bytes,
        )
        self._outbox: deque[Batch] = deque()
        self._out: dict[int, Record] = {}  # taken and not completed: at Marketo, or on their way
        # Any record to come must first spend a whole window in the window, longer than a partial batch waits.
        self._flush_when_idle = limits.max_wait_s <= limits.window_s
        self._hold_s = HOLD_WINDOWS * limits.window_s
        self.draining = False

    # --- in ------------------------------------------------------------------------------------

    def add(self, event: Event, now: float) -> None:
        """An event read from the input: it merges into its key's open record, or opens one."""
        for record in self.window.add(event, now):
            self._admit(record, now)

    def release(self, now: float, *, held: bool = False) -> None:
        """Move on what is due at `now`; `held`: events to fill partial batches are behind (paused, or a backlog)."""
        if self.draining:
            self.flush(now)
            return
        for record in self.window.expired(now):
            self._admit(record, now)
        # Under backpressure the events that will fill partial batches come once the pending ones are
        # answered: a partial call now would be a call lost to the rate limit.
        due = self.batcher.due(now - self._hold_s if held else now)
        if self._flush_when_idle and not held and not self.window and not self.gate.waiting and len(self.batcher):
            due += self.batcher.drain()  # nothing could join these batches in time: the tail of a backlog
        self._outbox.extend(due)

    def complete(self, records: Iterable[Record], now: float) -> None:
        """`records` have their results: the records that waited for them in the gate go on.

        While draining, what they release goes at once, in as few batches as it fills.
        """
        for record in records:
            del self._out[id(record)]
            for ready in self.gate.complete(record):
                self._enqueue(ready, now)  # admitted already: straight to its batch
        if self.draining:
            self.flush(now)

    def flush(self, now: float) -> None:
        """Everything open goes now: the window's records, and every partial batch."""
        for record in self.window.drain():
            self._admit(record, now)
        self._outbox.extend(self.batcher.drain())

    def drain(self, now: float) -> None:
        """From now on nothing waits: what is open goes now, and so does what the gate releases later."""
        self.draining = True
        self.flush(now)

    # --- out -----------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Batches are waiting to be sent."""
        return bool(self._outbox)

    def take(self) -> Batch:
        """The oldest batch waiting to be sent; raises IndexError when there is none."""
        batch = self._outbox.popleft()
        out = self._out
        for record in batch.records:
            out[id(record)] = record
        return batch

    def revoke(self, partitions: Collection[PartitionId], now: float) -> list[Record]:
        """Partitions given up in a rebalance: nothing of theirs is sent from now on.

        Their open records are dropped, and so are their records waiting in the gate, the batches and the outbox.
        Records already out (sent, or on their way) stay, and are returned: they are not to be sent again (an
        attempt at Marketo ends as it does), and their answers complete them as usual.
        """

        def gone(record: Record) -> bool:
            source = record.events[0].message.source
            return (source.topic, source.partition) in partitions

        self.window.revoke(partitions)
        released = self.gate.revoke(gone, self._out)
        self.batcher.revoke(gone)
        kept = [Batch(b.route, tuple(r for r in b.records if not gone(r))) for b in self._outbox]
        self._outbox = deque(batch for batch in kept if batch.records)
        for record in released:
            self._enqueue(record, now)
        return [record for record in self._out.values() if gone(record)]

    def out_in(self, partitions: Collection[PartitionId]) -> int:
        """Records of `partitions` that are out: sent and not answered."""
        count = 0
        for record in self._out.values():
            source = record.events[0].message.source
            count += (source.topic, source.partition) in partitions
        return count

    def next_deadline(self, *, held: bool = False) -> float | None:
        """When the window or the batcher next has something due (a held batch's later time under backpressure)."""
        batch_due = self.batcher.next_deadline()
        if batch_due is not None and held and not self.draining:
            batch_due += self._hold_s
        deadlines = [d for d in (self.window.next_deadline(), batch_due) if d is not None]
        return min(deadlines, default=None)

    @property
    def merged(self) -> int:
        """Events absorbed into an already open record, since the start."""
        return self.window.merged

    def sizes(self) -> dict[str, int]:
        """Where the records are: for logs and for finding a stall."""
        return {
            "window_records": len(self.window),
            "gate_records": len(self.gate),
            "gate_waiting": self.gate.waiting,
            "batcher_records": len(self.batcher),
            "outbox_batches": len(self._outbox),
        }

    # --- between -------------------------------------------------------------------------------

    def _busy(self, root: str) -> bool:
        """Whether a record still open or unfinished reaches the component `root` stands for."""
        return self.window.holds(root) or self.gate.holds(root)

    def _admit(self, record: Record, now: float) -> None:
        """A record leaves the window: it goes on now unless an earlier record holds one of its identities."""
        if self.gate.admit(record):
            self._outbox.extend(self.batcher.add(record, now))

    def _enqueue(self, record: Record, now: float) -> None:
        self._outbox.extend(self.batcher.add(record, now))
