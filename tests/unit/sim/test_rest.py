from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson
import pytest

from devkit.simulator import SimClient
from pipeline.marketo.soap.envelope import sync_lead_request, sync_multiple_leads_request
from pipeline.marketo.soap.signing import Credentials
from pipeline.records import Lead
from pipeline.sim.catalog import FSP_FIELD
from pipeline.sim.identity import TokenIssuer
from pipeline.sim.server import Simulator, SimulatorServer
from pipeline.sim.settings import SimSettings

SETTINGS = SimSettings(workspaces={"Default": "Default", "EMEA": "Europe"}, custom_fields=("Seq",))
COOKIE = "id:287-GTJ-838&token:_mch-marketo.com-1396310362214-46169"
Json = Any


@dataclass
class Rest:
    """A REST client of the simulator, as plain as curl: every header and body spelled out by the test."""

    server: SimulatorServer
    session: aiohttp.ClientSession
    token: str = ""

    @property
    def simulator(self) -> Simulator:
        return self.server.simulator

    def url(self, path: str) -> str:
        return f"{self.server.base_url}{path}"

    async def identity(self, method: str = "GET", **values: str) -> tuple[int, Json]:
        """Ask the identity service for a token: in the query (GET), or in a form body (POST)."""
        url = self.url("/identity/oauth/token")
        if method == "GET":
            async with self.session.get(url, params=values) as response:
                return response.status, orjson.loads(await response.read())
        async with self.session.post(url, data=values) as response:
            return response.status, orjson.loads(await response.read())

    async def send(
        self,
        method: str,
        path: str,
        *,
        json: Json = None,
        form: dict[str, str] | None = None,
        body: bytes | None = None,
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        sent = {"Authorization": f"Bearer {self.token}"} if headers is None else headers
        data: bytes | None = body
        if json is not None:
            data, sent = orjson.dumps(json), {**sent, "Content-Type": "application/json"}
        elif form is not None:
            data, sent = urlencode(form).encode(), {**sent, "Content-Type": "application/x-www-form-urlencoded"}
        async with self.session.request(method, self.url(path), data=data, params=query, headers=sent) as response:
            return response.status, await response.read()

    async def call(self, method: str, path: str, **kwargs: Any) -> Json:
        """A call Marketo answers with its envelope (HTTP 200 whether it succeeds or not)."""
        status, data = await self.send(method, path, **kwargs)
        assert status == 200, data
        envelope = orjson.loads(data)
        assert isinstance(envelope["requestId"], str)
        assert envelope["requestId"]
        return envelope

    async def ok(self, method: str, path: str, **kwargs: Any) -> list[Json]:
        envelope = await self.call(method, path, **kwargs)
        assert envelope["success"] is True, envelope
        assert "errors" not in envelope
        result: list[Json] = envelope.get("result", [])
        return result

    async def error(self, method: str, path: str, **kwargs: Any) -> str:
        envelope = await self.call(method, path, **kwargs)
        assert envelope["success"] is False
        assert "result" not in envelope
        [error] = envelope["errors"]
        assert isinstance(error["message"], str)
        assert error["message"]
        code: str = error["code"]
        return code

    async def sync(self, records: list[Json], **params: Any) -> list[Json]:
        return await self.ok("POST", "/rest/v1/leads.json", json={**params, "input": records})

    async def admin(self, path: str, patch: Json = None) -> Json:
        if patch is None:
            async with self.session.get(self.url(f"/_sim/{path}")) as response:
                return orjson.loads(await response.read())
        async with self.session.post(self.url(f"/_sim/{path}"), json=patch) as response:
            assert response.status == 200, await response.read()
            return orjson.loads(await response.read())

    async def leads(self) -> dict[int, Json]:
        return {lead["Id"]: lead for lead in (await self.admin("leads"))["leads"]}


@pytest.fixture
async def rest() -> AsyncIterator[Rest]:
    async with SimulatorServer(Simulator(SETTINGS)) as server, aiohttp.ClientSession() as session:
        client = Rest(server, session)
        status, reply = await client.identity(
            grant_type="client_credentials", client_id=SETTINGS.client_id, client_secret=SETTINGS.client_secret
        )
        assert status == 200
        client.token = reply["access_token"]
        yield client


class Skipped:
    """Equal to a result entry skipped for `code` (one reason), whatever its message says."""

    def __init__(self, code: str) -> None:
        self.code = code

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, dict) or other.get("status") != "skipped" or "id" in other:
            return False
        reasons = other.get("reasons")
        return isinstance(reasons, list) and [(r["code"], bool(r["message"])) for r in reasons] == [(self.code, True)]

    def __hash__(self) -> int:
        return hash(self.code)

    def __repr__(self) -> str:
        return f"Skipped({self.code!r})"


skipped = Skipped


# --- the identity service ----------------------------------------------------------------------------------------

CREDENTIALS = {
    "grant_type": "client_credentials",
    "client_id": SETTINGS.client_id,
    "client_secret": SETTINGS.client_secret,
}


async def test_a_token_comes_for_client_credentials_in_the_query_or_a_form(rest: Rest) -> None:
    status, by_query = await rest.identity("GET", **CREDENTIALS)
    assert status == 200
    assert by_query["access_token"] == rest.token
    assert by_query["token_type"] == "bearer"
    assert isinstance(by_query["scope"], str)
    assert 3590 <= by_query["expires_in"] <= 3600
    status, by_form = await rest.identity("POST", **CREDENTIALS)
    assert status == 200
    assert by_form["access_token"] == rest.token  # asked again while it lives: the same token
    assert (await rest.admin("stats"))["tokens_issued"] == 1


@pytest.mark.parametrize(
    ("values", "status", "error"),
    [
        ({**CREDENTIALS, "client_secret": "wrong"}, 401, "unauthorized"),
        ({**CREDENTIALS, "client_id": "someone-else"}, 401, "unauthorized"),
        ({"client_id": SETTINGS.client_id, "client_secret": SETTINGS.client_secret}, 400, "unsupported_grant_type"),
        ({**CREDENTIALS, "grant_type": "password"}, 400, "unsupported_grant_type"),
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_wrong_credentials_get_no_token(
    rest: Rest, method: str, values: dict[str, str], status: int, error: str
) -> None:
    got, reply = await rest.identity(method, **values)
    assert (got, reply["error"]) == (status, error)
    assert "access_token" not in reply


def test_a_token_lives_its_ttl_and_once_expired_stays_expired() -> None:
    now = [100.0]
    issuer = TokenIssuer(lambda: now[0])
    token, lifetime = issuer.token(3600)
    assert (lifetime, issuer.check(token, 3600)) == (3600, None)
    now[0] += 600
    assert issuer.token(3600) == (token, 3000)  # asked again while it lives: the same, with what it has left
    assert issuer.check(token, 60) == "602"  # Marketo ended it early
    assert issuer.check(token, 3600) == "602"  # and raising the lifetime again does not bring it back
    renewed, _ = issuer.token(3600)
    assert renewed != token
    assert (issuer.check(renewed, 3600), issuer.check("forged", 3600), issuer.check(None, 3600)) == (None, "601", "601")
    now[0] += 3600
    assert issuer.check(renewed, 3600) == "602"
    issuer.reset()
    assert issuer.check(renewed, 3600) == "601"
    assert issuer.issued == 2


# --- the Bearer token --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Basic ZGVtbzpkZW1v"},
    ],
)
async def test_a_call_without_a_valid_token_is_601_with_http_200(rest: Rest, headers: dict[str, str]) -> None:
    assert await rest.error("GET", "/rest/v1/leads/describe.json", headers=headers) == "601"
    stats = await rest.admin("stats")
    assert (stats["rejected"]["601"], stats["quota_used"]) == (1, 0)  # not counted against the quota


async def test_the_token_goes_in_the_header_not_the_query(rest: Rest) -> None:
    # SIMULATOR'S CHOICE: Adobe is removing the `access_token` parameter (authentication.md); the pipeline never uses it.
    code = await rest.error("GET", "/rest/v1/leads/describe.json", headers={}, query={"access_token": rest.token})
    assert code == "601"


async def test_an_expired_token_is_602_and_a_new_one_works(rest: Rest) -> None:
    await rest.admin("config", {"token_ttl_s": 0})
    assert await rest.error("GET", "/rest/v1/leads/describe.json") == "602"
    await rest.admin("config", {"token_ttl_s": 3600})
    _, reply = await rest.identity("POST", **CREDENTIALS)
    assert reply["access_token"] != rest.token
    rest.token = reply["access_token"]
    assert await rest.ok("GET", "/rest/v1/leads/describe.json")
    stats = await rest.admin("stats")
    assert (stats["rejected"]["602"], stats["quota_used"], stats["tokens_issued"]) == (1, 1, 2)


# --- Sync Leads --------------------------------------------------------------------------------------------------


async def test_sync_leads_creates_then_updates_by_email(rest: Rest) -> None:
    created = await rest.sync([{"email": "a@x.com", "firstName": "Ada"}, {"email": "b@x.com"}])
    assert [entry["status"] for entry in created] == ["created", "created"]
    again = await rest.sync(
        [{"email": "B@X.com ", "lastName": "Lee"}, {"email": "a@x.com", "firstName": None}],
        action="createOrUpdate",
        lookupField="email",
    )
    assert again == [{"id": created[1]["id"], "status": "updated"}, {"id": created[0]["id"], "status": "updated"}]
    leads = await rest.leads()
    assert leads[created[0]["id"]]["attributes"] == {"FirstName": ""}  # stored under SOAP names; null clears
    assert leads[created[1]["id"]]["attributes"] == {"LastName": "Lee"}


async def test_each_record_of_a_call_succeeds_or_is_skipped_alone(rest: Rest) -> None:
    [existing] = await rest.sync([{"email": "a@x.com"}])
    result = await rest.sync(
        [
            {"email": "new@x.com"},
            {"id": existing["id"], "email": "a@x.com"},  # id only goes with updateOnly
            {"firstName": "no key"},  # the lookup field is missing
            {"email": "c@x.com", "colour": "red"},  # no such field
            {"email": "d@x.com", "createdAt": "2026-01-01"},  # read only
            {"email": "é@x.com"},  # email must be ASCII
            {"email": "e@x.com", "firstName": {"a": 1}},  # not a value
            "not an object",
        ]
    )
    assert result[0]["status"] == "created"
    assert result[1:] == [
        skipped("1003"),
        skipped("1003"),
        skipped("1006"),
        skipped("1003"),
        skipped("1003"),
        skipped("1001"),
        skipped("1003"),
    ]
    assert len(await rest.leads()) == 2


async def test_update_only_updates_by_id_and_skips_a_lead_not_found(rest: Rest) -> None:
    [lead] = await rest.sync([{"email": "a@x.com"}])
    result = await rest.sync(
        [{"id": lead["id"], "firstName": "Ada"}, {"id": 999}, {"id": "1"}], action="updateOnly", lookupField="id"
    )
    assert result == [{"id": lead["id"], "status": "updated"}, skipped("1004"), skipped("1004")]
    assert (await rest.leads())[lead["id"]]["attributes"] == {"FirstName": "Ada"}


async def test_create_only_skips_a_lead_that_exists(rest: Rest) -> None:
    await rest.sync([{"email": "a@x.com"}])
    result = await rest.sync([{"email": "A@x.com"}, {"email": "b@x.com"}], action="createOnly", lookupField="email")
    assert result[0] == skipped("1005")
    assert result[1]["status"] == "created"


async def test_duplicates_are_made_only_when_asked_and_then_match_no_single_lead(rest: Rest) -> None:
    first = await rest.sync([{"email": "dup@x.com"}], action="createDuplicate")
    second = await rest.sync([{"email": "dup@x.com"}], action="createDuplicate")
    assert first[0]["status"] == second[0]["status"] == "created"
    assert first[0]["id"] != second[0]["id"]
    assert await rest.sync([{"email": "dup@x.com", "firstName": "x"}]) == [skipped("1007")]
    assert await rest.sync([{"email": "dup@x.com"}], action="updateOnly", lookupField="email") == [skipped("1007")]
    assert await rest.sync([{"email": "dup@x.com"}], action="createOnly", lookupField="email") == [skipped("1005")]
    assert len(await rest.leads()) == 2


async def test_a_custom_dedupe_field_finds_a_lead(rest: Rest) -> None:
    [created] = await rest.sync([{FSP_FIELD: "SF-1", "email": "a@x.com"}], lookupField=FSP_FIELD)
    [updated] = await rest.sync([{FSP_FIELD: "SF-1", "firstName": "Ada"}], lookupField=FSP_FIELD)
    assert (created["status"], updated) == ("created", {"id": created["id"], "status": "updated"})
    assert await rest.sync([{FSP_FIELD: ""}], lookupField=FSP_FIELD) == [skipped("1003")]


@pytest.mark.parametrize(("lookup", "code"), [("colour", "1006"), ("firstName", "1011"), (7, "1006")])
async def test_a_lookup_field_marketo_cannot_look_up_by_refuses_the_call(rest: Rest, lookup: Any, code: str) -> None:
    body = {"lookupField": lookup, "input": [{"email": "a@x.com"}]}
    assert await rest.error("POST", "/rest/v1/leads.json", json=body) == code
    assert len(await rest.leads()) == 0


async def test_a_partition_places_new_leads_and_guards_existing_ones(rest: Rest) -> None:
    [europe] = await rest.sync([{"email": "eu@x.com"}], partitionName="Europe")
    [default] = await rest.sync([{"email": "us@x.com"}])
    leads = await rest.leads()
    assert (leads[europe["id"]]["partition"], leads[europe["id"]]["workspace"]) == ("Europe", "EMEA")
    assert leads[default["id"]]["partition"] == "Default"
    assert await rest.sync([{"email": "us@x.com"}], partitionName="Europe") == [skipped("1010")]
    body = {"partitionName": "Mars", "input": [{"email": "m@x.com"}]}
    assert await rest.error("POST", "/rest/v1/leads.json", json=body) == "1008"
    # partitionName works only with createOnly and createOrUpdate: ignored otherwise
    [dup] = await rest.sync([{"email": "d@x.com"}], action="createDuplicate", partitionName="Europe")
    assert (await rest.leads())[dup["id"]]["partition"] == "Default"


@pytest.mark.parametrize(
    ("content_type", "body", "code"),
    [
        ("text/plain", b'{"input": [{"email": "a@x.com"}]}', "612"),
        ("application/x-www-form-urlencoded", b"input=%5B%5D", "612"),
        ("application/json", b"{not json", "609"),
        ("application/json", b"[1, 2]", "609"),
        ("application/json", b'{"input": []}', "701"),
        ("application/json", b'{"input": {"email": "a@x.com"}}', "701"),
        ("application/json", b'{"action": "upsert", "input": [{"email": "a@x.com"}]}', "1003"),
    ],
)
async def test_a_malformed_sync_is_refused_as_a_whole(rest: Rest, content_type: str, body: bytes, code: str) -> None:
    headers = {"Authorization": f"Bearer {rest.token}", "Content-Type": content_type}
    assert await rest.error("POST", "/rest/v1/leads.json", body=body, headers=headers) == code
    assert len(await rest.leads()) == 0


DEEP = b"[" * 1000 + b"]" * 1000  # as deep as JSON readers go: no repr() of it can be made


@pytest.mark.parametrize(
    ("path", "name", "code"),
    [
        ("/rest/v1/leads.json", "action", "1003"),
        ("/rest/v1/leads.json", "lookupField", "1006"),
        ("/rest/v1/leads.json", "partitionName", "1008"),
        ("/rest/v1/opportunities.json", "action", "1003"),
        ("/rest/v1/opportunities.json", "dedupeBy", "1003"),
        ("/rest/v1/opportunities/roles.json", "action", "1003"),
    ],
)
@pytest.mark.parametrize("value", [b'["createOnly"]', b'{"name": "email"}', b"7", DEEP])
async def test_a_parameter_that_is_not_text_is_refused_as_marketo_refuses(
    rest: Rest, path: str, name: str, code: str, value: bytes
) -> None:
    body = b'{"input": [{"email": "a@x.com"}], "' + name.encode() + b'": ' + value + b"}"
    headers = {"Authorization": f"Bearer {rest.token}", "Content-Type": "application/json"}
    assert await rest.error("POST", path, body=body, headers=headers) == code


async def test_sync_leads_takes_300_records_when_marketos_limits_are_on(rest: Rest) -> None:
    await rest.admin("config", {"max_leads_per_call": 300})
    body = {"input": [{"email": f"{n}@x.com"} for n in range(301)]}
    assert await rest.error("POST", "/rest/v1/leads.json", json=body) == "1003"
    assert len(await rest.sync(body["input"][:300])) == 300


async def test_sync_leads_takes_post_only(rest: Rest) -> None:
    assert await rest.error("PUT", "/rest/v1/leads.json", json={"input": [{"email": "a@x.com"}]}) == "605"


# --- Get Leads, Describe, Associate ------------------------------------------------------------------------------


async def test_get_leads_by_id_with_get_or_with_post_and_method_get(rest: Rest) -> None:
    created = await rest.sync(
        [{"email": "a@x.com", "firstName": "Ada", "numberOfEmployees": "12"}, {"email": "b@x.com"}]
    )
    ids = ",".join(str(entry["id"]) for entry in created) + ",999,x"
    query = {"filterType": "id", "filterValues": ids, "fields": "email,firstName,numberOfEmployees"}
    by_get = await rest.ok("GET", "/rest/v1/leads.json", query=query)
    by_post = await rest.ok("POST", "/rest/v1/leads.json", query={"_method": "GET"}, form=query)
    expected = [
        {"id": created[0]["id"], "email": "a@x.com", "firstName": "Ada", "numberOfEmployees": 12},
        {"id": created[1]["id"], "email": "b@x.com"},
    ]
    assert by_get == by_post == expected
    assert len(await rest.leads()) == 2  # the POST read, it did not sync


async def test_get_leads_by_email_gives_the_default_fields(rest: Rest) -> None:
    [created] = await rest.sync([{"email": "a@x.com", "firstName": "Ada", "company": "Engines"}])
    result = await rest.ok("GET", "/rest/v1/leads.json", query={"filterType": "email", "filterValues": "A@x.com"})
    assert result == [{"id": created["id"], "email": "a@x.com", "firstName": "Ada"}]
    assert await rest.ok("GET", "/rest/v1/leads.json", query={"filterType": "email", "filterValues": "no@x.com"}) == []


@pytest.mark.parametrize(
    ("query", "code"),
    [({"filterType": "firstName", "filterValues": "Ada"}, "1011"), ({"filterType": "id"}, "1003"), ({}, "1003")],
)
async def test_get_leads_needs_a_filter_marketo_supports(rest: Rest, query: dict[str, str], code: str) -> None:
    assert await rest.error("GET", "/rest/v1/leads.json", query=query) == code


async def test_describe_lists_each_fields_rest_and_soap_names(rest: Rest) -> None:
    fields = {f["rest"]["name"]: f for f in await rest.ok("GET", "/rest/v1/leads/describe.json")}
    assert fields["firstName"]["soap"] == {"name": "FirstName", "readOnly": False}
    assert fields["dateOfBirth"]["soap"]["name"] == "DateofBirth"
    assert fields["id"]["rest"]["readOnly"] is True
    assert "soap" not in fields["createdAt"]  # a field REST has and SOAP does not
    assert fields["Seq"]["soap"]["name"] == "Seq"  # the instance's custom field
    assert fields[FSP_FIELD]["soap"]["name"] == FSP_FIELD
    assert all({"id", "displayName", "dataType"} <= f.keys() for f in fields.values())


async def test_describe_lists_only_the_fields_the_instance_has(rest: Rest) -> None:
    await rest.admin("config", {"lead_fields": ["FirstName"]})
    fields = {f["rest"]["name"] for f in await rest.ok("GET", "/rest/v1/leads/describe.json")}
    assert {"id", "email", "firstName", FSP_FIELD, "Seq", "createdAt"} <= fields
    assert "lastName" not in fields
    assert await rest.sync([{"email": "a@x.com", "lastName": "L"}]) == [skipped("1006")]


async def test_associate_lead_attaches_a_munchkin_cookie(rest: Rest) -> None:
    [lead] = await rest.sync([{"email": "a@x.com"}])
    path = f"/rest/v1/leads/{lead['id']}/associate.json"
    assert await rest.ok("POST", path, query={"cookie": COOKIE}) == []
    assert (await rest.leads())[lead["id"]]["cookies"] == [COOKIE]
    assert await rest.error("POST", path, query={"cookie": "not-a-cookie"}) == "1012"
    assert await rest.error("POST", path) == "1012"
    assert await rest.error("POST", "/rest/v1/leads/999/associate.json", query={"cookie": COOKIE}) == "1004"


# --- opportunities, roles, programs ------------------------------------------------------------------------------


def opportunity(external: str, **fields: Any) -> Json:
    return {"externalOpportunityId": external, "name": f"Deal {external}", **fields}


async def test_opportunities_are_deduplicated_by_their_external_id(rest: Rest) -> None:
    path = "/rest/v1/opportunities.json"
    body = {"action": "createOrUpdate", "dedupeBy": "dedupeFields"}
    first = await rest.ok("POST", path, json={**body, "input": [opportunity("O-1", amount=10), opportunity("O-2")]})
    assert [(e["seq"], e["status"]) for e in first] == [(0, "created"), (1, "created")]
    again = await rest.ok("POST", path, json={**body, "input": [opportunity("O-2", externalCompanyId="C-1")]})
    assert again == [{"seq": 0, "status": "updated", "marketoGUID": first[1]["marketoGUID"]}]
    objects = {o["externalKey"]["value"]: o for o in (await rest.admin("mobjects"))["mobjects"]}
    assert objects["O-1"]["attribs"] == {"Name": "Deal O-1", "Amount": "10"}
    assert objects["O-2"]["associations"] == [
        {"mObjType": "Company", "id": None, "externalKey": {"name": "externalCompanyId", "value": "C-1"}}
    ]
    result = await rest.ok(
        "POST",
        path,
        json={
            "action": "createOnly",
            "input": [opportunity("O-1"), {"externalOpportunityId": "O-3"}, opportunity("O-4", colour="red"), {}],
        },
    )
    assert result == [skipped("1017"), skipped("1003"), skipped("1006"), skipped("1003")]
    assert await rest.ok("POST", path, json={"action": "updateOnly", "input": [opportunity("O-9")]}) == [
        skipped("1013")
    ]
    wrong = {"action": "createOrUpdate", "dedupeBy": "idField", "input": [opportunity("O-1")]}
    assert await rest.error("POST", path, json=wrong) == "1003"


async def test_roles_are_keyed_by_opportunity_lead_and_role(rest: Rest) -> None:
    [lead] = await rest.sync([{"email": "a@x.com"}])
    await rest.ok("POST", "/rest/v1/opportunities.json", json={"input": [opportunity("O-1")]})
    path = "/rest/v1/opportunities/roles.json"

    def role(external: str = "O-1", lead_id: int = lead["id"], name: str = "Buyer", **fields: Any) -> Json:
        return {"externalOpportunityId": external, "leadId": lead_id, "role": name, **fields}

    first = await rest.ok("POST", path, json={"input": [role(isPrimary=True), role(name="Champion")]})
    assert [e["status"] for e in first] == ["created", "created"]
    again = await rest.ok("POST", path, json={"input": [role(isPrimary=False)]})
    assert again == [{"seq": 0, "status": "updated", "marketoGUID": first[0]["marketoGUID"]}]
    result = await rest.ok(
        "POST",
        path,
        json={"input": [role(external="O-9"), role(lead_id=999), {"leadId": lead["id"]}, role(colour="x")]},
    )
    assert result == [skipped("1013"), skipped("1004"), skipped("1003"), skipped("1006")]
    assert await rest.ok("POST", path, json={"action": "createOnly", "input": [role()]}) == [skipped("1017")]


async def program_costs(rest: Rest, program_id: int) -> list[Json]:
    [program] = [o for o in (await rest.admin("mobjects"))["mobjects"] if o["id"] == program_id]
    return [t["attribs"] for t in program["typeAttribs"] if t["attrType"] == "Cost"]


async def test_program_costs_are_appended_or_replaced_when_asked(rest: Rest) -> None:
    path = "/rest/asset/v1/program/1042.json"
    [first] = await rest.ok("POST", path, form={"costs": '[{"startDate": "2026-01-01", "cost": 200, "note": "Ads"}]'})
    assert (first["id"], first["costs"]) == (1042, [{"startDate": "2026-01-01", "cost": 200, "note": "Ads"}])
    [second] = await rest.ok("POST", path, form={"costs": '[{"startDate": "2026-02-01", "cost": 12.5}]', "name": "N"})
    assert second["costs"] == [
        {"startDate": "2026-01-01", "cost": 200, "note": "Ads"},
        {"startDate": "2026-02-01", "cost": 12.5},
    ]
    assert second["name"] == "N"
    form = {"costs": '[{"startDate": "2026-03-01", "cost": 7}]', "costsDestructiveUpdate": "true"}
    [third] = await rest.ok("POST", path, form=form)
    assert third["costs"] == [{"startDate": "2026-03-01", "cost": 7}]
    assert [c["Month"] for c in await program_costs(rest, 1042)] == ["2026-03"]
    [cleared] = await rest.ok("POST", path, form={"costsDestructiveUpdate": "true"})
    assert cleared["costs"] is None


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"costs": "[{"}, "609"),
        ({"costs": '{"startDate": "2026-01-01", "cost": 1}'}, "1003"),
        ({"costs": '[{"startDate": "January", "cost": 1}]'}, "1003"),
        ({"costs": '[{"startDate": "2026-01-01", "cost": "1"}]'}, "1003"),
        ({"tags": '[{"tagType": "Region", "tagValue": "Mars"}]'}, "709"),
        ({"tags": '[{"tagType": "Planet", "tagValue": "EMEA"}]'}, "709"),
        ({"tags": '[{"tagType": "Region"}]'}, "1003"),
    ],
)
async def test_a_program_update_marketo_cannot_make_changes_nothing(
    rest: Rest, form: dict[str, str], code: str
) -> None:
    path = "/rest/asset/v1/program/1042.json"
    await rest.ok("POST", path, form={"costs": '[{"startDate": "2026-01-01", "cost": 1}]'})
    assert await rest.error("POST", path, form={**form, "costsDestructiveUpdate": "true"}) == code
    assert [c["Month"] for c in await program_costs(rest, 1042)] == ["2026-01"]


async def test_program_tags_must_exist_and_are_set_by_type(rest: Rest) -> None:
    path = "/rest/asset/v1/program/7.json"
    [program] = await rest.ok("POST", path, form={"tags": '[{"tagType": "Region", "tagValue": "EMEA"}]'})
    assert program["tags"] == [{"tagType": "Region", "tagValue": "EMEA"}]
    [program] = await rest.ok("POST", path, form={"tags": '[{"tagType": "Region", "tagValue": "APAC"}]'})
    assert program["tags"] == [{"tagType": "Region", "tagValue": "APAC"}]


async def test_a_program_is_updated_with_a_form_and_must_exist(rest: Rest) -> None:
    assert await rest.error("POST", "/rest/asset/v1/program/7.json", json={"name": "N"}) == "612"
    await rest.admin("config", {"programs": [7]})
    assert await rest.error("POST", "/rest/asset/v1/program/8.json", form={"name": "N"}) == "702"
    assert (await rest.ok("POST", "/rest/asset/v1/program/7.json", form={"name": "N"}))[0]["name"] == "N"


# --- limits ------------------------------------------------------------------------------------------------------


async def test_a_body_over_the_limit_is_http_413(rest: Rest) -> None:
    await rest.admin("config", {"rest_max_body_bytes": 1000})
    status, _ = await rest.send(
        "POST", "/rest/v1/leads.json", json={"input": [{"email": "a@x.com", "notes": "n" * 1000}]}
    )
    assert status == 413
    assert len(await rest.sync([{"email": "a@x.com", "notes": "n" * 100}])) == 1
    stats = await rest.admin("stats")
    assert (stats["rejected"]["413"], stats["quota_used"]) == (1, 1)


async def test_the_101st_call_in_20_seconds_is_606(rest: Rest) -> None:
    await rest.admin("config", {"calls_per_20s": 100})
    for _ in range(100):
        await rest.ok("GET", "/rest/v1/leads/describe.json")
    assert await rest.error("GET", "/rest/v1/leads/describe.json") == "606"
    assert await rest.error("POST", "/rest/v1/leads.json", json={"input": [{"email": "a@x.com"}]}) == "606"
    stats = await rest.admin("stats")
    # 606 is not among the codes Adobe says are not counted: the refused calls count against the quota too.
    assert (stats["rejected"]["606"], stats["quota_used"], stats["leads"]) == (2, 102, 0)


async def test_the_daily_quota_is_607(rest: Rest) -> None:
    await rest.admin("config", {"daily_quota": 2})
    await rest.ok("GET", "/rest/v1/leads/describe.json")
    await rest.sync([{"email": "a@x.com"}])
    assert await rest.error("GET", "/rest/v1/leads/describe.json") == "607"


@pytest.mark.parametrize(
    ("code", "counted"), [("604", False), ("608", False), ("611", False), ("606", True), ("615", True)]
)
async def test_an_injected_fault_is_counted_as_marketo_counts_it(rest: Rest, code: str, counted: bool) -> None:  # noqa: FBT001
    await rest.admin("config", {"faults": [{"kind": "fault", "rate": 1, "code": code, "operation": "describeLeads"}]})
    assert await rest.error("GET", "/rest/v1/leads/describe.json") == code
    assert (await rest.admin("stats"))["quota_used"] == int(counted)


# --- one store for both APIs -------------------------------------------------------------------------------------


async def test_a_lead_created_over_soap_is_found_and_updated_over_rest(rest: Rest) -> None:
    soap = SimClient(rest.server.base_url, rest.session, Credentials(SETTINGS.user_id, SETTINGS.secret_key))
    lead = Lead(email="ada@x.com", attributes=(("FirstName", "Ada"), ("Seq", "1")))
    status, _ = await soap.call(sync_lead_request(lead, return_lead=False))
    assert status == 200
    status, _ = await soap.call(sync_multiple_leads_request([Lead(email="bob@x.com")], dedup_enabled=True))
    assert status == 200
    query = {"filterType": "email", "filterValues": "ada@x.com,bob@x.com", "fields": "email,firstName,Seq"}
    ada, bob = await rest.ok("GET", "/rest/v1/leads.json", query=query)
    assert (ada["email"], ada["firstName"], ada["Seq"], bob["email"]) == ("ada@x.com", "Ada", "1", "bob@x.com")
    result = await rest.sync([{"id": ada["id"], "lastName": "Lovelace"}], action="updateOnly", lookupField="id")
    assert result == [{"id": ada["id"], "status": "updated"}]
    assert await rest.sync([{"email": "bob@x.com"}], action="createOnly", lookupField="email") == [skipped("1005")]
    leads = await rest.leads()
    assert leads[ada["id"]]["attributes"] == {"FirstName": "Ada", "Seq": "1", "LastName": "Lovelace"}


async def test_stats_count_calls_and_records_by_rest_operation(rest: Rest) -> None:
    await rest.sync([{"email": "a@x.com"}, {"email": "b@x.com"}, {"email": "c@x.com"}])
    [lead, *_] = await rest.sync([{"email": "a@x.com"}])
    await rest.ok("GET", "/rest/v1/leads/describe.json")
    await rest.ok("GET", "/rest/v1/leads.json", query={"filterType": "id", "filterValues": str(lead["id"])})
    await rest.ok("POST", f"/rest/v1/leads/{lead['id']}/associate.json", query={"cookie": COOKIE})
    await rest.ok("POST", "/rest/v1/opportunities.json", json={"input": [opportunity("O-1"), opportunity("O-2")]})
    await rest.ok("POST", "/rest/asset/v1/program/5.json", form={"name": "P"})
    await rest.error("GET", "/rest/v1/leads/describe.json", headers={})
    stats = await rest.admin("stats")
    assert {op: n for op, n in stats["calls"].items() if n} == {
        "syncLeads": 2,
        "describeLeads": 2,
        "getLeads": 1,
        "associateLead": 1,
        "syncOpportunities": 1,
        "updateProgram": 1,
    }
    assert {op: n for op, n in stats["records"].items() if n} == {
        "syncLeads": 4,
        "associateLead": 1,
        "syncOpportunities": 2,
        "updateProgram": 1,
    }
    assert stats["quota_used"] == 7
    calls = (await rest.admin("calls"))["calls"]
    assert [c["operation"] for c in calls][:2] == ["syncLeads", "syncLeads"]
    assert calls[0]["identities"] == ["id:1", "email:a@x.com", "id:2", "email:b@x.com", "id:3", "email:c@x.com"]
