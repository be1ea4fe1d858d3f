"""Which identity values name one lead (or one object): learned from the events, kept as components.

An event that carries several values (an Id and an Email, a foreign id and an Email) says they name one lead,
for good: Marketo links them when it applies the event. Two later records that share no value may still reach
that lead, so ordering must follow the component, not only the values a record carries.

Pure, no I/O. Every member of a component points at its root directly (the smaller component is re-pointed on
a merge), so `root` is one dictionary lookup. Components are kept in least-recently-used order and the oldest
are forgotten past `capacity` values, unless `busy` says a record still holds them: a link older than that is
the price of bounded memory (see the README).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable
from typing import Final

DEFAULT_CAPACITY: Final = 50_000
_EVICTION_TRIES: Final = 8


class IdentityLinks:
    """Identity values joined into components; a value never linked to another is its own root and costs nothing."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY, busy: Callable[[str], bool] | None = None) -> None:
        self.capacity = capacity
        self.busy = busy or (lambda _root: False)
        self._root: dict[str, str] = {}
        self._members: OrderedDict[str, list[str]] = OrderedDict()
        # `root` as a bound dictionary lookup: the window and the gate call it for every record.
        self.root_of: Callable[[str, str], str] = self._root.get

    def __len__(self) -> int:
        """Values held in components of more than one value."""
        return len(self._root)

    def root(self, value: str) -> str:
        """The value that stands for `value`'s component (`root_of(value, value)` is the same, faster)."""
        return self._root.get(value, value)

    def roots(self, values: Iterable[str]) -> set[str]:
        """The roots of `values`' components."""
        get = self._root.get
        return {get(value, value) for value in values}

    def link(self, values: Collection[str]) -> tuple[str, list[str]]:
        """Join the components of `values`; returns the root of the whole and the roots it absorbed."""
        if len(values) == 2:  # noqa: PLR2004 - the common case: an Email and a foreign id
            first, second = values
            get = self._root.get
            root, other = get(first), get(second)
            if root is not None and root == other:  # linked already
                self._members.move_to_end(root)
                return root, []
            if root is None and other is None:  # a lead seen for the first time
                self._root[first] = self._root[second] = first
                self._members[first] = [first, second]
                if len(self._root) > self.capacity:
                    self._evict(first)
                return first, [second]
        roots = self.roots(values)
        if len(roots) == 1:
            (only,) = roots
            if only in self._members:
                self._members.move_to_end(only)
            return only, []
        members = self._members
        ordered = sorted(roots, key=lambda r: len(members.get(r, ())), reverse=True)
        keep, absorbed = ordered[0], ordered[1:]
        kept = members.pop(keep, None) or [keep]
        for other in absorbed:
            moved = members.pop(other, None) or [other]
            for value in moved:
                self._root[value] = keep
            kept += moved
        self._root.setdefault(keep, keep)
        members[keep] = kept
        self._evict(keep)
        return keep, absorbed

    def touch(self, root: str) -> None:
        """An event reached `root`'s component: it is recently used, whatever values the event carried."""
        if root in self._members:
            self._members.move_to_end(root)

    def _evict(self, fresh: str) -> None:
        """Forget the least recently used components past `capacity`; never `fresh`, nor one still `busy`."""
        tries = 0
        while len(self._root) > self.capacity and self._members and tries < _EVICTION_TRIES:
            oldest = next(iter(self._members))
            if oldest == fresh:
                return  # everything older is busy: the bound waits for them to finish
            if self.busy(oldest):
                self._members.move_to_end(oldest)
                tries += 1
                continue
            for value in self._members.pop(oldest):
                self._root.pop(value, None)
