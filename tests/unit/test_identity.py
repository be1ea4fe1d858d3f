from __future__ import annotations

from pipeline.identity import mobject_references
from pipeline.records import Association, Attrib, MObject


def test_a_role_refers_to_its_opportunity_and_its_lead_however_their_ids_are_written() -> None:
    role = MObject(
        "OpportunityPersonRole",
        attribs=(Attrib("OpportunityId", "07"), Attrib("PersonId", "5.0"), Attrib("Role", "Buyer")),
        associations=(Association("Opportunity", external_key=Attrib("ExtId", "O-1")), Association("Lead", id=9)),
    )
    assert mobject_references(role) == {"mobj:Opportunity:7", "id:5", "mobj:Opportunity:ExtId=O-1", "id:9"}
