"""Per-partition watermarks: an offset is committable only when every event at or below it is answered."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from pipeline.records import Source

PartitionId = tuple[str, int]


class PartitionOffsets:
    """Offsets consumed from one partition, in order, until they and all before them are done."""

    def __init__(self) -> None:
        self._pending: deque[int] = deque()
        self._sizes: deque[int] = deque()  # the bytes of each pending offset's message, beside it
        self._done: set[int] = set()
        self._next: int | None = None
        self.bytes = 0  # of the messages not yet behind the watermark

    def __len__(self) -> int:
        return len(self._pending)

    def consumed(self, offset: int, size: int = 0) -> None:
        """`offset` (a message of `size` bytes) was read; offsets arrive in increasing order."""
        self._pending.append(offset)
        self._sizes.append(size)
        self.bytes += size
        self._next = offset + 1

    def completed(self, offset: int) -> bool:
        """`offset` has its result or dead letter; False when it is not an offset this partition waits for.

        An answer for an offset below the watermark, or not read yet (an earlier ownership of this partition
        answering late), changes nothing: it could never leave the set of answered offsets.
        """
        pending = self._pending
        if not pending or not pending[0] <= offset < (self._next or 0) or offset in self._done:
            return False
        self._done.add(offset)
        sizes = self._sizes
        while pending and pending[0] in self._done:
            self._done.discard(pending.popleft())
            self.bytes -= sizes.popleft()
        if not pending:
            self._done.clear()  # all answered: anything left is an offset that was never read (a gap)
        return True

    def committable(self) -> int | None:
        """The offset to commit: the oldest unanswered one, or the next to read when all are answered."""
        if self._pending:
            return self._pending[0]
        return self._next


class OffsetBook:
    """Watermarks of every partition this instance owns."""

    def __init__(self) -> None:
        self._partitions: dict[PartitionId, PartitionOffsets] = {}
        self._committed: dict[PartitionId, int] = {}
        self.pending = 0
        self.pending_bytes = 0  # of the messages behind `pending`: what backpressure bounds beside their number

    def consumed(self, source: Source, size: int = 0) -> None:
        """An event of `size` bytes was read from `source`."""
        tp = (source.topic, source.partition)
        partition = self._partitions.get(tp)
        if partition is None:
            partition = self._partitions[tp] = PartitionOffsets()
        partition.consumed(source.offset, size)
        self.pending += 1
        self.pending_bytes += size

    def completed(self, source: Source) -> None:
        """Mark one event answered; an event of a partition given up in a rebalance is ignored."""
        partition = self._partitions.get((source.topic, source.partition))
        if partition is None:
            return
        before, bytes_before = len(partition), partition.bytes
        partition.completed(source.offset)
        self.pending -= before - len(partition)
        self.pending_bytes -= bytes_before - partition.bytes

    def pending_in(self, partitions: Iterable[PartitionId]) -> int:
        """Unanswered events of `partitions`."""
        return sum(len(self._partitions[tp]) for tp in partitions if tp in self._partitions)

    def to_commit(self, partitions: Iterable[PartitionId] | None = None) -> dict[PartitionId, int]:
        """Watermarks that moved since they were last committed (of `partitions`, or all)."""
        chosen = (
            self._partitions
            if partitions is None
            else {tp: self._partitions[tp] for tp in partitions if tp in self._partitions}
        )
        moved = {}
        for tp, partition in chosen.items():
            offset = partition.committable()
            if offset is not None and self._committed.get(tp) != offset:
                moved[tp] = offset
        return moved

    def committed_offset(self, partition: PartitionId) -> int | None:
        """The offset last committed for `partition` by this instance, if any."""
        return self._committed.get(partition)

    def committed(self, offsets: dict[PartitionId, int]) -> None:
        """These offsets are now committed."""
        self._committed.update(offsets)

    def revoke(self, partitions: Iterable[PartitionId]) -> None:
        """Forget partitions given up in a rebalance; their unanswered events are the next owner's."""
        for tp in partitions:
            partition = self._partitions.pop(tp, None)
            if partition is not None:
                self.pending -= len(partition)
                self.pending_bytes -= partition.bytes
            self._committed.pop(tp, None)
