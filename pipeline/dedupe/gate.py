"""Per-lead ordering: a record that shares an identity with an earlier unfinished record waits for it.

Every identity value (Id, foreign id, cookie, Email; an MObject's key) is held by the latest admitted
record that has it. A record depends on the current holders of its identities and becomes ready when
they have all completed, so records sharing a value are never in one call nor in flight together, and
per-lead order holds under retries and concurrency.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.records import Record


@dataclass(slots=True, eq=False)
class _Node:
    record: Record
    waiting_on: int = 0
    dependents: list[_Node] = field(default_factory=list)


class OrderGate:
    """Admit records in arrival order; complete them in any order; get back the ones that became ready."""

    def __init__(self) -> None:
        self._holders: dict[str, _Node] = {}
        self._nodes: dict[int, _Node] = {}
        self.waiting = 0

    def __len__(self) -> int:
        """Records admitted and not completed."""
        return len(self._nodes)

    def admit(self, record: Record) -> bool:
        """Register `record`; True when it may go now, False when it waits for earlier records.

        Raises ValueError for a record already admitted: it would wait for itself.
        """
        if id(record) in self._nodes:
            msg = f"record {record.key} is already admitted"
            raise ValueError(msg)
        node = _Node(record)
        holders = self._holders
        blockers: dict[int, _Node] | None = None  # most records share no identity with unfinished ones
        for value in record.identities:
            holder = holders.get(value)
            if holder is not None:
                if blockers is None:
                    blockers = {}
                blockers[id(holder)] = holder
            holders[value] = node
        self._nodes[id(record)] = node
        if blockers is None:
            return True
        for blocker in blockers.values():
            blocker.dependents.append(node)
        node.waiting_on = len(blockers)
        self.waiting += 1
        return False

    def complete(self, record: Record) -> list[Record]:
        """`record` has its result; the records that were waiting only for it, in admission order."""
        node = self._nodes.pop(id(record))
        for value in record.identities:
            if self._holders.get(value) is node:
                del self._holders[value]
        ready = []
        for dependent in node.dependents:
            dependent.waiting_on -= 1
            if dependent.waiting_on == 0:
                self.waiting -= 1
                ready.append(dependent.record)
        return ready
