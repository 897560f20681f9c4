"""API keys narrower than their user: a scope (read, respond, full), one team, an expiry.
A key used beyond its scope is refused with 403 naming the scope it needs; an expired key
is refused like a revoked one (401); the OpenAPI document says each operation's scope."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import Cast, Person, World, make_team
from tocsin.auth.models import KeyScope
from tocsin.clock import FrozenClock
from tocsin.teams.models import TeamRole


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def make_key(client: AsyncClient, person: Person, **body: Any) -> dict[str, Any]:
    response = await client.post(
        f"/api/v1/users/{person.id}/api-keys", headers=person.headers, json=body
    )
    assert response.status_code == 201, response.text
    issued: dict[str, Any] = response.json()
    return issued


async def open_incident(client: AsyncClient, world: World) -> str:
    response = await client.post(
        world.integration.url, json={"title": "Down", "routing_key": "payments-api"}
    )
    assert response.status_code == 202, response.text
    incident_id: str = response.json()["incident_id"]
    return incident_id


async def test_keys_made_without_a_scope_are_full_and_say_so(
    client: AsyncClient, cast: Cast
) -> None:
    issued = await make_key(client, cast.bob, name="ci")
    assert (issued["scope"], issued["team_id"], issued["expires_at"]) == ("full", None, None)
    listed = (
        await client.get(f"/api/v1/users/{cast.bob.id}/api-keys", headers=cast.bob.headers)
    ).json()["items"]
    # The key the cast was given before scopes existed works with everything.
    assert {k["scope"] for k in listed} == {"full"}


async def test_a_read_key_reads_but_may_not_acknowledge_or_configure(
    client: AsyncClient, world: World
) -> None:
    bob = world.cast.bob
    incident_id = await open_incident(client, world)
    key = bearer((await make_key(client, bob, scope="read"))["key"])
    assert (await client.get(f"/api/v1/incidents/{incident_id}", headers=key)).status_code == 200
    ack = await client.post(f"/api/v1/incidents/{incident_id}/acknowledge", headers=key, json={})
    assert ack.status_code == 403
    assert "'respond'" in ack.json()["detail"]
    service = await client.post(
        "/api/v1/services",
        headers=key,
        json={"name": "Ledger", "routing_key": "ledger", "team_id": str(world.cast.payments)},
    )
    assert service.status_code == 403
    assert "'full'" in service.json()["detail"]
    detail = (await client.get(f"/api/v1/incidents/{incident_id}", headers=key)).json()
    assert detail["status"] == "open"


async def test_a_respond_key_acts_on_incidents_but_may_not_configure(
    client: AsyncClient, world: World
) -> None:
    bob = world.cast.bob
    incident_id = await open_incident(client, world)
    key = bearer((await make_key(client, bob, scope="respond"))["key"])
    ack = await client.post(
        f"/api/v1/incidents/{incident_id}/acknowledge", headers=key, json={"note": "on it"}
    )
    assert ack.status_code == 200, ack.text
    note = await client.post(
        f"/api/v1/incidents/{incident_id}/notes", headers=key, json={"note": "disk full"}
    )
    assert note.status_code == 201, note.text
    contact = await client.post(
        f"/api/v1/users/{bob.id}/contact-methods",
        headers=key,
        json={"kind": "email", "name": "work", "address": "bob@example.com"},
    )
    assert contact.status_code == 403
    assert "needs scope 'full'" in contact.json()["detail"]


async def test_an_expired_key_is_refused_with_401(
    client: AsyncClient, cast: Cast, clock: FrozenClock
) -> None:
    expires = clock.now() + timedelta(hours=1)
    key = bearer((await make_key(client, cast.bob, expires_at=expires.isoformat()))["key"])
    assert (await client.get("/api/v1/users/me", headers=key)).status_code == 200
    clock.advance(timedelta(hours=1))
    refused = await client.get("/api/v1/users/me", headers=key)
    assert refused.status_code == 401
    assert "expired" in refused.json()["detail"]


async def test_an_expiry_in_the_past_or_a_bad_scope_is_refused_naming_the_field(
    client: AsyncClient, cast: Cast, clock: FrozenClock
) -> None:
    url = f"/api/v1/users/{cast.bob.id}/api-keys"
    past = (clock.now() - timedelta(minutes=1)).isoformat()
    for body, field in (
        ({"expires_at": past}, "expires_at"),
        ({"expires_at": "2030-01-01T00:00:00"}, "expires_at"),  # no zone
        ({"scope": "admin"}, "scope"),
        ({"team_id": str(uuid.uuid4())}, "team_id"),
    ):
        response = await client.post(url, headers=cast.bob.headers, json=body)
        assert response.status_code == 422, body
        assert any(err["loc"][-1] == field for err in response.json()["detail"]), body
    keys = (await client.get(url, headers=cast.bob.headers)).json()["items"]
    assert len(keys) == 1  # only the cast's own key: nothing half-made


async def test_a_key_restricted_to_a_team_sees_and_touches_only_that_team(
    client: AsyncClient, world: World, engine: AsyncEngine, clock: FrozenClock
) -> None:
    cast = world.cast
    # Bob also answers for Billing; his Payments-only key must not reach it.
    billing = await make_team(
        engine, clock.now(), name="Billing", members={cast.bob.id: TeamRole.MANAGER}
    )
    incident_id = await open_incident(client, world)
    key = bearer((await make_key(client, cast.bob, team_id=str(cast.payments)))["key"])
    listed = (await client.get("/api/v1/incidents", headers=key)).json()["items"]
    assert [i["id"] for i in listed] == [incident_id]
    ack = await client.post(f"/api/v1/incidents/{incident_id}/acknowledge", headers=key, json={})
    assert ack.status_code == 200
    other = await client.post(
        "/api/v1/services",
        headers=key,
        json={"name": "Invoices", "routing_key": "invoices", "team_id": str(billing)},
    )
    assert other.status_code == 403
    assert (
        await client.get(f"/api/v1/teams/{billing}", headers=cast.bob.headers)
    ).status_code == 200


async def test_an_admins_team_key_has_no_administrator_rights(
    client: AsyncClient, world: World, engine: AsyncEngine, clock: FrozenClock
) -> None:
    cast = world.cast
    await make_team(engine, clock.now(), name="Platform", members={cast.admin.id: TeamRole.MANAGER})
    platform = (await client.get("/api/v1/teams", headers=cast.admin.headers)).json()["items"]
    platform_id = next(t["id"] for t in platform if t["name"] == "Platform")
    key = bearer((await make_key(client, cast.admin, team_id=platform_id))["key"])
    made = await client.post(
        "/api/v1/users", headers=key, json={"email": "eve@example.com", "name": "Eve"}
    )
    assert made.status_code == 403
    assert "restricted to one team" in made.json()["detail"]
    incidents = (await client.get("/api/v1/incidents", headers=key)).json()["items"]
    assert incidents == []  # Payments' incidents are beyond a Platform key


async def test_a_team_key_may_not_mint_a_key_beyond_its_team(
    client: AsyncClient, cast: Cast
) -> None:
    key = bearer((await make_key(client, cast.bob, team_id=str(cast.payments)))["key"])
    response = await client.post(f"/api/v1/users/{cast.bob.id}/api-keys", headers=key, json={})
    assert response.status_code == 403


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)


async def test_every_route_refuses_a_key_below_its_scope_naming_the_scope(
    app: FastAPI, client: AsyncClient, cast: Cast
) -> None:
    keys = {
        scope: bearer((await make_key(client, cast.admin, scope=scope.value))["key"])
        for scope in (KeyScope.READ, KeyScope.RESPOND)
    }
    checked: dict[KeyScope, int] = {scope: 0 for scope in KeyScope}
    for path, item in app.openapi()["paths"].items():
        for method, operation in item.items():
            if "security" not in operation:
                continue  # needs no key at all
            needed = KeyScope(operation["x-required-scope"])
            assert operation["security"] == [{"apiKey": [needed.value]}]
            assert f"API key scope: `{needed.value}`" in operation["description"]
            for granted, key in keys.items():
                response = await client.request(method, _concrete(path), headers=key, json={})
                body = response.json() if response.content else {}
                detail = str(body.get("detail", "")) if isinstance(body, dict) else ""
                if granted.covers(needed):
                    assert "needs scope" not in detail, (method, path)
                else:
                    assert response.status_code == 403, (method, path, response.text)
                    assert f"needs scope '{needed.value}'" in detail, (method, path)
            checked[needed] += 1
    assert checked[KeyScope.READ] > 20
    assert checked[KeyScope.RESPOND] >= 6  # acknowledge, resolve, close, notes...
    assert checked[KeyScope.FULL] > 20
