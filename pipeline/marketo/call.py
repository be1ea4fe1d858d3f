"""What either API's request builder gives the delivery: a call for the records it can carry, refusals for the rest."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

RequestT = TypeVar("RequestT")


@dataclass(frozen=True, slots=True)
class Refusal:
    """Record `index` of a batch cannot be carried by the API: `code` (Marketo's, when it is one) and why.

    `invalid` says the event cannot be expressed in this API (dead letter `invalid_event`); else Marketo said no.
    """

    index: int
    code: str | None
    message: str
    invalid: bool = True


@dataclass(frozen=True, slots=True)
class Encoded(Generic[RequestT]):
    """A call for the records that can go (`sent`: their indexes, in order), and the refusals of the others."""

    request: RequestT | None
    sent: tuple[int, ...]
    refused: tuple[Refusal, ...] = ()
