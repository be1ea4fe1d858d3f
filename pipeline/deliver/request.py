"""The body of the call that carries a batch's records."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.marketo.envelope import (
    SoapRequest,
    sync_lead_request,
    sync_mobjects_request,
    sync_multiple_leads_request,
)
from pipeline.records import Operation, Record, SyncOperation


def build_request(
    operation: Operation, records: Sequence[Record], mobject_operation: SyncOperation | None, *, dedup_enabled: bool
) -> SoapRequest:
    """The body of the call that carries `records`; raises UnencodableRecordError naming a record XML cannot carry."""
    if operation is Operation.SYNC_MOBJECTS:
        mobjects = [r.mobject for r in records if r.mobject is not None]
        return sync_mobjects_request(mobjects, operation=mobject_operation or SyncOperation.UPSERT)
    leads = [r.lead for r in records if r.lead is not None]
    if operation is Operation.SYNC_LEAD:
        record = records[0]
        return sync_lead_request(leads[0], return_lead=record.return_lead, workspace=record.workspace)
    return sync_multiple_leads_request(leads, dedup_enabled=dedup_enabled)
