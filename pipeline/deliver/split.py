"""What a whole-call rejection means for the records of the call: which fail now, which go again."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from pipeline.records import Record

UNKNOWN_FIELD_CODE: Final = "20105"
# Marketo's text for 20105, e.g. "syncLead operation failed: unknown fields for import: pants (20105)".
_UNKNOWN_FIELDS: Final = re.compile(r"unknown fields for import:\s*([^()]+?)\s*(?:\(\d+\))?\s*$")


@dataclass(frozen=True, slots=True)
class Split:
    """The records a rejection is pinned on (they fail), and the groups to send again, in order.

    `cause` says why: `alone` (one record was sent), `named` (Marketo named the unknown fields) or `halved` (it
    named nothing).
    """

    failing: list[Record]
    again: list[list[Record]]
    cause: str


def carrying_unknown_fields(records: Sequence[Record], message: str) -> list[Record]:
    """The records with an attribute named in a 20105 fault ("unknown fields for import: A, B"), if it names any."""
    named = _UNKNOWN_FIELDS.search(message)
    if named is None:
        return []
    fields = {name.strip().casefold() for name in named.group(1).split(",") if name.strip()}
    return [
        record
        for record in records
        if record.lead is not None and any(name.casefold() in fields for name, _ in record.lead.attributes)
    ]


def split_rejected(records: Sequence[Record], code: str | None, message: str) -> Split:
    """Where a call of `records` rejected as a whole goes next.

    A record alone is the cause: it fails. A 20105 that names the unknown fields pins the records carrying
    them, and the others go again in one call. Anything else halves the call, until the record that causes
    it stands alone.
    """
    if len(records) == 1:
        return Split(list(records), [], "alone")
    carrying = carrying_unknown_fields(records, message) if code == UNKNOWN_FIELD_CODE else []
    if carrying:
        failing = {id(r) for r in carrying}
        rest = [r for r in records if id(r) not in failing]
        return Split(carrying, [rest] if rest else [], "named")
    middle = len(records) // 2
    return Split([], [list(records[:middle]), list(records[middle:])], "halved")
