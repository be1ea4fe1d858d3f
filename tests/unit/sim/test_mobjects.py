from __future__ import annotations

from pipeline.sim.mobjects import MObjectInput, MObjectStore

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
    store = MObjectStore()
    assert store.sync(MObjectInput(type="Company"), "UPSERT").error == "Unknown MObject type: Company"
    role = store.sync(MObjectInput(type="OpportunityPersonRole", attribs=(("OpportunityId", "1"),)), "INSERT")
    assert (role.status, role.error) == ("FAILED", "Required attribute missing: PersonId")
    complete = MObjectInput(
        type="OpportunityPersonRole", attribs=(("OpportunityId", "1"), ("PersonId", "2"), ("Role", "Champion"))
    )
    assert store.sync(complete, "INSERT").status == "CREATED"


def test_associations_are_kept_once() -> None:
    store = MObjectStore()
    link = {"mObjType": "Company", "id": None, "externalKey": {"name": "ExtCo", "value": "C-1"}}
    obj = MObjectInput(type="Opportunity", external_key=("ExtId", "O-1"), associations=(link,))
    store.sync(obj, "UPSERT")
    assert store.sync(obj, "UPSERT").status == "UNCHANGED"
    assert store.all()[0].to_json()["associations"] == [link]
