"""The audit log: each kind of configuration change is recorded with who made it, through
which credential, and the changed fields before and after; secrets never; admins only."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import Cast, Person, World
from tocsin.clock import FrozenClock

AUDIT = "/api/v1/audit"


async def audit(client: AsyncClient, cast: Cast, **params: Any) -> list[dict[str, Any]]:
    response = await client.get(AUDIT, headers=cast.admin.headers, params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def entries_for(
    client: AsyncClient, cast: Cast, object_type: str, object_id: str | None = None
) -> list[dict[str, Any]]:
    params = {"object_type": object_type, "limit": 100}
    if object_id is not None:
        params["object_id"] = object_id
    return await audit(client, cast, **params)


async def ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    if response.status_code == 204:
        return {}
    body: dict[str, Any] = response.json()
    return body


def key_of(person: Person) -> str:
    return person.key


async def test_a_service_change_names_who_when_through_which_key_and_what_changed(
    client: AsyncClient, world: World, clock: FrozenClock
) -> None:
    cast = world.cast
    clock.advance(timedelta(minutes=5))
    await ok(
        await client.patch(
            f"/api/v1/services/{world.service}",
            headers=cast.alice.headers,
            json={"name": "Payments gateway", "description": "card payments"},
        )
    )
    [entry] = await entries_for(client, cast, "services", str(world.service))
    assert entry["action"] == "changed"
    assert entry["actor_user_id"] == str(cast.alice.id)
    assert entry["actor_email"] == "alice@example.com"
    assert entry["via"] == "api_key"
    assert entry["via_id"] is not None
    assert entry["at"] == clock.now().isoformat().replace("+00:00", "Z")
    assert entry["team_id"] == str(cast.payments)
    assert entry["changes"] == {
        "name": {"before": "Payments API", "after": "Payments gateway"},
        "description": {"before": "", "after": "card payments"},
    }
    await ok(
        await client.delete(f"/api/v1/services/{world.service}", headers=cast.alice.headers), 204
    )
    newest = (await entries_for(client, cast, "services", str(world.service)))[0]
    assert newest["action"] == "deleted"
    assert newest["changes"]["routing_key"] == {"before": "payments-api", "after": None}


async def test_users_keys_and_passwords_are_recorded_without_secrets(
    client: AsyncClient, cast: Cast
) -> None:
    made = await ok(
        await client.post(
            "/api/v1/users",
            headers=cast.admin.headers,
            json={"email": "eve@example.com", "name": "Eve", "password": "correct horse 42"},
        ),
        201,
    )
    await ok(
        await client.patch(
            f"/api/v1/users/{made['id']}",
            headers=cast.admin.headers,
            json={"name": "Eve Ops", "password": "battery staple 43"},
        )
    )
    issued = await ok(
        await client.post(
            f"/api/v1/users/{cast.bob.id}/api-keys",
            headers=cast.bob.headers,
            json={"name": "ci", "scope": "read"},
        ),
        201,
    )
    await ok(
        await client.delete(
            f"/api/v1/users/{cast.bob.id}/api-keys/{issued['id']}", headers=cast.bob.headers
        ),
        204,
    )
    # One entry per object and request, however many times the request flushed it.
    created, changed = reversed(await entries_for(client, cast, "users", made["id"]))
    assert created["action"] == "created"
    assert created["changes"]["email"]["after"] == "eve@example.com"
    assert created["changes"]["password_hash"] == {"before": None, "after": "(secret)"}
    assert changed["changes"]["name"] == {"before": "Eve", "after": "Eve Ops"}
    assert changed["changes"]["password_hash"] == {"before": "(secret)", "after": "(secret)"}
    key_created, key_revoked = reversed(await entries_for(client, cast, "api_keys", issued["id"]))
    assert key_created["changes"]["scope"] == {"before": None, "after": "read"}
    assert key_created["changes"]["key_hash"]["after"] == "(secret)"
    assert key_revoked["changes"]["revoked_at"]["before"] is None
    everything = json.dumps(await audit(client, cast, limit=500))
    for secret in ("correct horse 42", "battery staple 43", issued["key"], issued["key"][3:]):
        assert secret not in everything
    assert "$argon2" not in everything


async def test_teams_members_and_tags_are_recorded(client: AsyncClient, cast: Cast) -> None:
    team = await ok(
        await client.post("/api/v1/teams", headers=cast.admin.headers, json={"name": "Storage"}),
        201,
    )
    members = f"/api/v1/teams/{team['id']}/members"
    await ok(
        await client.post(
            members,
            headers=cast.admin.headers,
            json={"user_id": str(cast.bob.id), "role": "responder"},
        ),
        201,
    )
    await ok(
        await client.patch(
            f"{members}/{cast.bob.id}", headers=cast.admin.headers, json={"role": "manager"}
        )
    )
    await ok(await client.delete(f"{members}/{cast.bob.id}", headers=cast.admin.headers), 204)
    [created] = await entries_for(client, cast, "teams", team["id"])
    assert created["changes"]["name"]["after"] == "Storage"
    membership = await entries_for(client, cast, "team_members", f"{team['id']}:{cast.bob.id}")
    assert [e["action"] for e in membership] == ["deleted", "changed", "created"]
    assert membership[1]["changes"] == {"role": {"before": "responder", "after": "manager"}}
    assert all(e["team_id"] == team["id"] for e in membership)


async def test_policies_schedules_and_overrides_are_recorded(
    client: AsyncClient, cast: Cast
) -> None:
    policy = await ok(
        await client.post(
            "/api/v1/escalation-policies",
            headers=cast.alice.headers,
            json={
                "team_id": str(cast.payments),
                "name": "Nights",
                "levels": [{"level_number": 1, "target_type": "entire_team"}],
            },
        ),
        201,
    )
    await ok(
        await client.patch(
            f"/api/v1/escalation-policies/{policy['id']}",
            headers=cast.alice.headers,
            json={"repeat_count": 3},
        )
    )
    schedule = await ok(
        await client.post(
            "/api/v1/schedules",
            headers=cast.alice.headers,
            json={
                "team_id": str(cast.payments),
                "name": "Primary",
                "time_zone": "Europe/Paris",
                "layers": [
                    {
                        "start": "2026-01-01T00:00:00Z",
                        "rotation": "weekly",
                        "handoff": "2026-02-23T09:00",
                        "participants": [{"user_ids": [str(cast.bob.id)]}],
                    }
                ],
            },
        ),
        201,
    )
    override = await ok(
        await client.post(
            f"/api/v1/schedules/{schedule['id']}/overrides",
            headers=cast.alice.headers,
            json={
                "user_ids": [str(cast.alice.id)],
                "start": "2026-04-07T14:00:00Z",
                "end": "2026-04-07T15:00:00Z",
            },
        ),
        201,
    )
    policy_entries = await entries_for(client, cast, "escalation_policies", policy["id"])
    assert [e["action"] for e in policy_entries] == ["changed", "created"]
    assert policy_entries[0]["changes"]["repeat_count"] == {"before": 1, "after": 3}
    assert await entries_for(client, cast, "escalation_levels")
    assert (await entries_for(client, cast, "schedules", schedule["id"]))[0]["action"] == "created"
    assert await entries_for(client, cast, "schedule_layers")
    [made] = await entries_for(client, cast, "schedule_overrides", override["id"])
    assert made["actor_user_id"] == str(cast.alice.id)
    assert made["changes"]["start"]["after"].startswith("2026-04-07T14:00:00")


async def test_integrations_contact_methods_and_rules_are_recorded_without_secrets(
    client: AsyncClient, world: World, engine: AsyncEngine
) -> None:
    cast = world.cast
    integration = await ok(
        await client.post(
            "/api/v1/integrations", headers=cast.admin.headers, json={"name": "Grafana"}
        ),
        201,
    )
    rotated = await ok(
        await client.post(
            f"/api/v1/integrations/{integration['id']}/rotate-key", headers=cast.admin.headers
        )
    )
    hook = "http://127.0.0.1:9/hooks/T0KEN-in-the-path?sig=abc"
    method = await ok(
        await client.post(
            f"/api/v1/users/{cast.bob.id}/contact-methods",
            headers=cast.bob.headers,
            json={"kind": "webhook", "name": "pager bridge", "address": hook},
        ),
        201,
    )
    async with engine.begin() as conn:  # as if Bob had typed the code the hook received
        await conn.execute(
            text("UPDATE contact_methods SET verified_at = created_at WHERE id = :id"),
            {"id": method["id"].replace("-", "") if "sqlite" in str(engine.url) else method["id"]},
        )
    rule = await ok(
        await client.post(
            f"/api/v1/users/{cast.bob.id}/notification-rules",
            headers=cast.bob.headers,
            json={"urgency": "high", "delay_minutes": 0, "contact_method_id": method["id"]},
        ),
        201,
    )
    await ok(
        await client.delete(
            f"/api/v1/users/{cast.bob.id}/notification-rules/{rule['id']}",
            headers=cast.bob.headers,
        ),
        204,
    )
    made, rotation = reversed(await entries_for(client, cast, "integrations", integration["id"]))
    assert made["changes"]["name"]["after"] == "Grafana"
    assert rotation["changes"]["key_hash"] == {"before": "(secret)", "after": "(secret)"}
    [contact] = await entries_for(client, cast, "contact_methods", method["id"])
    assert contact["changes"]["address"]["after"] == "http://127.0.0.1/…"
    assert contact["actor_user_id"] == str(cast.bob.id)
    rule_entries = await entries_for(client, cast, "notification_rules", rule["id"])
    assert [e["action"] for e in rule_entries] == ["deleted", "created"]
    everything = json.dumps(await audit(client, cast, limit=500))
    for secret in (integration["key"], rotated["key"], "T0KEN-in-the-path", "sig=abc"):
        assert secret not in everything


async def test_a_refused_change_leaves_no_entry(
    client: AsyncClient, cast: Cast, engine: AsyncEngine
) -> None:
    taken = await client.post(
        "/api/v1/users",
        headers=cast.admin.headers,
        json={"email": "bob@example.com", "name": "Bob again"},
    )
    assert taken.status_code == 409
    forbidden = await client.post(
        "/api/v1/teams", headers=cast.bob.headers, json={"name": "Shadow"}
    )
    assert forbidden.status_code == 403
    async with engine.connect() as conn:
        count = await conn.execute(text("SELECT count(*) FROM audit_entries"))
        assert count.scalar_one() == 0


async def test_only_admins_read_the_audit_log(client: AsyncClient, cast: Cast) -> None:
    for person in (cast.alice, cast.bob, cast.olive, cast.mallory):
        response = await client.get(AUDIT, headers=person.headers)
        assert response.status_code == 403
    assert (await client.get(AUDIT)).status_code == 401


async def test_it_filters_by_actor_object_and_time_and_pages_with_a_cursor(
    client: AsyncClient, cast: Cast, clock: FrozenClock
) -> None:
    start = clock.now()
    for number in range(5):
        clock.advance(timedelta(minutes=1))
        await ok(
            await client.post(
                "/api/v1/teams", headers=cast.admin.headers, json={"name": f"Team {number}"}
            ),
            201,
        )
    await ok(
        await client.patch(
            f"/api/v1/users/{cast.bob.id}", headers=cast.bob.headers, json={"name": "Robert"}
        )
    )
    by_bob = await audit(client, cast, actor=str(cast.bob.id))
    assert [(e["object_type"], e["object_id"]) for e in by_bob] == [("users", str(cast.bob.id))]
    window = await audit(
        client,
        cast,
        since=(start + timedelta(minutes=2)).isoformat(),
        until=(start + timedelta(minutes=4)).isoformat(),
    )
    assert [e["changes"]["name"]["after"] for e in window] == ["Team 2", "Team 1"]
    seen: list[str] = []
    params: dict[str, Any] = {"object_type": "teams", "limit": 2}
    while True:
        response = await client.get(AUDIT, headers=cast.admin.headers, params=params)
        page = response.json()
        seen.extend(e["changes"]["name"]["after"] for e in page["items"])
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == [f"Team {n}" for n in reversed(range(5))]
    bad = await client.get(AUDIT, headers=cast.admin.headers, params={"since": "yesterday"})
    assert bad.status_code == 422
