"""Synthetic lead-change events for demos, tests and benchmarks: duplicates, malformed ones, MObjects, cookies."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

import orjson

_FIRST: Final = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tim")
_LAST: Final = (
    "Lovelace",
    "Hopper",
    "Turing",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Allen",
    "Thompson",
    "Perlman",
    "Berners",
)
_COMPANY: Final = ("Analytical Engines", "Compilers Inc", "Bombe Ltd", "Semaphores SA", "Acme", "Initech", "Globex")
_CITY: Final = ("London", "Paris", "Köln", "Zürich", "New York", "São Paulo", "東京")


@dataclass(frozen=True, slots=True)
class SyntheticEvent:
    """One message to publish, and what it is."""

    key: bytes
    value: bytes
    kind: str  # lead, duplicate, cookie, mobject, invalid


def _invalid(rng: random.Random, n: int) -> bytes:
    choice = rng.randrange(6)
    if choice == 0:
        return b'{"event_id": "evt-broken-%d", "lead": {"Email": ' % n  # truncated JSON
    if choice == 1:
        return b"\xff\xfe not utf-8 \x80"
    if choice == 2:  # noqa: PLR2004
        return orjson.dumps({"lead": {"Email": f"no-id-{n}@example.com"}})
    if choice == 3:  # noqa: PLR2004
        return orjson.dumps({"event_id": f"evt-bad-{n}", "lead": {"Id": "not-a-number"}})
    if choice == 4:  # noqa: PLR2004
        return orjson.dumps(
            {"event_id": f"evt-bad-{n}", "lead": {"Email": "x@example.com", "attributes": {"Notes": "bell\u0007"}}}
        )
    return orjson.dumps({"event_id": f"evt-bad-{n}", "kind": "contact"})


class SyntheticLoad:
    """A reproducible stream of events over a growing population of leads."""

    def __init__(
        self,
        *,
        seed: int,
        duplicates: float,
        invalid: float,
        mobjects: float,
        cookies: float = 0.0,
        prefix: str = "evt",
        recent: int = 2_000,
        padding: int = 0,
    ) -> None:
        self._rng = random.Random(seed)  # noqa: S311 - synthetic data
        self._seed = seed
        self._duplicates = duplicates
        self._invalid = invalid
        self._mobjects = mobjects
        self._cookies = cookies
        self._prefix = prefix
        # A duplicate updates one of the `recent` latest leads: a lead's changes come in bursts (a form fill,
        # then its enrichment), which is what the dedupe window is for.
        self._recent = recent
        self._padding = padding  # characters of a long text attribute in every lead event: large events
        self._leads: list[dict[str, Any]] = []

    def _new_lead(self, n: int) -> dict[str, Any]:
        rng = self._rng
        lead: dict[str, Any] = {"Email": f"lead{self._seed}-{n}@example{n % 53}.com"}
        if rng.random() < 0.3:  # noqa: PLR2004
            lead["ForeignSysPersonId"] = f"SF-{self._seed}-{n}"
            lead["ForeignSysType"] = "SFDC"
        self._leads.append(lead)
        return lead

    def _attributes(self) -> dict[str, Any]:
        rng = self._rng
        found: dict[str, Any] = {
            "FirstName": rng.choice(_FIRST),
            "LastName": rng.choice(_LAST),
            "Company": rng.choice(_COMPANY),
            "City": rng.choice(_CITY),
            "AnnualRevenue": rng.randrange(1, 1000) * 1000,
        }
        if self._padding:
            found["Notes"] = (rng.choice(_COMPANY) + " ") * (self._padding // 12) + "."
        return found

    def events(self, count: int) -> Iterator[SyntheticEvent]:
        """`count` events; keys are the precedence keys producers are asked to use."""
        rng = self._rng
        for n in range(count):
            event_id = f"{self._prefix}-{self._seed}-{n}"
            roll = rng.random()
            if roll < self._invalid:
                yield SyntheticEvent(f"invalid-{n}".encode(), _invalid(rng, n), "invalid")
            elif roll < self._invalid + self._mobjects:
                yield self._mobject(event_id, n)
            elif roll < self._invalid + self._mobjects + self._cookies:
                cookie = f"id:{self._seed}-{n}&token:_mch-example.com-{n}"
                body = {"event_id": event_id, "lead": {"MarketoCookie": cookie, "attributes": self._attributes()}}
                yield SyntheticEvent(f"cookie:{cookie}".encode(), orjson.dumps(body), "cookie")
            else:
                duplicate = self._leads and rng.random() < self._duplicates
                lead = rng.choice(self._leads[-self._recent :]) if duplicate else self._new_lead(n)
                body = {"event_id": event_id, "kind": "lead", "lead": {**lead, "attributes": self._attributes()}}
                key = (
                    f"fsp:SFDC:{lead['ForeignSysPersonId']}"
                    if "ForeignSysPersonId" in lead
                    else f"email:{lead['Email']}"
                )
                yield SyntheticEvent(key.encode(), orjson.dumps(body), "duplicate" if duplicate else "lead")

    def _mobject(self, event_id: str, n: int) -> SyntheticEvent:
        rng = self._rng
        if rng.random() < 0.2:  # noqa: PLR2004
            program = 1000 + rng.randrange(20)
            body = {
                "event_id": event_id,
                "kind": "mobject",
                "operation": "UPDATE",
                "mobject": {
                    "type": "Program",
                    "id": program,
                    "typeAttribs": [
                        {
                            "attrType": "Cost",
                            "attribs": {"Month": f"2026-{n % 12 + 1:02d}", "Amount": rng.randrange(100, 5000)},
                        }
                    ],
                },
            }
            return SyntheticEvent(f"mobj:Program:{program}".encode(), orjson.dumps(body), "mobject")
        opportunity = f"OPP-{self._seed}-{rng.randrange(max(n // 10, 1))}"
        body = {
            "event_id": event_id,
            "kind": "mobject",
            "operation": "UPSERT",
            "mobject": {
                "type": "Opportunity",
                "externalKey": {"name": "ExtId", "value": opportunity},
                "attribs": {
                    "Name": f"Renewal {opportunity}",
                    "Amount": rng.randrange(1000, 90000),
                    "Stage": "Prospecting",
                },
            },
        }
        return SyntheticEvent(f"mobj:Opportunity:ExtId={opportunity}".encode(), orjson.dumps(body), "mobject")
