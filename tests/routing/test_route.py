"""Routing: service by routing key, then the integration's default service, then team tags,
else unrouted. Each rule, and the escalation policy choice, end to end through the webhook."""

from __future__ import annotations

from typing import Any

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import (
    World,
    make_integration,
    make_policy,
    make_service,
    make_team,
)
from tocsin.catalog.models import ServiceStatus
from tocsin.clock import FrozenClock


async def incident_of(client: AsyncClient, world: World, response: Any) -> dict[str, Any]:
    assert response.status_code == 202, response.text
    incident_id = response.json()["incident_id"]
    assert incident_id is not None, "the alert was not routed"
    detail = await client.get(f"/api/v1/incidents/{incident_id}", headers=world.cast.admin.headers)
    result: dict[str, Any] = detail.json()
    return result


async def test_a_routing_key_sends_the_alert_to_the_services_team(
    client: AsyncClient, world: World
) -> None:
    response = await client.post(
        world.integration.url, json={"title": "x", "routing_key": "payments-api"}
    )
    incident = await incident_of(client, world, response)
    assert incident["service_id"] == str(world.service)
    assert incident["team_id"] == str(world.cast.payments)


async def test_a_deprecated_service_still_takes_alerts(
    client: AsyncClient, world: World, engine: AsyncEngine, clock: FrozenClock
) -> None:
    old = await make_service(
        engine,
        clock.now(),
        team_id=world.cast.payments,
        routing_key="legacy",
        status=ServiceStatus.DEPRECATED,
    )
    response = await client.post(
        world.integration.url, json={"title": "x", "routing_key": "legacy"}
    )
    assert (await incident_of(client, world, response))["service_id"] == str(old)


async def test_an_archived_service_never_takes_alerts(
    client: AsyncClient, world: World, engine: AsyncEngine, clock: FrozenClock
) -> None:
    await make_service(
        engine,
        clock.now(),
        team_id=world.cast.payments,
        routing_key="gone",
        status=ServiceStatus.ARCHIVED,
    )
    response = await client.post(world.integration.url, json={"title": "x", "routing_key": "gone"})
    assert response.status_code == 202
    assert response.json()["incident_id"] is None


async def test_without_a_matching_key_the_integrations_default_service_is_used(
    client: AsyncClient, world: World, engine: AsyncEngine, clock: FrozenClock
) -> None:
    integration = await make_integration(engine, clock.now(), default_service_id=world.service)
    response = await client.post(integration.url, json={"title": "x", "routing_key": "nope"})
    assert (await incident_of(client, world, response))["service_id"] == str(world.service)


async def test_a_routing_key_wins_over_the_default_service(
    client: AsyncClient, world: World, engine: AsyncEngine, clock: FrozenClock
) -> None:
    other_team = await make_team(engine, clock.now(), name="Search")
    search = await make_service(engine, clock.now(), team_id=other_team, routing_key="search")
    integration = await make_integration(engine, clock.now(), default_service_id=world.service)
    response = await client.post(integration.url, json={"title": "x", "routing_key": "search"})
    incident = await incident_of(client, world, response)
    assert incident["service_id"] == str(search)
    assert incident["team_id"] == str(other_team)


async def test_an_archived_default_service_is_passed_over(
    client: AsyncClient, world: World, engine: AsyncEngine, clock: FrozenClock
) -> None:
    archived = await make_service(
        engine,
        clock.now(),
        team_id=world.cast.payments,
        routing_key="old-default",
        status=ServiceStatus.ARCHIVED,
    )
    integration = await make_integration(engine, clock.now(), default_service_id=archived)
    response = await client.post(integration.url, json={"title": "x"})
    assert response.json()["incident_id"] is None


async def test_team_tags_route_to_the_team_with_most_matches(
    client: AsyncClient, world: World, engine: AsyncEngine, clock: FrozenClock
) -> None:
    one = await make_team(engine, clock.now(), name="Storage", tags={"env": "prod"})
    two = await make_team(
        engine, clock.now(), name="Databases", tags={"env": "prod", "component": "postgres"}
    )
    response = await client.post(
        world.integration.url,
        json={"title": "x", "tags": {"env": "prod", "component": "postgres", "x": "y"}},
    )
    incident = await incident_of(client, world, response)
    assert incident["team_id"] == str(two)
    assert incident["team_id"] != str(one)
    assert incident["service_id"] is None


async def test_a_tag_needs_the_same_value_to_match(
    client: AsyncClient, world: World, engine: AsyncEngine, clock: FrozenClock
) -> None:
    await make_team(engine, clock.now(), name="Storage", tags={"env": "prod"})
    response = await client.post(
        world.integration.url, json={"title": "x", "tags": {"env": "staging"}}
    )
    assert response.json()["incident_id"] is None


async def test_a_tie_between_teams_goes_to_the_name_that_sorts_first(
    client: AsyncClient, world: World, engine: AsyncEngine, clock: FrozenClock
) -> None:
    zeta = await make_team(engine, clock.now(), name="Zeta", tags={"env": "prod"})
    alpha = await make_team(engine, clock.now(), name="Alpha", tags={"env": "prod"})
    for _ in range(3):
        response = await client.post(
            world.integration.url, json={"title": "x", "tags": {"env": "prod"}}
        )
        incident = await incident_of(client, world, response)
        assert incident["team_id"] == str(alpha)
        assert incident["team_id"] != str(zeta)


async def test_tag_routing_uses_the_teams_default_policy(
    client: AsyncClient, world: World, engine: AsyncEngine, clock: FrozenClock
) -> None:
    team = await make_team(engine, clock.now(), name="Storage", tags={"env": "prod"})
    policy = await make_policy(engine, clock.now(), team_id=team)
    response = await client.post(
        world.integration.url, json={"title": "x", "tags": {"env": "prod"}}
    )
    assert (await incident_of(client, world, response))["escalation_policy_id"] == str(policy)


async def test_an_alert_no_rule_matches_is_kept_as_unrouted(
    client: AsyncClient, world: World
) -> None:
    response = await client.post(
        world.integration.url, json={"title": "orphan", "routing_key": "nobody-has-this"}
    )
    assert response.status_code == 202
    assert response.json()["incident_id"] is None
    assert response.json()["deduplicated"] is False
    listed = await client.get(
        "/api/v1/alerts", params={"unrouted": "true"}, headers=world.cast.admin.headers
    )
    assert [a["title"] for a in listed.json()["items"]] == ["orphan"]
    assert listed.json()["items"][0]["id"] == response.json()["alert_id"]
    routed = await client.get(
        "/api/v1/alerts", params={"unrouted": "false"}, headers=world.cast.admin.headers
    )
    assert routed.json()["items"] == []
    # Unrouted alerts belong to no team, so team members do not see them.
    as_bob = await client.get(
        "/api/v1/alerts", params={"unrouted": "true"}, headers=world.cast.bob.headers
    )
    assert as_bob.json()["items"] == []


async def test_the_services_own_policy_is_used_when_active(
    client: AsyncClient, world: World, engine: AsyncEngine, clock: FrozenClock
) -> None:
    special = await make_policy(
        engine, clock.now(), team_id=world.cast.payments, name="Special", is_default=False
    )
    await make_service(
        engine, clock.now(), team_id=world.cast.payments, routing_key="ledger", policy_id=special
    )
    response = await client.post(
        world.integration.url, json={"title": "x", "routing_key": "ledger"}
    )
    assert (await incident_of(client, world, response))["escalation_policy_id"] == str(special)


async def test_an_inactive_service_policy_falls_back_to_the_team_default(
    client: AsyncClient, world: World, engine: AsyncEngine, clock: FrozenClock
) -> None:
    paused = await make_policy(
        engine,
        clock.now(),
        team_id=world.cast.payments,
        name="Paused",
        is_default=False,
        is_active=False,
    )
    await make_service(
        engine, clock.now(), team_id=world.cast.payments, routing_key="ledger", policy_id=paused
    )
    response = await client.post(
        world.integration.url, json={"title": "x", "routing_key": "ledger"}
    )
    assert (await incident_of(client, world, response))["escalation_policy_id"] == str(world.policy)


async def test_a_team_without_a_policy_still_gets_the_incident_and_the_timeline_says_so(
    client: AsyncClient, world: World, engine: AsyncEngine, clock: FrozenClock
) -> None:
    team = await make_team(engine, clock.now(), name="Orphans")
    await make_service(engine, clock.now(), team_id=team, routing_key="orphan-svc")
    response = await client.post(
        world.integration.url, json={"title": "x", "routing_key": "orphan-svc"}
    )
    incident = await incident_of(client, world, response)
    assert incident["escalation_policy_id"] is None
    assert [e["kind"] for e in incident["timeline"]] == ["created", "no_escalation_policy"]
