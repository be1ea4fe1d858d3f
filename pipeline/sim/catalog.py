"""The simulated instance's lead fields: each with its REST name, its SOAP name, its type (Describe Lead's answer).

The standard fields are Marketo's (their REST and SOAP names as Describe Lead gives them). Two custom fields are the
simulator's own: `externalPersonId`, the custom dedupe field that carries a ForeignSysPersonId over REST (Adobe's
migration guide asks for one; `marketo.fsp_field` names it), and `notes`, a long text field for large events.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, Final


@dataclass(frozen=True, slots=True)
class CatalogField:
    """One lead field of the instance."""

    id: int
    display: str
    rest: str
    soap: str | None
    data_type: str = "string"
    length: int | None = 255
    read_only: bool = False
    custom: bool = False

    def describe(self) -> dict[str, Any]:
        """The field as Describe Lead lists it."""
        entry: dict[str, Any] = {"id": self.id, "displayName": self.display, "dataType": self.data_type}
        if self.length is not None:
            entry["length"] = self.length
        entry["rest"] = {"name": self.rest, "readOnly": self.read_only}
        if self.soap is not None:
            entry["soap"] = {"name": self.soap, "readOnly": self.read_only}
        return entry


# (REST name, SOAP name, display name, data type)
_STANDARD: Final = (
    ("id", "Id", "Id", "integer"),
    ("email", "Email", "Email Address", "email"),
    ("salutation", "Salutation", "Salutation", "string"),
    ("firstName", "FirstName", "First Name", "string"),
    ("middleName", "MiddleName", "Middle Name", "string"),
    ("lastName", "LastName", "Last Name", "string"),
    ("title", "Title", "Job Title", "string"),
    ("company", "Company", "Company Name", "string"),
    ("site", "Site", "Site", "string"),
    ("phone", "Phone", "Phone Number", "phone"),
    ("mobilePhone", "MobilePhone", "Mobile Phone Number", "phone"),
    ("fax", "Fax", "Fax Number", "phone"),
    ("address", "Address", "Address", "text"),
    ("city", "City", "City", "string"),
    ("state", "State", "State", "string"),
    ("country", "Country", "Country", "string"),
    ("postalCode", "PostalCode", "Postal Code", "string"),
    ("website", "Website", "Website", "url"),
    ("dateOfBirth", "DateofBirth", "Date of Birth", "date"),
    ("annualRevenue", "AnnualRevenue", "Annual Revenue", "currency"),
    ("numberOfEmployees", "NumberOfEmployees", "Num Employees", "integer"),
    ("industry", "Industry", "Industry", "string"),
    ("rating", "Rating", "Rating", "string"),
    ("leadSource", "LeadSource", "Person Source", "string"),
    ("leadStatus", "LeadStatus", "Person Status", "string"),
    ("leadScore", "LeadScore", "Lead Score", "integer"),
    ("unsubscribed", "Unsubscribed", "Unsubscribed", "boolean"),
    ("unsubscribedReason", "UnsubscribedReason", "Unsubscribed Reason", "text"),
    ("doNotCall", "DoNotCall", "Do Not Call", "boolean"),
    ("createdAt", None, "Created At", "datetime"),
    ("updatedAt", None, "Updated At", "datetime"),
)
FSP_FIELD: Final = "externalPersonId"  # the simulator's custom dedupe field for ForeignSysPersonId
_CUSTOM: Final = ((FSP_FIELD, FSP_FIELD, "External Person Id", "string"), ("notes", "Notes", "Notes", "text"))
_READ_ONLY: Final = frozenset({"id", "createdAt", "updatedAt"})
# Fields a Sync Leads may look records up by: the id, the email, and the custom string fields (the simulator's
# choice: Marketo allows custom dedupe fields and refuses standard ones such as firstName with 1011).
LOOKUP_FIELDS: Final = frozenset({"id", "email", FSP_FIELD})


@cache
def catalog(custom: tuple[str, ...] = ()) -> tuple[CatalogField, ...]:
    """Every lead field of the simulated instance, with the `custom` string fields an operator added."""
    added = tuple((name, name, name, "string") for name in custom)
    fields = []
    for number, (rest, soap, display, data_type) in enumerate((*_STANDARD, *_CUSTOM, *added), start=1):
        length = 255 if data_type in {"string", "email", "phone", "url"} else None
        fields.append(
            CatalogField(
                id=number,
                display=display,
                rest=rest,
                soap=soap,
                data_type=data_type,
                length=length,
                read_only=rest in _READ_ONLY,
                custom=number > len(_STANDARD),
            )
        )
    return tuple(fields)


@cache
def visible(lead_fields: tuple[str, ...] | None, custom: tuple[str, ...] = ()) -> tuple[CatalogField, ...]:
    """The fields the instance has: all, or those `lead_fields` (SOAP names) allows with Id, Email and `custom`."""
    if lead_fields is None:
        return catalog(custom)
    allowed = {*lead_fields, *custom, "Id", "Email", FSP_FIELD}
    return tuple(f for f in catalog(custom) if f.soap is None or f.soap in allowed)


@cache
def by_rest(lead_fields: tuple[str, ...] | None, custom: tuple[str, ...] = ()) -> dict[str, CatalogField]:
    """The fields the instance has, by REST name."""
    return {f.rest: f for f in visible(lead_fields, custom)}
