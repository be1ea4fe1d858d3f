from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.sim.leads import AssignmentRule, LeadInput, LeadRejectedError, LeadStore, SyncContext

MULTI = SyncContext()
SINGLE = SyncContext(single=True)


def test_a_new_email_creates_and_the_same_email_in_another_case_updates() -> None:
    store = LeadStore()
    status, first = store.sync(LeadInput(email="Ada@Example.com", attributes=(("FirstName", "Ada"),)), MULTI)
    assert status == "CREATED"
    status, second = store.sync(LeadInput(email="  ada@example.COM ", attributes=(("LastName", "L"),)), MULTI)
    assert status == "UPDATED"
    assert second.id == first.id
    assert len(store) == 1
    assert second.attributes == {"FirstName": "Ada", "LastName": "L"}


def test_dedupe_off_creates_duplicates_and_later_email_matches_the_latest() -> None:
    store = LeadStore()
    store.sync(LeadInput(email="a@example.com"), MULTI)
    _, duplicate = store.sync(LeadInput(email="a@example.com"), SyncContext(dedup=False))
    assert len(store) == 2
    _, matched = store.sync(LeadInput(email="A@example.com", attributes=(("X", "1"),)), MULTI)
    assert matched.id == duplicate.id


def test_id_takes_precedence_and_updates_the_foreign_id() -> None:
    store = LeadStore()
    _, lead = store.sync(LeadInput(email="a@example.com"), MULTI)
    _, other = store.sync(LeadInput(email="b@example.com"), MULTI)
    status, updated = store.sync(
        LeadInput(id=lead.id, email="b@example.com", foreign_sys_person_id="SF-1", foreign_sys_type="SFDC"), MULTI
    )
    assert (status, updated.id) == ("UPDATED", lead.id)
    assert (updated.foreign_sys_person_id, updated.foreign_sys_type) == ("SF-1", "SFDC")
    # syncMultipleLeads leaves Email alone when another key matched...
    assert updated.email == "a@example.com"
    assert other.email == "b@example.com"


def test_sync_lead_updates_email_when_the_foreign_id_matches() -> None:
    store = LeadStore()
    _, lead = store.sync(
        LeadInput(email="old@example.com", foreign_sys_person_id="SF-1", foreign_sys_type="SFDC"), MULTI
    )
    _, updated = store.sync(
        LeadInput(email="new@example.com", foreign_sys_person_id="SF-1", foreign_sys_type="SFDC"), SINGLE
    )
    assert updated.id == lead.id
    assert updated.email == "new@example.com"
    # ...and the old address no longer finds it.
    status, fresh = store.sync(LeadInput(email="old@example.com"), MULTI)
    assert status == "CREATED"
    assert fresh.id != lead.id


def test_email_attribute_updates_email_in_sync_multiple_leads() -> None:
    store = LeadStore()
    _, lead = store.sync(LeadInput(foreign_sys_person_id="SF-2", foreign_sys_type="SFDC"), MULTI)
    store.sync(
        LeadInput(foreign_sys_person_id="SF-2", foreign_sys_type="SFDC", attributes=(("Email", "z@example.com"),)),
        MULTI,
    )
    assert store.get(lead.id) is not None
    assert lead.email == "z@example.com"


def test_foreign_id_precedes_email() -> None:
    store = LeadStore()
    _, by_email = store.sync(LeadInput(email="a@example.com"), MULTI)
    _, by_fsp = store.sync(
        LeadInput(email="x@example.com", foreign_sys_person_id="N-1", foreign_sys_type="NETSUITE"), MULTI
    )
    _, matched = store.sync(
        LeadInput(email="a@example.com", foreign_sys_person_id="N-1", foreign_sys_type="NETSUITE"), MULTI
    )
    assert matched.id == by_fsp.id != by_email.id


def test_unknown_foreign_id_falls_back_to_email_and_is_recorded() -> None:
    store = LeadStore()
    _, lead = store.sync(LeadInput(email="a@example.com"), MULTI)
    status, matched = store.sync(
        LeadInput(email="a@example.com", foreign_sys_person_id="C-9", foreign_sys_type="CUSTOM"), MULTI
    )
    assert (status, matched.id, matched.foreign_sys_person_id) == ("UPDATED", lead.id, "C-9")


def test_unknown_id_is_lead_not_found() -> None:
    with pytest.raises(LeadRejectedError) as caught:
        LeadStore().sync(LeadInput(id=99, email="a@example.com"), MULTI)
    assert caught.value.code == "20103"


def test_foreign_id_needs_its_type() -> None:
    with pytest.raises(LeadRejectedError) as caught:
        LeadStore().sync(LeadInput(foreign_sys_person_id="SF-1"), MULTI)
    assert caught.value.code == "20109"


def test_a_lead_without_any_key_is_refused() -> None:
    with pytest.raises(LeadRejectedError) as caught:
        LeadStore().sync(LeadInput(attributes=(("FirstName", "A"),)), MULTI)
    assert caught.value.code == "20101"


def test_an_id_matched_update_takes_the_foreign_id_from_the_lead_that_held_it() -> None:
    # The seed: with both the Marketo Id and a foreignSysPersonId, "the Marketo Id takes precedence and the
    # foreignSysPersonId will be updated for that lead". The foreign id is a unique key: it moves.
    store = LeadStore()
    _, first = store.sync(
        LeadInput(email="a@example.com", foreign_sys_person_id="SF-1", foreign_sys_type="SFDC"), MULTI
    )
    _, second = store.sync(LeadInput(email="b@example.com"), MULTI)
    status, updated = store.sync(LeadInput(id=second.id, foreign_sys_person_id="SF-1", foreign_sys_type="SFDC"), MULTI)
    assert (status, updated.id, updated.foreign_sys_person_id) == ("UPDATED", second.id, "SF-1")
    assert (first.foreign_sys_person_id, first.foreign_sys_type) == (None, None)
    # the foreign id now finds the second lead, and the first can take another
    _, found = store.sync(LeadInput(foreign_sys_person_id="SF-1", foreign_sys_type="SFDC"), MULTI)
    assert found.id == second.id
    _, again = store.sync(LeadInput(id=first.id, foreign_sys_person_id="SF-2", foreign_sys_type="SFDC"), MULTI)
    assert (again.id, again.foreign_sys_person_id) == (first.id, "SF-2")


def test_an_email_shared_by_duplicates_finds_the_most_recently_added_lead() -> None:
    store = LeadStore()
    _, older = store.sync(LeadInput(email="a@example.com"), MULTI)
    _, newer = store.sync(LeadInput(email="a@example.com"), SyncContext(dedup=False))
    store.sync(LeadInput(id=older.id, attributes=(("Touched", "1"),)), MULTI)  # the older one touched last
    _, matched = store.sync(LeadInput(email="A@example.com", attributes=(("X", "1"),)), MULTI)
    assert matched.id == newer.id
    assert "X" not in older.attributes


def test_an_anonymous_lead_becomes_known_through_its_cookie() -> None:
    store = LeadStore()
    status, anonymous = store.sync(LeadInput(), SyncContext(single=True, cookie="id:1&token:a"))
    assert status == "CREATED"
    assert anonymous.email is None
    status, known = store.sync(
        LeadInput(email="ada@example.com", attributes=(("FirstName", "Ada"),)),
        SyncContext(single=True, cookie="id:1&token:a"),
    )
    assert (status, known.id, known.email, known.cookies) == (
        "UPDATED",
        anonymous.id,
        "ada@example.com",
        ["id:1&token:a"],
    )
    assert len(store) == 1


def test_a_cookie_moves_to_the_lead_that_claims_it_by_id() -> None:
    store = LeadStore()
    _, anonymous = store.sync(LeadInput(), SyncContext(single=True, cookie="c-1"))
    _, known = store.sync(LeadInput(email="k@example.com"), MULTI)
    store.sync(LeadInput(id=known.id), SyncContext(single=True, cookie="c-1"))
    assert known.cookies == ["c-1"]
    assert anonymous.cookies == []


def test_workspace_rules_of_the_sync_lead_documentation() -> None:
    store = LeadStore({"Default": "Default", "EMEA": "EMEA Primary"})
    status, emea = store.sync(LeadInput(email="e@example.com"), SyncContext(single=True, workspace="EMEA"))
    assert (status, emea.workspace, emea.partition) == ("CREATED", "EMEA", "EMEA Primary")
    _, default = store.sync(LeadInput(email="d@example.com"), SINGLE)
    assert default.partition == "Default"
    # Matched by Id: the lead must live in the named workspace's primary partition.
    with pytest.raises(LeadRejectedError) as caught:
        store.sync(LeadInput(id=default.id), SyncContext(single=True, workspace="EMEA"))
    assert caught.value.code == "20106"
    # Matched by Email: the workspace is ignored and the lead stays where it is.
    status, same = store.sync(
        LeadInput(email="d@example.com", attributes=(("A", "1"),)), SyncContext(single=True, workspace="EMEA")
    )
    assert (status, same.id, same.partition) == ("UPDATED", default.id, "Default")
    with pytest.raises(LeadRejectedError) as unknown:
        store.sync(LeadInput(email="x@example.com"), SyncContext(single=True, workspace="APAC"))
    assert unknown.value.code == "20110"


@pytest.mark.parametrize(
    ("spelling", "workspace", "partition"),
    [("default", "Default", "Default"), (" DEFAULT ", "Default", "Default"), ("emea", "EMEA", "EMEA Primary")],
)
def test_workspace_names_are_not_case_sensitive(spelling: str, workspace: str, partition: str) -> None:
    # The syncLead documentation's Java sample names the Default workspace "default".
    store = LeadStore({"Default": "Default", "EMEA": "EMEA Primary"})
    status, lead = store.sync(LeadInput(email="d@example.com"), SyncContext(single=True, workspace=spelling))
    assert (status, lead.workspace, lead.partition) == ("CREATED", workspace, partition)


def test_assignment_rules_place_new_leads_with_or_without_the_header() -> None:
    rules = (AssignmentRule("Country", "France", "Europe"), AssignmentRule("Country", "Germany", "Europe 2"))
    store = LeadStore({"Default": "Default", "EMEA": "EMEA Primary"}, rules)
    french = LeadInput(email="f@example.com", attributes=(("Country", "france"),))
    _, lead = store.sync(french, SyncContext(single=True, workspace="EMEA"))
    assert (lead.workspace, lead.partition) == ("EMEA", "Europe")  # the rule's partition, not the primary one
    _, no_header = store.sync(LeadInput(email="g@example.com", attributes=(("Country", "Germany"),)), MULTI)
    assert no_header.partition == "Europe 2"
    _, plain = store.sync(LeadInput(email="p@example.com", attributes=(("Country", "Peru"),)), MULTI)
    assert plain.partition == "Default"  # no rule: the primary partition of the Default workspace
    # the rules place new leads only: an existing lead stays in its partition
    _, moved = store.sync(LeadInput(email="p@example.com", attributes=(("Country", "France"),)), MULTI)
    assert (moved.id, moved.partition) == (plain.id, "Default")


@given(
    st.lists(
        st.tuples(st.sampled_from(["a@x.com", "A@X.COM", "b@x.com", " b@x.com"]), st.text(max_size=3)), max_size=30
    )
)
def test_with_dedupe_on_there_is_one_lead_per_address(events: list[tuple[str, str]]) -> None:
    store = LeadStore()
    for email, value in events:
        store.sync(LeadInput(email=email, attributes=(("V", value),)), MULTI)
    assert len(store) == len({email.strip().lower() for email, _ in events})
    last: dict[str, str] = {}
    for email, value in events:
        last[email.strip().lower()] = value
    assert {(lead.email or "").strip().lower(): lead.attributes["V"] for lead in store.all()} == last


def test_a_lead_named_by_a_custom_key_is_the_most_recently_added_holder_however_often_others_are_written() -> None:
    store = LeadStore()
    _, older = store.sync(LeadInput(email="o@x.com", attributes=(("FSPID", "7"),)), MULTI)
    _, newer = store.sync(LeadInput(email="n@x.com", attributes=(("FSPID", "7"),)), MULTI)
    assert store.find(None, ("FSPID", "7")) == newer.id
    store.sync(LeadInput(email="o@x.com", attributes=(("FSPID", "7"),)), MULTI)  # the older one written again
    assert store.find(None, ("FSPID", "7")) == newer.id
    assert [lead.id for lead in store.with_attribute("FSPID", "7")] == [older.id, newer.id]  # oldest first
    store.sync(LeadInput(email="n@x.com", attributes=(("FSPID", "8"),)), MULTI)
    assert store.find(None, ("FSPID", "7")) == older.id
    assert (store.find(newer.id, None), store.find(999, None), store.find(None, ("FSPID", "9"))) == (
        newer.id,
        None,
        None,
    )


def test_an_assignment_rule_on_email_reads_an_email_attribute_too() -> None:
    store = LeadStore(assignment_rules=(AssignmentRule("Email", "vip@x.com", "VIP"),))
    _, by_key = store.sync(LeadInput(email="VIP@x.com"), MULTI)
    _, by_attribute = store.sync(LeadInput(foreign_sys_person_id="s1", foreign_sys_type="SFDC",
                                           attributes=(("Email", "vip@x.com"),)), MULTI)  # fmt: skip
    assert (by_key.partition, by_attribute.partition) == ("VIP", "VIP")
