"""The simulator's leads, with the key precedence and update rules of Marketo's syncLead documentation.

Matching: Id, then ForeignSysPersonId (with its type), then the Munchkin cookie, then Email
(case-insensitive, only when dedupe is on). An Id that matches nothing is an error; a foreign id or
cookie that matches nothing falls back to Email. Every method runs without awaiting, so one call's
changes are atomic with respect to concurrent calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class LeadRejectedError(Exception):
    """Marketo refuses this lead: a per-record FAILED in syncMultipleLeads, a fault in syncLead."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{message} ({code})")
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class LeadInput:
    """A `leadRecord` as a request carried it."""

    id: int | None = None
    email: str | None = None
    foreign_sys_person_id: str | None = None
    foreign_sys_type: str | None = None
    attributes: tuple[tuple[str, str], ...] = ()


@dataclass(slots=True)
class StoredLead:
    """One lead of the simulated instance."""

    id: int
    email: str | None
    foreign_sys_person_id: str | None
    foreign_sys_type: str | None
    workspace: str
    partition: str
    cookies: list[str] = field(default_factory=list)
    attributes: dict[str, str] = field(default_factory=dict)
    touched: int = 0

    def to_json(self) -> dict[str, Any]:
        """The lead as `GET /_sim/leads` shows it."""
        return {
            "Id": self.id,
            "Email": self.email,
            "ForeignSysPersonId": self.foreign_sys_person_id,
            "ForeignSysType": self.foreign_sys_type,
            "cookies": list(self.cookies),
            "workspace": self.workspace,
            "partition": self.partition,
            "attributes": dict(self.attributes),
        }


def email_key(email: str) -> str:
    """Marketo dedupes Email case-insensitively and ignores surrounding blanks."""
    return email.strip().lower()


@dataclass(frozen=True, slots=True)
class SyncContext:
    """How a call asks for a lead to be synced."""

    dedup: bool = True
    single: bool = False  # syncLead: Email given with another key updates the Email
    cookie: str | None = None
    workspace: str | None = None  # the MktowsContextHeader's targetWorkspace, if any


class LeadStore:
    """Leads by Id, with unique indexes on foreign id and cookie and a multi-index on Email."""

    def __init__(self, workspaces: dict[str, str] | None = None) -> None:
        self.workspaces = workspaces or {"Default": "Default"}
        self._by_id: dict[int, StoredLead] = {}
        self._by_fsp: dict[tuple[str, str], int] = {}
        self._by_cookie: dict[str, int] = {}
        self._by_email: dict[str, list[int]] = {}
        self._next_id = 1
        self._clock = 0
        self._indexes: dict[str, dict[str, list[int]]] = {}  # attribute -> value -> ids, built when first looked up

    def __len__(self) -> int:
        return len(self._by_id)

    def all(self) -> list[StoredLead]:
        """Every lead, in creation order."""
        return list(self._by_id.values())

    def get(self, lead_id: int) -> StoredLead | None:
        """The lead with Marketo Id `lead_id`, if any."""
        return self._by_id.get(lead_id)

    def _by_email_key(self, email: str) -> StoredLead | None:
        ids = self._by_email.get(email_key(email))
        if not ids:
            return None
        # With duplicates (dedupEnabled false earlier), Marketo updates the most recently touched one.
        return max((self._by_id[i] for i in ids), key=lambda lead: lead.touched)

    def _match(self, lead: LeadInput, ctx: SyncContext) -> tuple[StoredLead | None, str | None]:
        if lead.id is not None:
            found = self._by_id.get(lead.id)
            if found is None:
                raise LeadRejectedError("20103", f"Lead not found: Id {lead.id}")
            return found, "id"
        if lead.foreign_sys_person_id is not None:
            if lead.foreign_sys_type is None:
                raise LeadRejectedError("20109", "ForeignSysType is required with ForeignSysPersonId")
            fsp_id = self._by_fsp.get((lead.foreign_sys_type, lead.foreign_sys_person_id))
            if fsp_id is not None:
                return self._by_id[fsp_id], "fsp"
        if ctx.cookie is not None and ctx.cookie in self._by_cookie:
            return self._by_id[self._by_cookie[ctx.cookie]], "cookie"
        if lead.email is not None and ctx.dedup:
            found = self._by_email_key(lead.email)
            if found is not None:
                return found, "email"
        if lead.foreign_sys_person_id is None and lead.email is None and ctx.cookie is None:
            raise LeadRejectedError("20101", "Lead key required: Id, ForeignSysPersonId, Email or cookie")
        return None, None

    def _check_workspace(self, found: StoredLead | None, matched_by: str | None, workspace: str | None) -> str:
        """The partition a new lead goes to; raises when the seed's workspace rules forbid the sync."""
        if workspace is None:
            return self.workspaces["Default"]
        primary = self.workspaces.get(workspace)
        if primary is None:
            raise LeadRejectedError("20110", f"Workspace not found: {workspace}")
        if found is not None and matched_by in {"id", "fsp", "cookie"} and found.partition != primary:
            msg = f"Lead {found.id} is not in the primary partition of workspace {workspace}"
            raise LeadRejectedError("20106", msg)
        return primary

    def sync(self, lead: LeadInput, ctx: SyncContext) -> tuple[str, StoredLead]:
        """Insert or update one lead; returns ("CREATED" | "UPDATED", the stored lead)."""
        found, matched_by = self._match(lead, ctx)
        partition = self._check_workspace(found, matched_by, ctx.workspace)
        self._check_foreign_id(found, lead)
        self._clock += 1
        if found is None:
            stored = StoredLead(
                id=self._next_id,
                email=None,
                foreign_sys_person_id=None,
                foreign_sys_type=None,
                workspace=ctx.workspace or "Default",
                partition=partition,
            )
            self._next_id += 1
            self._by_id[stored.id] = stored
            self._set_email(stored, lead.email)
            status = "CREATED"
        else:
            stored = found
            # syncLead updates the Email of a lead found by another key; syncMultipleLeads only
            # changes Email through the attribute list.
            if lead.email is not None and ctx.single and matched_by != "email":
                self._set_email(stored, lead.email)
            status = "UPDATED"
        if lead.foreign_sys_person_id is not None and lead.foreign_sys_type is not None:
            self._set_foreign_id(stored, lead.foreign_sys_type, lead.foreign_sys_person_id)
        for name, value in lead.attributes:
            if name == "Email":
                self._set_email(stored, value or None)
            else:
                self._set_attribute(stored, name, value)
        if ctx.cookie is not None:
            self._associate_cookie(stored, ctx.cookie)
        stored.touched = self._clock
        return status, stored

    # --- what the REST front-end needs (pipeline.sim.restapi) --------------------------------------------------------

    def with_email(self, email: str) -> list[StoredLead]:
        """Every lead with this Email (case-insensitive), oldest first."""
        return [self._by_id[i] for i in self._by_email.get(email_key(email), ())]

    def with_attribute(self, name: str, value: str) -> list[StoredLead]:
        """Every lead whose attribute `name` (its SOAP name) holds exactly `value`, oldest first."""
        return [self._by_id[i] for i in self._index(name).get(value, ())]

    def create(self, partition: str) -> StoredLead:
        """A new, empty lead in `partition` (and the workspace whose primary partition it is)."""
        workspace = next((w for w, p in self.workspaces.items() if p == partition), "Default")
        stored = StoredLead(self._next_id, None, None, None, workspace=workspace, partition=partition)
        self._next_id += 1
        self._by_id[stored.id] = stored
        return stored

    def apply(self, stored: StoredLead, *, email: str | None, attributes: dict[str, str]) -> None:
        """Set `email` (when given) and `attributes` (SOAP names) on `stored`."""
        if email is not None:
            self._set_email(stored, email)
        for name, value in attributes.items():
            if name == "Email":
                self._set_email(stored, value or None)
            else:
                self._set_attribute(stored, name, value)
        self._clock += 1
        stored.touched = self._clock

    def associate(self, stored: StoredLead, cookie: str) -> None:
        """The cookie's web activity is `stored`'s from now on."""
        self._associate_cookie(stored, cookie)

    def _index(self, name: str) -> dict[str, list[int]]:
        index = self._indexes.get(name)
        if index is None:
            index = self._indexes[name] = {}
            for lead in self._by_id.values():
                value = lead.attributes.get(name)
                if value:
                    index.setdefault(value, []).append(lead.id)
        return index

    def _set_attribute(self, stored: StoredLead, name: str, value: str) -> None:
        index = self._indexes.get(name)
        if index is not None:
            old = stored.attributes.get(name)
            if old and stored.id in index.get(old, ()):
                index[old].remove(stored.id)
            if value:
                index.setdefault(value, []).append(stored.id)
        stored.attributes[name] = value

    def _check_foreign_id(self, found: StoredLead | None, lead: LeadInput) -> None:
        if lead.foreign_sys_person_id is None or lead.foreign_sys_type is None:
            return
        owner = self._by_fsp.get((lead.foreign_sys_type, lead.foreign_sys_person_id))
        if owner is not None and (found is None or owner != found.id):
            msg = f"ForeignSysPersonId {lead.foreign_sys_person_id} already belongs to lead {owner}"
            raise LeadRejectedError("20106", msg)

    def _set_email(self, stored: StoredLead, email: str | None) -> None:
        if stored.email is not None:
            ids = self._by_email.get(email_key(stored.email), [])
            if stored.id in ids:
                ids.remove(stored.id)
            if not ids:
                self._by_email.pop(email_key(stored.email), None)
        stored.email = email
        if email is not None:
            self._by_email.setdefault(email_key(email), []).append(stored.id)

    def _set_foreign_id(self, stored: StoredLead, fsp_type: str, fsp_id: str) -> None:
        if stored.foreign_sys_person_id is not None and stored.foreign_sys_type is not None:
            self._by_fsp.pop((stored.foreign_sys_type, stored.foreign_sys_person_id), None)
        stored.foreign_sys_person_id, stored.foreign_sys_type = fsp_id, fsp_type
        self._by_fsp[(fsp_type, fsp_id)] = stored.id

    def _associate_cookie(self, stored: StoredLead, cookie: str) -> None:
        previous = self._by_cookie.get(cookie)
        if previous == stored.id:
            return
        if previous is not None:
            # The anonymous visitor is now known: its cookie moves to the known lead.
            self._by_id[previous].cookies.remove(cookie)
        self._by_cookie[cookie] = stored.id
        stored.cookies.append(cookie)
