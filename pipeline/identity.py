"""How a lead or an object is named: the precedence key and the identity values (DESIGN 2.2).

One home for the spelling, so that the pipeline's window and gate and the simulator's call log agree on it.
Pure: no I/O, nothing but strings out of the records.
"""

from __future__ import annotations

from pipeline.records import Lead, MObject


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


def lead_identities(lead: Lead) -> frozenset[str]:
    """Every identity value of a lead: records sharing one are never in one call nor in flight together."""
    fsp_type = lead.foreign_sys_type
    return identity_values(
        lead_id=lead.id,
        foreign_sys_type=None if fsp_type is None else fsp_type.value,
        foreign_sys_person_id=lead.foreign_sys_person_id,
        cookie=lead.cookie,
        email=lead.email,
    )


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
