"""How a lead or an object is named: the precedence key and the identity values (DESIGN 2.2).

One home for the spelling, so that the pipeline's window and gate and the simulator's call log agree on it.
Pure: no I/O, nothing but strings out of the records.
"""

from __future__ import annotations

from pipeline.records import Association, Lead, MObject


def lead_key(lead: Lead, workspace: str | None) -> str:
    """The precedence key: Id, then foreign id, then cookie, then trimmed lower-case Email (DESIGN 2.2)."""
    if lead.id is not None:
        key = f"id:{lead.id}"
    elif lead.foreign_sys_person_id is not None and lead.foreign_sys_type is not None:
        key = f"fsp:{lead.foreign_sys_type.value}:{lead.foreign_sys_person_id}"
    elif lead.cookie is not None:
        key = f"cookie:{lead.cookie}"
    else:
        key = f"email:{(lead.email or '').strip().lower()}"
    return key if workspace is None else f"{key}|ws:{workspace}"


def lead_names(
    lead: Lead, workspace: str | None, *, email_attribute: bool = True
) -> tuple[str, frozenset[str], frozenset[str]]:
    """A lead's precedence key, the values it is looked up by, and every identity value: in one pass.

    The same spellings as `lead_key`, `lead_lookup` and `lead_identities`, which it replaces where every event
    needs all three. `email_attribute` False says the lead sets no `Email` attribute (the decoder knows).
    """
    found = []
    key = None
    if lead.id is not None:
        key = f"id:{lead.id}"
        found.append(key)
    if lead.foreign_sys_person_id is not None:
        fsp_type = lead.foreign_sys_type
        value = f"fsp:{None if fsp_type is None else fsp_type.value}:{lead.foreign_sys_person_id}"
        found.append(value)
        if key is None and fsp_type is not None:
            key = value
    if lead.cookie is not None:
        value = f"cookie:{lead.cookie}"
        found.append(value)
        key = key or value
    email = f"email:{lead.email.strip().lower()}" if lead.email is not None else None
    if email is not None:
        found.append(email)
    if key is None:
        key = email or "email:"
    lookup = frozenset(found)
    identities = lead_identities(lead, lookup) if email_attribute else lookup
    return (key if workspace is None else f"{key}|ws:{workspace}"), lookup, identities


def identity_values(
    *,
    lead_id: int | None,
    foreign_sys_type: str | None,
    foreign_sys_person_id: str | None,
    cookie: str | None,
    email: str | None,
) -> frozenset[str]:
    """Every identity value of a lead given by its fields: `id:`, `fsp:`, `cookie:` and `email:` values."""
    found = set()
    if lead_id is not None:
        found.add(f"id:{lead_id}")
    if foreign_sys_person_id is not None:
        found.add(f"fsp:{foreign_sys_type}:{foreign_sys_person_id}")
    if cookie is not None:
        found.add(f"cookie:{cookie}")
    if email is not None:
        found.add(f"email:{email.strip().lower()}")
    return frozenset(found)


def lead_lookup(lead: Lead) -> frozenset[str]:
    """The identity values Marketo looks a lead up by: its Id, foreign id, cookie and Email fields.

    Spelled as `identity_values` spells them; written out here because it runs for every event.
    """
    found = []
    if lead.id is not None:
        found.append(f"id:{lead.id}")
    if lead.foreign_sys_person_id is not None:
        fsp_type = lead.foreign_sys_type
        found.append(f"fsp:{None if fsp_type is None else fsp_type.value}:{lead.foreign_sys_person_id}")
    if lead.cookie is not None:
        found.append(f"cookie:{lead.cookie}")
    if lead.email is not None:
        found.append(f"email:{lead.email.strip().lower()}")
    return frozenset(found)


def lead_identities(lead: Lead, lookup: frozenset[str] | None = None) -> frozenset[str]:
    """Every identity value of a lead: the ones it is looked up by (`lookup`, when known), and an attribute Email.

    Marketo moves a lead to an Email set as an attribute. Records sharing a value are never in one call nor in
    flight together.
    """
    found = lead_lookup(lead) if lookup is None else lookup
    for name, value in lead.attributes:
        if name == "Email" and value.strip():
            return found | {f"email:{value.strip().lower()}"}
    return found


def mobject_ref(mobject_type: str, object_id: int | None, external_key: tuple[str, str] | None) -> str | None:
    """`mobj:<type>:<id or externalKey name=value>`, or None for an object named by neither."""
    if object_id is not None:
        return f"mobj:{mobject_type}:{object_id}"
    if external_key is not None:
        return f"mobj:{mobject_type}:{external_key[0]}={external_key[1]}"
    return None


def mobject_key(mobject: MObject, event_id: str) -> str:
    """`mobj:<type>:<id or externalKey name=value>`; an object with neither is keyed by its event alone."""
    key = mobject.external_key
    ref = mobject_ref(mobject.type, mobject.id, None if key is None else (key.name, key.value))
    return ref or f"mobj:{mobject.type}:event={event_id}"


def _association_ref(association: Association) -> str | None:
    if association.mobj_type == "Lead":
        return None if association.id is None else f"id:{association.id}"
    key = association.external_key
    return mobject_ref(association.mobj_type, association.id, None if key is None else (key.name, key.value))


def mobject_identities(mobject: MObject, key: str) -> frozenset[str]:
    """What an object is named by: its id and its external key, each a name (or its key, when it has neither)."""
    found = set()
    if mobject.id is not None:
        found.add(f"mobj:{mobject.type}:{mobject.id}")
    if mobject.external_key is not None:
        found.add(f"mobj:{mobject.type}:{mobject.external_key.name}={mobject.external_key.value}")
    return frozenset(found) if found else frozenset({key})


def mobject_references(mobject: MObject) -> frozenset[str]:
    """What an object refers to: its associations, and the OpportunityId and PersonId of a role.

    A record that refers to an object never overtakes that object's own pending records.
    """
    found = {ref for ref in map(_association_ref, mobject.associations) if ref is not None}
    for attrib in mobject.attribs:
        number = _id_text(attrib.value)
        if attrib.name == "OpportunityId" and number:
            found.add(f"mobj:Opportunity:{number}")
        elif attrib.name == "PersonId" and number:
            found.add(f"id:{number}")
    return frozenset(found)


def _id_text(value: str) -> str | None:
    """An id given as attribute text, as ids are spelled elsewhere: `5.0` and `05` are `5`; else None."""
    try:
        number = float(value)
    except ValueError:
        return value.strip() or None
    return str(int(number)) if number.is_integer() and number > 0 else None
