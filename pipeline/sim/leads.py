"""The simulator's leads, with the key precedence and update rules of Marketo's syncLead documentation.

Matching: Id, then ForeignSysPersonId (with its type), then the Munchkin cookie, then Email
(case-insensitive, only when dedupe is on). A foreign id or cookie that matches nothing falls back to Email.
Every method runs without awaiting, so one call's changes are atomic with respect to concurrent calls.

Where the documentation is silent, the simulator chooses, and says so (SIMULATOR'S CHOICE) with its reason:
an Id that matches nothing fails with 20103; a workspace that does not exist fails with 20110; a lead found by a
unique key outside the named workspace's primary partition fails with 20106.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

DEFAULT_WORKSPACE: Final = "Default"


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


@dataclass(frozen=True, slots=True)
class AssignmentRule:
    """A lead partition assignment rule: a new lead whose `field` holds `value` is created in `partition`.

    SIMULATOR'S CHOICE: Marketo's rules are set up in its Admin screens and may test many things; the simulator's
    test one attribute for equality (case-insensitive, as Marketo compares text), and the first rule that
    matches decides.
    """

    field: str
    value: str
    partition: str

    def matches(self, lead: LeadInput) -> bool:
        """Whether `lead`, as the request carries it, falls in this rule."""
        given = next((v for name, v in reversed(lead.attributes) if name == self.field), None)
        if given is None and self.field == "Email":
            given = lead.email
        elif given is None and self.field == "ForeignSysPersonId":
            given = lead.foreign_sys_person_id
        return given is not None and given.strip().casefold() == self.value.strip().casefold()


class LeadStore:
    """Leads by Id, with unique indexes on foreign id and cookie and a multi-index on Email."""

    def __init__(
        self, workspaces: dict[str, str] | None = None, assignment_rules: tuple[AssignmentRule, ...] = ()
    ) -> None:
        self.workspaces = workspaces or {DEFAULT_WORKSPACE: DEFAULT_WORKSPACE}
        self.assignment_rules = assignment_rules
        self._by_id: dict[int, StoredLead] = {}
        self._by_fsp: dict[tuple[str, str], int] = {}
        self._by_cookie: dict[str, int] = {}
        self._by_email: dict[str, list[int]] = {}
        self._next_id = 1
        self._clock = 0
        self._indexes: dict[str, dict[str, list[int]]] = {}  # attribute -> value -> ids, built when first looked up
        self.duplicate_matches = 0  # Email matches that had several leads to choose from

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
        # With duplicates (dedupEnabled false earlier, or an Email changed), Marketo updates the most recently added
        # one: ids grow.
        if len(ids) > 1:
            self.duplicate_matches += 1
        return self._by_id[max(ids)]

    def _match(self, lead: LeadInput, ctx: SyncContext) -> tuple[StoredLead | None, str | None]:
        if lead.id is not None:
            found = self._by_id.get(lead.id)
            if found is None:
                # SIMULATOR'S CHOICE: the docs do not say what an unknown Id does; 20103 is the code Marketo's
                # getLead answers an unknown lead with (a recorded fault), and creating a lead under an Id the
                # caller chose is something Marketo never does.
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

    def workspace(self, name: str) -> str | None:
        """The workspace called `name`, as the instance spells it.

        Marketo's names are not case-sensitive: the syncLead documentation's own sample names the Default workspace
        `default`.
        """
        wanted = name.strip().casefold()
        return next((w for w in self.workspaces if w.casefold() == wanted), None)

    def _check_workspace(self, found: StoredLead | None, matched_by: str | None, workspace: str | None) -> str:
        """The workspace's primary partition; raises when the seed's workspace rules forbid the sync."""
        if workspace is None:
            return self.workspaces[DEFAULT_WORKSPACE]
        primary = self.workspaces[workspace]
        if found is not None and matched_by in {"id", "fsp", "cookie"} and found.partition != primary:
            # The seed: such a lead "must exist in the primary partition of the specified workspace, or an error
            # is returned". SIMULATOR'S CHOICE of the code: 20106, Lead sync failed (the seed names none).
            msg = f"Lead {found.id} is not in the primary partition of workspace {workspace}"
            raise LeadRejectedError("20106", msg)
        return primary

    def _named_workspace(self, name: str | None) -> str | None:
        if name is None:
            return None
        found = self.workspace(name)
        if found is None:
            # SIMULATOR'S CHOICE: the docs do not say; 20110 (Parameter bad) is Marketo's code for a request
            # naming something that does not exist (a recorded syncCustomObjects fault: "Object name is not valid").
            raise LeadRejectedError("20110", f"Workspace not found: {name}")
        return found

    def _new_lead_partition(self, lead: LeadInput, primary: str) -> str:
        """Where a new lead goes: the partition of the first assignment rule it falls in, else `primary`."""
        rule = next((r for r in self.assignment_rules if r.matches(lead)), None)
        return primary if rule is None else rule.partition

    def sync(self, lead: LeadInput, ctx: SyncContext) -> tuple[str, StoredLead]:
        """Insert or update one lead; returns ("CREATED" | "UPDATED", the stored lead)."""
        workspace = self._named_workspace(ctx.workspace)
        found, matched_by = self._match(lead, ctx)
        primary = self._check_workspace(found, matched_by, workspace)
        self._clock += 1
        if found is None:
            stored = StoredLead(
                id=self._next_id,
                email=None,
                foreign_sys_person_id=None,
                foreign_sys_type=None,
                workspace=workspace or DEFAULT_WORKSPACE,
                partition=self._new_lead_partition(lead, primary),
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

    def find(self, lead_id: int | None, key: tuple[str, str] | None) -> int | None:
        """The lead an association names: by Marketo Id, else by an attribute's value (its external key).

        SIMULATOR'S CHOICE: when several leads hold the key's value, the most recently added one, as Email matches.
        """
        if lead_id is not None:
            return lead_id if lead_id in self._by_id else None
        if key is None:
            return None
        name, value = key
        if name == "Email":
            found = self._by_email_key(value)
            return None if found is None else found.id
        if name == "ForeignSysPersonId":  # an association names no ForeignSysType: any type's holder
            owners = [i for (_, fsp_id), i in self._by_fsp.items() if fsp_id == value]
            return max(owners, default=None)
        holders = self.with_attribute(name, value)
        return holders[-1].id if holders else None  # oldest first: the last is the most recently added

    def with_email(self, email: str) -> list[StoredLead]:
        """Every lead with this Email (case-insensitive), oldest first."""
        return [self._by_id[i] for i in self._by_email.get(email_key(email), ())]

    def with_attribute(self, name: str, value: str) -> list[StoredLead]:
        """Every lead whose attribute `name` (its SOAP name) holds exactly `value`, oldest first."""
        return [self._by_id[i] for i in sorted(self._index(name).get(value, ()))]

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
        if index is not None and stored.attributes.get(name) != value:
            old = stored.attributes.get(name)
            if old and stored.id in index.get(old, ()):
                index[old].remove(stored.id)
            if value:
                index.setdefault(value, []).append(stored.id)
        stored.attributes[name] = value

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
        """Give `stored` this foreign id; a lead that held it before holds it no more.

        It is a unique key, and "if both foreignSysPersonId and Marketo Id are present ..., the Marketo Id takes
        precedence and the foreignSysPersonId will be updated for that lead".
        """
        if stored.foreign_sys_person_id is not None and stored.foreign_sys_type is not None:
            self._by_fsp.pop((stored.foreign_sys_type, stored.foreign_sys_person_id), None)
        owner = self._by_fsp.get((fsp_type, fsp_id))
        if owner is not None and owner != stored.id:
            previous = self._by_id[owner]
            previous.foreign_sys_person_id = previous.foreign_sys_type = None
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
