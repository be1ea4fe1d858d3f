from __future__ import annotations

import pytest

from pipeline.sim.leads import LeadInput, LeadStore, SyncContext
from pipeline.sim.mobjects import MObjectInput, MObjectStore
from pipeline.sim.reasons import RecordSkippedError, RestCallError
from pipeline.sim.settings import DEFAULT_PROGRAM_CHANNELS, DEFAULT_PROGRAM_TAGS

OPP = MObjectInput(type="Opportunity", external_key=("ExtId", "OPP-9"), attribs=(("Name", "Q1"), ("Amount", "2000")))


def test_insert_creates_then_skips_the_existing_object() -> None:
    store = MObjectStore()
    created = store.sync(OPP, "INSERT")
    assert (created.status, created.external_key) == ("CREATED", ("ExtId", "OPP-9"))
    assert store.sync(OPP, "INSERT").status == "SKIPPED"
    assert len(store.all()) == 1


def test_update_skips_new_objects_and_updates_existing_ones() -> None:
    store = MObjectStore()
    assert store.sync(OPP, "UPDATE").status == "SKIPPED"
    created = store.sync(OPP, "UPSERT")
    assert created.status == "CREATED"
    changed = MObjectInput(type="Opportunity", id=created.id, attribs=(("Amount", "2500"),))
    assert store.sync(changed, "UPDATE").status == "UPDATED"
    assert store.sync(changed, "UPSERT").status == "UNCHANGED"
    assert store.all()[0].attribs == {"Name": "Q1", "Amount": "2500"}


def test_program_is_update_only_and_takes_costs_and_tags() -> None:
    store = MObjectStore(programs=(1970,))
    cost = ("Cost", (("Month", "2013-06"), ("Amount", "2000")))
    insert = store.sync(MObjectInput(type="Program", id=1970, type_attribs=(cost,)), "INSERT")
    assert (insert.status, insert.error) == ("FAILED", "Program supports the UPDATE operation only")
    assert store.sync(MObjectInput(type="Program", id=1970, type_attribs=(cost,)), "UPSERT").status == "FAILED"
    assert store.sync(MObjectInput(type="Program", id=1971, type_attribs=(cost,)), "UPDATE").status == "SKIPPED"
    assert store.sync(MObjectInput(type="Program", id=1970, type_attribs=(cost,)), "UPDATE").status == "UPDATED"
    [program] = store.all()
    cost_id = program.type_attribs[0]["attribs"]["Id"]
    revised = ("Cost", (("Month", "2013-06"), ("Amount", "2100"), ("Id", cost_id)))
    tag = ("Tag", (("Type", "Region"), ("Value", "EMEA")))
    assert store.sync(MObjectInput(type="Program", id=1970, type_attribs=(revised, tag)), "UPDATE").status == "UPDATED"
    assert program.type_attribs == [
        {"attrType": "Cost", "attribs": {"Month": "2013-06", "Amount": "2100", "Id": cost_id}},
        {"attrType": "Tag", "attribs": {"Type": "Region", "Value": "EMEA"}},
    ]
    assert store.sync(MObjectInput(type="Program", id=1970, type_attribs=(tag,)), "UPDATE").status == "UNCHANGED"


def test_invalid_program_changes_fail_and_change_nothing() -> None:
    store = MObjectStore()
    good = ("Cost", (("Month", "2013-06"), ("Amount", "1")))
    for bad, message in [
        (("Cost", (("Month", "2013-06"),)), "Cost requires Amount"),
        (("Cost", (("Month", "2013-06"), ("Amount", "1"), ("Id", "999"))), "Cost Id not found: 999"),
        (("Tag", (("Type", "Region"),)), "Tag requires Value"),
        (("Channel", ()), "Unknown attrType: Channel"),
    ]:
        outcome = store.sync(MObjectInput(type="Program", id=5, type_attribs=(good, bad)), "UPDATE")
        assert (outcome.status, outcome.error) == (
            "FAILED",
            message + (" (expected Cost or Tag)" if "Channel" in message else ""),
        )
    assert store.all()[0].type_attribs == []
    assert store.sync(MObjectInput(type="Program", attribs=()), "UPDATE").error == "Program id is required"


def test_unknown_types_and_incomplete_person_roles_fail() -> None:
    leads = LeadStore()
    _, lead = leads.sync(LeadInput(email="p@example.com"), SyncContext())
    store = MObjectStore(leads=leads)
    assert store.sync(MObjectInput(type="Company"), "UPSERT").error == "Unknown MObject type: Company"
    opportunity = store.sync(OPP, "INSERT")
    role = store.sync(
        MObjectInput(type="OpportunityPersonRole", attribs=(("OpportunityId", str(opportunity.id)),)), "INSERT"
    )
    assert (role.status, role.error) == ("FAILED", "Required attribute missing: PersonId (or a Lead association)")
    complete = MObjectInput(
        type="OpportunityPersonRole",
        attribs=(("OpportunityId", str(opportunity.id)), ("PersonId", str(lead.id)), ("Role", "Champion")),
    )
    assert store.sync(complete, "INSERT").status == "CREATED"


def test_a_role_naming_a_lead_or_an_opportunity_that_is_not_there_fails() -> None:
    leads = LeadStore()
    _, lead = leads.sync(LeadInput(email="p@example.com"), SyncContext())
    store = MObjectStore(leads=leads)
    opportunity = store.sync(OPP, "INSERT")
    for attribs, message in [
        ((("OpportunityId", "999"), ("PersonId", str(lead.id))), "Opportunity not found: OpportunityId 999"),
        ((("OpportunityId", str(opportunity.id)), ("PersonId", "999")), "Lead not found: PersonId 999"),
        ((("OpportunityId", "x"), ("PersonId", str(lead.id))), "Opportunity not found: OpportunityId x"),
    ]:
        outcome = store.sync(MObjectInput(type="OpportunityPersonRole", attribs=attribs), "INSERT")
        assert (outcome.status, outcome.error) == ("FAILED", message)
    assert [o.type for o in store.all()] == ["Opportunity"]


def test_a_role_may_name_its_lead_and_opportunity_by_association_only() -> None:
    # The Developer Blog's "Opportunity Sync via SOAP API": a role with IsPrimary and Role attributes, linked to
    # the lead by a custom field (FSPID) and to the opportunity by its external key, in the same call as the
    # opportunity itself.
    leads = LeadStore()
    _, lead = leads.sync(LeadInput(email="l@example.com", attributes=(("FSPID", "12346"),)), SyncContext())
    store = MObjectStore(leads=leads)
    opportunity = MObjectInput(
        type="Opportunity",
        external_key=("opportunityId", "Opportunity_5"),
        attribs=(("opportunityId", "Opportunity_5"), ("Name", "Opportunity 5 for ACME")),
        associations=({"mObjType": "Company", "id": None, "externalKey": {"name": "cAccountFSID", "value": "C123"}},),
    )
    role = MObjectInput(
        type="OpportunityPersonRole",
        attribs=(("IsPrimary", "1"), ("Role", "Marketing Manager")),
        associations=(
            {"mObjType": "Lead", "id": None, "externalKey": {"name": "FSPID", "value": "12346"}},
            {"mObjType": "Opportunity", "id": None, "externalKey": {"name": "opportunityId", "value": "Opportunity_5"}},
        ),
    )
    created = [store.sync(o, "UPSERT") for o in (opportunity, role)]
    assert [o.status for o in created] == ["CREATED", "CREATED"]
    stored_role = next(o for o in store.all() if o.type == "OpportunityPersonRole")
    assert stored_role.attribs == {
        "IsPrimary": "1", "Role": "Marketing Manager", "PersonId": str(lead.id), "OpportunityId": str(created[0].id)
    }  # fmt: skip
    by_id = MObjectInput(
        type="OpportunityPersonRole",
        associations=({"mObjType": "Lead", "id": lead.id, "externalKey": None},
                      {"mObjType": "Opportunity", "id": created[0].id, "externalKey": None}),
    )  # fmt: skip
    assert store.sync(by_id, "INSERT").status == "CREATED"


def test_associations_are_checked_by_type_and_existence() -> None:
    leads = LeadStore()
    store = MObjectStore(leads=leads)
    company = {"mObjType": "Company", "id": None, "externalKey": {"name": "ExtCo", "value": "C-1"}}
    for obj, message in [
        (MObjectInput("Opportunity", external_key=("ExtId", "O-2"), associations=({**company, "mObjType": "Lead"},)),
         "Opportunity cannot be associated with Lead: only with Company"),
        (MObjectInput("OpportunityPersonRole", associations=(company,)),
         "OpportunityPersonRole cannot be associated with Company: only with Lead, Opportunity"),
        (MObjectInput("Opportunity", external_key=("ExtId", "O-2"),
                      associations=({"mObjType": "Company", "id": None, "externalKey": None},)),
         "The Company association needs an id or an externalKey"),
        (MObjectInput("OpportunityPersonRole", associations=({"mObjType": "Lead", "id": 5, "externalKey": None},)),
         "Associated Lead not found: 5"),
        (MObjectInput("OpportunityPersonRole",
                      associations=({"mObjType": "Opportunity", "id": None, "externalKey": {"name": "ExtId", "value": "nope"}},)),
         "Associated Opportunity not found: ('ExtId', 'nope')"),
        (MObjectInput("Program", id=7, associations=(company,), type_attribs=()),
         "Program cannot be associated with Company: only with nothing"),
    ]:  # fmt: skip
        outcome = store.sync(obj, "UPDATE" if obj.type == "Program" else "UPSERT")
        assert (outcome.status, outcome.error) == ("FAILED", message)
    assert [(o.type, o.associations) for o in store.all()] == [("Program", [])]  # programs exist; nothing made


def test_a_second_company_replaces_the_first_and_the_same_one_is_unchanged() -> None:
    store = MObjectStore()
    first = {"mObjType": "Company", "id": None, "externalKey": {"name": "ExtCo", "value": "C-1"}}
    second = {"mObjType": "Company", "id": None, "externalKey": {"name": "ExtCo", "value": "C-2"}}
    obj = MObjectInput(type="Opportunity", external_key=("ExtId", "O-1"), associations=(first,))
    store.sync(obj, "UPSERT")
    assert store.sync(obj, "UPSERT").status == "UNCHANGED"
    moved = MObjectInput(type="Opportunity", external_key=("ExtId", "O-1"), associations=(second,))
    assert store.sync(moved, "UPSERT").status == "UPDATED"
    assert store.all()[0].to_json()["associations"] == [second]


def test_program_tags_and_channels_must_already_be_defined() -> None:
    store = MObjectStore(tags=DEFAULT_PROGRAM_TAGS, channels=DEFAULT_PROGRAM_CHANNELS)

    def update(tag_type: str, value: str) -> tuple[str, str | None]:
        outcome = store.sync(
            MObjectInput(type="Program", id=1970, type_attribs=(("Tag", (("Type", tag_type), ("Value", value))),)),
            "UPDATE",
        )
        return outcome.status, outcome.error

    assert update("Region", "EMEA") == ("UPDATED", None)
    assert update("Region", "Mars") == ("FAILED", "Tag value 'Mars' is not defined for tag type 'Region'")
    assert update("Colour", "Blue") == ("FAILED", "Tag value 'Blue' is not defined for tag type 'Colour'")
    # the channel travels as a Tag of Type Channel (getMObjects' replies show it so), and can be changed
    assert update("Channel", "Webinar") == ("UPDATED", None)
    assert update("Channel", "Content") == ("UPDATED", None)
    assert update("Channel", "Carrier pigeon") == ("FAILED", "Channel 'Carrier pigeon' is not defined")
    [program] = store.all()
    shown = store.program_json(program)
    assert (shown["channel"], shown["tags"]) == ("Content", [{"tagType": "Region", "tagValue": "EMEA"}])
    # over REST a channel is no tag, whatever tags the instance allows
    for allowed in (DEFAULT_PROGRAM_TAGS, None):
        with pytest.raises(RestCallError) as refused:
            store.update_program(
                program, costs=[], destructive=False, tags=[{"tagType": "Channel", "tagValue": "Webinar"}], names={},
                allowed_tags=allowed,
            )  # fmt: skip
        assert refused.value.code == "709"
    assert store.program_json(program)["channel"] == "Content"


def test_a_role_naming_an_opportunity_or_lead_by_a_number_too_large_fails_the_object() -> None:
    leads = LeadStore()
    _, lead = leads.sync(LeadInput(email="p@x.com"), SyncContext())
    store = MObjectStore(leads=leads)
    for bad in ("inf", "1e999", "-Infinity", "NaN"):
        role = MObjectInput(type="OpportunityPersonRole", attribs=(("OpportunityId", bad), ("PersonId", str(lead.id))))
        outcome = store.sync(role, "INSERT")
        assert (outcome.status, outcome.error) == ("FAILED", f"Opportunity not found: OpportunityId {bad}")


def _role_store() -> tuple[LeadStore, MObjectStore, int, int, int]:
    leads = LeadStore()
    _, a = leads.sync(LeadInput(email="a@x.com"), SyncContext())
    _, b = leads.sync(LeadInput(email="b@x.com"), SyncContext())
    store = MObjectStore(leads=leads)
    store.sync(MObjectInput(type="Opportunity", external_key=("externalOpportunityId", "OPP-1")), "INSERT")
    opportunity = {
        "mObjType": "Opportunity",
        "id": None,
        "externalKey": {"name": "externalOpportunityId", "value": "OPP-1"},
    }
    role = store.sync(
        MObjectInput(
            type="OpportunityPersonRole",
            attribs=(("Role", "Buyer"),),
            associations=({"mObjType": "Lead", "id": a.id, "externalKey": None}, opportunity),
        ),
        "INSERT",
    )
    assert role.status == "CREATED"
    return leads, store, a.id, b.id, role.id


@pytest.mark.parametrize("by", ["association", "attribute"])
def test_a_role_moved_to_another_lead_over_soap_is_found_under_its_new_key_over_rest(by: str) -> None:
    leads, store, a, b, role = _role_store()
    moved = MObjectInput(
        type="OpportunityPersonRole",
        id=role,
        associations=({"mObjType": "Lead", "id": b, "externalKey": None},) if by == "association" else (),
        attribs=(("PersonId", str(b)),) if by == "attribute" else (),
    )
    assert store.sync(moved, "UPDATE").status == "UPDATED"

    def exists(lead_id: int) -> bool:
        return leads.get(lead_id) is not None

    with pytest.raises(RecordSkippedError) as created:  # b is now OPP-1's Buyer: no second role
        store.sync_role(
            {"externalOpportunityId": "OPP-1", "leadId": b, "role": "Buyer"}, "createOnly", lead_exists=exists
        )
    assert created.value.code == "1017"
    with pytest.raises(RecordSkippedError) as gone:  # a is not any more
        store.sync_role(
            {"externalOpportunityId": "OPP-1", "leadId": a, "role": "Buyer"}, "updateOnly", lead_exists=exists
        )
    assert gone.value.code == "1013"
    stored = next(o for o in store.all() if o.id == role)
    assert stored.attribs["PersonId"] == str(b)
    assert [x.get("id") for x in stored.associations if x["mObjType"] == "Lead"] in ([b], [])  # never the old lead


def test_a_role_named_again_in_another_form_is_unchanged() -> None:
    _, store, a, _, role = _role_store()
    by_attributes = MObjectInput(
        type="OpportunityPersonRole", id=role, attribs=(("PersonId", str(a)), ("OpportunityId", "1"), ("Role", "Buyer"))
    )
    assert store.sync(by_attributes, "UPDATE").status == "UNCHANGED"
