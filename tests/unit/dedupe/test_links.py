from __future__ import annotations

from pipeline.dedupe.links import IdentityLinks


def test_values_linked_by_events_share_one_root_and_joining_components_reports_the_roots_absorbed() -> None:
    links = IdentityLinks()
    root, absorbed = links.link({"id:5", "email:a"})
    assert absorbed
    assert links.root("id:5") == links.root("email:a") == root
    assert links.root("email:b") == "email:b"  # never linked: its own root, and nothing stored
    later, joined = links.link({"email:a", "fsp:s"})
    assert later == root
    assert joined == ["fsp:s"]
    assert links.roots({"id:5", "fsp:s"}) == {root}


def test_a_component_in_use_is_kept_even_when_no_event_carries_several_of_its_values_again() -> None:
    links = IdentityLinks(capacity=4)
    busy_lead, _ = links.link({"fsp:x", "email:x"})
    links.link({"fsp:y", "email:y"})
    links.touch(busy_lead)  # a later event named only email:x: the lead is in use
    links.link({"fsp:z", "email:z"})  # over capacity: the least recently used goes
    assert links.root("fsp:x") == links.root("email:x")
    assert links.root("fsp:y") != links.root("email:y")


def test_the_link_just_made_is_never_the_one_forgotten() -> None:
    links = IdentityLinks(capacity=2, busy=lambda root: root in {"fsp:a", "email:a"})
    links.link({"fsp:a", "email:a"})
    links.link({"fsp:b", "email:b"})  # over capacity, and the only older component is busy
    assert links.root("fsp:b") == links.root("email:b")
    assert links.root("fsp:a") == links.root("email:a")
