from __future__ import annotations

from typing import Any

import pytest

from pipeline.marketo.rest.fields import DescribeError, FieldMap, LeadField, parse_describe
from pipeline.sim.catalog import catalog

# As leads.md documents Describe Lead: each field with its REST and SOAP names where the API has it.
DESCRIBE: list[Any] = [
    {"id": 2, "displayName": "Company Name", "dataType": "string", "length": 255,
     "rest": {"name": "company", "readOnly": False}, "soap": {"name": "Company", "readOnly": False}},
    {"id": 3, "displayName": "Date of Birth", "dataType": "date",
     "rest": {"name": "dateOfBirth", "readOnly": False}, "soap": {"name": "DateofBirth", "readOnly": False}},
    {"id": 4, "displayName": "Updated At", "dataType": "datetime", "rest": {"name": "updatedAt", "readOnly": True}},
    {"id": 5, "displayName": "SOAP only", "dataType": "string", "soap": {"name": "LegacyScore", "readOnly": False}},
    {"id": 6, "displayName": "Person Id", "dataType": "string",
     "rest": {"name": "externalPersonId"}, "soap": {"name": "externalPersonId"}},
]  # fmt: skip


def learned(described: list[Any] = DESCRIBE) -> FieldMap:
    fields = FieldMap()
    fields.learn(parse_describe(described))
    return fields


def test_a_describe_result_gives_each_fields_names_in_both_apis() -> None:
    assert parse_describe(DESCRIBE) == [
        LeadField("company", "Company"),
        LeadField("dateOfBirth", "DateofBirth"),
        LeadField("updatedAt", None),
        LeadField(None, "LegacyScore"),
        LeadField("externalPersonId", "externalPersonId"),
    ]


@pytest.mark.parametrize(
    "item",
    [
        {"id": 1},
        {"rest": None, "soap": "Company"},  # a name where an object belongs
        {"rest": {"name": ""}, "soap": {"name": 7}},
        {"rest": {"readOnly": False}, "soap": []},
    ],
)
def test_a_field_without_a_readable_name_in_an_api_has_none_there(item: dict[str, Any]) -> None:
    assert parse_describe([item]) == [LeadField(None, None)]


@pytest.mark.parametrize("result", [None, {}, "fields", 3, {"result": []}])
def test_a_describe_result_that_is_not_a_list_is_refused(result: object) -> None:
    with pytest.raises(DescribeError, match="not a list"):
        parse_describe(result)


@pytest.mark.parametrize("item", [None, "company", 1, ["company"]])
def test_a_describe_result_holding_a_non_object_is_refused(item: object) -> None:
    with pytest.raises(DescribeError, match="non-object"):
        parse_describe([DESCRIBE[0], item])


def test_soap_names_map_to_rest_names() -> None:
    fields = learned()
    assert fields.learned
    assert [fields.rest_name(n) for n in ("Company", "DateofBirth", "externalPersonId")] == [
        "company",
        "dateOfBirth",
        "externalPersonId",
    ]


def test_a_rest_name_passes_as_it_is() -> None:
    fields = learned()
    assert [fields.rest_name(n) for n in ("company", "dateOfBirth", "updatedAt")] == [
        "company",
        "dateOfBirth",
        "updatedAt",
    ]


def test_a_soap_name_is_found_in_any_case_a_rest_name_only_in_its_own() -> None:
    fields = learned()
    assert [fields.rest_name(n) for n in ("COMPANY", "dateofbirth", "ExternalPersonID")] == [
        "company",
        "dateOfBirth",
        "externalPersonId",
    ]
    assert fields.rest_name("UpdatedAt") is None  # updatedAt has no SOAP name to fold


@pytest.mark.parametrize("name", ["Colour", "LegacyScore", "", "company "])
def test_a_name_marketo_does_not_list_for_rest_has_no_rest_name(name: str) -> None:
    assert learned().rest_name(name) is None


def test_rest_names_map_back_to_soap_names_for_returned_leads() -> None:
    fields = learned()
    assert [fields.soap_name(n) for n in ("company", "dateOfBirth", "updatedAt", "unknownField")] == [
        "Company",
        "DateofBirth",
        "updatedAt",  # REST only: its own name
        "unknownField",
    ]
    assert fields.knows("company")
    assert not fields.knows("Company")
    assert not fields.knows("LegacyScore")


def test_an_exact_soap_name_wins_over_a_folded_one() -> None:
    fields = FieldMap()
    fields.learn([LeadField("notes", "Notes"), LeadField("notesCustom", "NOTES")])
    assert (fields.rest_name("Notes"), fields.rest_name("NOTES"), fields.rest_name("notes")) == (
        "notes",
        "notesCustom",
        "notes",  # a REST name as it is, before any folding
    )
    assert fields.rest_name("nOtEs") == "notes"  # the first field listed under the folded name


def test_learning_again_replaces_what_was_known() -> None:
    fields = learned()
    fields.learn([LeadField("firstName", "FirstName")])
    assert fields.rest_name("FirstName") == "firstName"
    assert fields.rest_name("Company") is None
    assert fields.rest_name("company") is None
    assert fields.soap_name("company") == "company"


def test_an_empty_map_knows_nothing() -> None:
    fields = FieldMap()
    assert not fields.learned
    assert fields.rest_name("Email") is None
    assert fields.soap_name("email") == "email"


def test_every_field_the_simulator_describes_maps_both_ways() -> None:
    fields = learned([field.describe() for field in catalog()])
    for field in catalog():
        assert fields.rest_name(field.rest) == field.rest
        assert fields.soap_name(field.rest) == (field.soap or field.rest)
        if field.soap is not None:
            assert fields.rest_name(field.soap) == field.rest
