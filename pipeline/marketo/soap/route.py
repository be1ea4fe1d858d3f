"""Which SOAP call carries a record (DESIGN 2.3): syncLead alone, syncMultipleLeads, syncMObjects per operation."""

from __future__ import annotations

from collections.abc import Callable

from pipeline.records import Operation, Record, Route, SyncOperation


def soap_router(*, max_leads: int, max_mobjects: int) -> Callable[[Record], Route]:
    """The route of each record under SOAP; one Route object per call shape."""
    alone = Route(Operation.SYNC_LEAD, (), 1)
    multiple = Route(Operation.SYNC_MULTIPLE_LEADS, (), max_leads)
    mobjects = {op: Route(Operation.SYNC_MOBJECTS, (op.value,), max_mobjects) for op in SyncOperation}

    def route(record: Record) -> Route:
        operation = record.operation
        if operation is Operation.SYNC_MULTIPLE_LEADS:
            return multiple
        if operation is Operation.SYNC_LEAD:
            return alone
        return mobjects[record.mobject_operation or SyncOperation.UPSERT]

    return route
