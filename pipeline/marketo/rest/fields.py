"""Lead field names: events use Marketo's SOAP names (`FirstName`), REST wants the REST names (`firstName`).

The mapping comes from Marketo itself: Describe Lead gives each field's `rest.name` and `soap.name`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from pipeline.errors import PipelineError


class DescribeError(PipelineError):
    """A Describe Lead reply that does not list fields as Adobe documents them."""


@dataclass(frozen=True, slots=True)
class LeadField:
    """One lead field: its name in each API (None where the API does not have it)."""

    rest: str | None
    soap: str | None


@dataclass(slots=True)
class FieldMap:
    """SOAP name -> REST name, and back; empty until Marketo has been asked."""

    _rest_by_soap: dict[str, str] = field(default_factory=dict)
    _rest_by_folded: dict[str, str] = field(default_factory=dict)
    _soap_by_rest: dict[str, str] = field(default_factory=dict)
    learned: bool = False

    def learn(self, fields: Iterable[LeadField]) -> None:
        """Replace what is known with `fields` (a Describe Lead's answer)."""
        self._rest_by_soap, self._rest_by_folded, self._soap_by_rest = {}, {}, {}
        for known in fields:
            if known.rest is None:
                continue
            self._soap_by_rest[known.rest] = known.soap or known.rest
            if known.soap is not None:
                self._rest_by_soap[known.soap] = known.rest
                self._rest_by_folded.setdefault(known.soap.casefold(), known.rest)
        self.learned = True

    @property
    def by_soap(self) -> Mapping[str, str]:
        """REST names by SOAP name, as Marketo listed them (the common case of `rest_name`, read without a call)."""
        return self._rest_by_soap

    def rest_name(self, name: str) -> str | None:
        """The REST name of an attribute: mapped from its SOAP name, or as it is when it is a REST name already."""
        found = self._rest_by_soap.get(name)
        if found is not None:
            return found
        if name in self._soap_by_rest:
            return name
        return self._rest_by_folded.get(name.casefold())

    def soap_name(self, rest: str) -> str:
        """The SOAP name of a REST field (itself when it has none): how results show a returned lead."""
        return self._soap_by_rest.get(rest, rest)

    def knows(self, rest: str) -> bool:
        """Whether Marketo listed a field by this REST name."""
        return rest in self._soap_by_rest


def parse_describe(result: object) -> list[LeadField]:
    """The fields of a Describe Lead `result` list; raises DescribeError when it is not one."""
    if not isinstance(result, list):
        msg = "describe result is not a list"
        raise DescribeError(msg)
    found = []
    for item in result:
        if not isinstance(item, dict):
            msg = "describe result holds a non-object"
            raise DescribeError(msg)
        found.append(LeadField(_api_name(item.get("rest")), _api_name(item.get("soap"))))
    return found


def _api_name(value: object) -> str | None:
    if not isinstance(value, dict):
        return None
    name = value.get("name")
    return name if isinstance(name, str) and name else None
