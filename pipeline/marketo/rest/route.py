"""Which REST call carries a record: one call holds one (action, lookupField, partitionName), as Sync Leads wants.

Id -> `updateOnly` by `id`; ForeignSysPersonId -> `createOrUpdate` by `marketo.fsp_field`; Email -> `createOrUpdate`
by `email` (`createDuplicate` when Marketo's dedupe is off, unless the lead goes to a workspace's partition). A
workspace becomes `partitionName` through `marketo.partitions` (only `createOnly` and `createOrUpdate` take one). A
record REST cannot carry still gets a route (its call refuses it alone, with the reason: see `request.refusal`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

from pipeline.records import EventKind, Lead, Record, RestOperation, Route, SyncOperation

MAX_RECORDS_PER_CALL: Final = 300  # Sync Leads, Sync Opportunities, Sync Opportunity Roles
UPDATE_ONLY: Final = "updateOnly"
CREATE_OR_UPDATE: Final = "createOrUpdate"
CREATE_DUPLICATE: Final = "createDuplicate"
UNSENDABLE: Final = "unsendable"  # no REST call can carry the record: it is refused alone

MOBJECT_ACTIONS: Final = {
    SyncOperation.INSERT: "createOnly",
    SyncOperation.UPDATE: "updateOnly",
    SyncOperation.UPSERT: "createOrUpdate",
}


@dataclass(frozen=True, slots=True)
class RestRouting:
    """What routing needs from the settings."""

    fsp_field: str | None
    partitions: Mapping[str, str] = field(default_factory=dict)
    dedup_enabled: bool = True
    max_leads: int = MAX_RECORDS_PER_CALL
    max_objects: int = MAX_RECORDS_PER_CALL


def lead_action(lead: Lead, routing: RestRouting) -> tuple[str, str]:
    """(action, lookupField) for a lead: by the first key of the precedence that REST can look up by."""
    if lead.id is not None:
        return UPDATE_ONLY, "id"
    if lead.foreign_sys_person_id is not None:
        return (CREATE_OR_UPDATE, routing.fsp_field) if routing.fsp_field else (UNSENDABLE, "")
    if lead.email is not None:
        return (CREATE_OR_UPDATE, "email") if routing.dedup_enabled else (CREATE_DUPLICATE, "")
    return UNSENDABLE, ""  # known only by its cookie: REST cannot sync it


def rest_router(routing: RestRouting) -> Callable[[Record], Route]:
    """The route of each record under REST; one Route object per distinct call shape."""
    known: dict[tuple[str, ...], Route] = {}
    program = Route(RestOperation.UPDATE_PROGRAM, (), 1)  # one program per call

    def shared(operation: RestOperation, params: tuple[str, ...], limit: int) -> Route:
        key = (operation.value, *params)
        found = known.get(key)
        if found is None:
            found = known[key] = Route(operation, params, limit)
        return found

    def route(record: Record) -> Route:
        mobject = record.mobject
        if record.kind is EventKind.MOBJECT and mobject is not None:
            if mobject.type == "Program":
                return program
            action = MOBJECT_ACTIONS[record.mobject_operation or SyncOperation.UPSERT]
            if mobject.type == "OpportunityPersonRole":
                return shared(RestOperation.SYNC_OPPORTUNITY_ROLES, (action,), routing.max_objects)
            return shared(RestOperation.SYNC_OPPORTUNITIES, (action,), routing.max_objects)
        lead = record.lead or Lead()
        action, lookup = lead_action(lead, routing)
        if action == UNSENDABLE:
            return shared(RestOperation.SYNC_LEADS, (UNSENDABLE, "", ""), 1)
        workspace = record.workspace
        partition = "" if workspace is None or action == UPDATE_ONLY else routing.partitions.get(workspace, "")
        if partition and action == CREATE_DUPLICATE:
            # partitionName goes only with createOnly and createOrUpdate (leads.md): a createDuplicate would land in
            # the default partition. SOAP sends a lead with a workspace by syncLead, which dedupes by Email too.
            action, lookup = CREATE_OR_UPDATE, "email"
        return shared(RestOperation.SYNC_LEADS, (action, lookup, partition), routing.max_leads)

    return route
