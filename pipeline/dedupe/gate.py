"""Per-lead ordering: a record that reaches the same lead or object as an earlier unfinished record waits for it.

A record's keys are its identity values and the roots of their components (values linked by earlier events:
they name one lead). It writes its keys: it waits for the latest writer of each, and for the records that
referred to them since, and becomes their latest writer. A record's references (the objects it associates with)
are read, not written: it waits for their latest writer, and other readers go beside it. When two components
join, a join node stands for both histories, so a later record of the joined component waits for all of them.

Records that share a key are never in one call nor in flight together, and complete in admission order: per-lead
order holds under retries and concurrency.
"""

from __future__ import annotations

from collections.abc import Callable, Container

from msgspec import Struct, field

from pipeline.dedupe.links import IdentityLinks
from pipeline.records import Record


class _Node(Struct, eq=False):
    record: Record | None  # None for a join of two components' histories
    writes: tuple[str, ...]
    reads: tuple[str, ...] = ()
    waiting_on: int = 0
    dependents: list[_Node] = field(default_factory=list)


class OrderGate:
    """Admit records in arrival order; complete them in any order; get back the ones that became ready."""

    def __init__(self, links: IdentityLinks | None = None) -> None:
        self.links = links if links is not None else IdentityLinks()
        self._writers: dict[str, _Node] = {}
        self._readers: dict[str, list[_Node]] = {}
        self._nodes: dict[int, _Node] = {}
        self.waiting = 0

    def __len__(self) -> int:
        """Records admitted and not completed."""
        return len(self._nodes)

    def holds(self, key: str) -> bool:
        """Whether an unfinished record writes or reads `key`."""
        return key in self._writers or key in self._readers

    def admit(self, record: Record) -> bool:
        """Register `record`; True when it may go now, False when it waits for earlier records.

        Raises ValueError for a record already admitted: it would wait for itself.
        """
        if id(record) in self._nodes:
            msg = f"record {record.key} is already admitted"
            raise ValueError(msg)
        node = _Node(record, self._writes(record), self._reads(record))
        self._nodes[id(record)] = node
        if self._wait(node):
            self.waiting += 1
            return False
        return True

    def join(self, root: str, absorbed: list[str]) -> None:
        """Components `absorbed` joined `root`'s: a later record of it waits for every history they had."""
        keys = (root, *absorbed)
        if not any(self.holds(key) for key in keys):  # the common case: a new lead's values meet for the first time
            return
        join = _Node(None, keys)
        if not self._wait(join):  # nothing unfinished in any of the histories: nothing to stand for
            self._release(join)

    def complete(self, record: Record) -> list[Record]:
        """`record` has its result; the records that were waiting only for it, in admission order."""
        return self._finish(self._nodes.pop(id(record)))

    def revoke(self, gone: Callable[[Record], bool], out: Container[int]) -> list[Record]:
        """The records `gone` names (a partition given up) leave, unless they are out.

        `out` holds the ids of records sent and not answered: those are still at Marketo, and complete as usual.
        A record still waiting becomes a ghost that keeps its place in the order and passes it on when its turn
        comes; one already released is done at once. Returns the records of other partitions this releases.
        """
        ready: list[Record] = []
        for key, node in list(self._nodes.items()):
            record = node.record
            if record is None or key in out or not gone(record):
                continue
            del self._nodes[key]
            node.record = None
            if node.waiting_on:
                self.waiting -= 1
            else:
                ready += self._finish(node)
        return [record for record in ready if not gone(record)]

    def _finish(self, first: _Node) -> list[Record]:
        ready: list[Record] = []
        finished = [first]
        while finished:
            node = finished.pop()
            self._release(node)
            for dependent in node.dependents:
                dependent.waiting_on -= 1
                if dependent.waiting_on:
                    continue
                if dependent.record is None:
                    finished.append(dependent)  # a join whose histories are all done
                else:
                    self.waiting -= 1
                    ready.append(dependent.record)
        return ready

    def _writes(self, record: Record) -> tuple[str, ...]:
        values = record.identities
        if len(values) == 1:  # the common case, without building sets
            (value,) = values
            root = self.links.root_of(value, value)
            return (value,) if root == value else (value, root)
        return tuple(values | self.links.roots(values))

    def _reads(self, record: Record) -> tuple[str, ...]:
        references = record.references
        if not references:
            return ()
        return tuple((references | self.links.roots(references)) - set(self._writes(record)))

    def _wait(self, node: _Node) -> bool:
        """Register `node` as writer of its writes and reader of its reads; True when it has to wait."""
        writers, readers = self._writers, self._readers
        if len(node.writes) == 1 and not node.reads:  # the common case: one lead, one value, nobody before it
            (key,) = node.writes
            if key not in writers and key not in readers:
                writers[key] = node
                return False
        blockers: dict[int, _Node] = {}
        for key in node.writes:
            holder = writers.get(key)
            if holder is not None:
                blockers[id(holder)] = holder
            for reader in readers.pop(key, ()):
                blockers[id(reader)] = reader
            writers[key] = node
        for key in node.reads:
            holder = writers.get(key)
            if holder is not None:
                blockers[id(holder)] = holder
            readers.setdefault(key, []).append(node)
        for blocker in blockers.values():
            blocker.dependents.append(node)
        node.waiting_on = len(blockers)
        return bool(blockers)

    def _release(self, node: _Node) -> None:
        writers, readers = self._writers, self._readers
        for key in node.writes:
            if writers.get(key) is node:
                del writers[key]
        for key in node.reads:
            listed = readers.get(key)
            if listed is not None and node in listed:
                listed.remove(node)
                if not listed:
                    del readers[key]
