"""Grouping by group_by tags: alerts of one service with equal values join one incident
within the window; dedup inside a group; the incident lists its alerts and resolves when all
have; the order maintenance -> silence -> inhibition -> grouping -> dedup; bad settings."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import count_rows
from tests.factories import World
from tests.noise.test_suppression import silence, window
from tocsin.alerts.ingest import Submission, commit_submission, prepare
from tocsin.alerts.models import Severity
from tocsin.alerts.normalised import NormalisedAlert
from tocsin.clock import FrozenClock
from tocsin.integrations.lookup import find_active_integration

CPU = {
    "title": "CPU hot",
    "routing_key": "payments-api",
    "dedup_key": "cpu-1",
    "tags": {"alertname": "HighCPU", "cluster": "eu-1", "instance": "web-1"},
}


def cpu(instance: str, **changes: Any) -> dict[str, Any]:
    tags = {**CPU["tags"], "instance": instance, **changes.pop("tags", {})}  # type: ignore[dict-item]
    return {**CPU, "dedup_key": f"cpu-{instance}", "tags": tags, **changes}


async def send(client: AsyncClient, world: World, payload: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(world.integration.url, json=payload)
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


async def group_service(
    client: AsyncClient, world: World, group_by: list[str], seconds: int = 300
) -> dict[str, Any]:
    response = await client.patch(
        f"/api/v1/services/{world.service}",
        json={"group_by": group_by, "group_window_seconds": seconds},
        headers=world.cast.alice.headers,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def alerts_of(client: AsyncClient, world: World, incident_id: str) -> list[dict[str, Any]]:
    response = await client.get(
        f"/api/v1/incidents/{incident_id}/alerts", headers=world.cast.bob.headers
    )
    assert response.status_code == 200, response.text
    body: list[dict[str, Any]] = response.json()
    return body


async def detail(client: AsyncClient, world: World, incident_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/incidents/{incident_id}", headers=world.cast.bob.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_alerts_of_one_group_join_one_incident_and_page_once(
    client: AsyncClient, world: World, engine: AsyncEngine, clock: FrozenClock
) -> None:
    saved = await group_service(client, world, ["alertname", "cluster"], 600)
    assert (saved["group_by"], saved["group_window_seconds"]) == (["alertname", "cluster"], 600)
    first = await send(client, world, cpu("web-1"))
    clock.advance(timedelta(seconds=1))
    assert "suppressed" not in first
    second = await send(client, world, cpu("web-2"))
    assert second["incident_id"] == first["incident_id"]
    assert second["suppressed"]["kind"] == "group"
    assert second["suppressed"]["id"] == first["incident_id"]
    assert second["suppressed"]["reason"] == "grouped by alertname='HighCPU', cluster='eu-1'"
    assert await count_rows(engine, "incidents") == 1
    assert await count_rows(engine, "escalation_jobs") == 1  # the first alert's start only
    listed = await alerts_of(client, world, first["incident_id"])
    assert [(a["tags"]["instance"], a["status"]) for a in listed] == [
        ("web-1", "firing"),
        ("web-2", "firing"),
    ]
    assert listed[1]["grouped_reason"] == second["suppressed"]["reason"]
    shown = await detail(client, world, first["incident_id"])
    assert shown["alert_count"] == 2
    assert shown["grouped_alerts"] == listed
    assert shown["group_key"] is not None
    added = [e for e in shown["timeline"] if e["kind"] == "alert_added"]
    assert added[0]["data"]["grouped"] == second["suppressed"]["reason"]


async def test_after_the_window_and_for_other_values_a_new_incident_opens(
    client: AsyncClient, world: World, clock: FrozenClock
) -> None:
    await group_service(client, world, ["alertname", "cluster"], 300)
    first = await send(client, world, cpu("web-1"))
    elsewhere = await send(client, world, cpu("web-2", tags={"cluster": "us-1"}))
    assert elsewhere["incident_id"] != first["incident_id"]
    assert "suppressed" not in elsewhere
    clock.advance(timedelta(seconds=299))
    inside = await send(client, world, cpu("web-3"))
    assert inside["incident_id"] == first["incident_id"]
    clock.advance(timedelta(seconds=2))
    after = await send(client, world, cpu("web-4"))
    assert after["incident_id"] not in (first["incident_id"], elsewhere["incident_id"])
    # The new incident is now the group's: the next alert of the group joins it.
    assert (await send(client, world, cpu("web-5")))["incident_id"] == after["incident_id"]


async def test_alerts_already_in_a_group_deduplicate_there_even_after_the_window(
    client: AsyncClient, world: World, clock: FrozenClock, engine: AsyncEngine
) -> None:
    await group_service(client, world, ["alertname"], 60)
    first = await send(client, world, cpu("web-1"))
    clock.advance(timedelta(seconds=1))
    await send(client, world, cpu("web-2"))
    clock.advance(timedelta(minutes=10))
    again = await send(client, world, cpu("web-2"))
    assert again["incident_id"] == first["incident_id"]
    assert again["deduplicated"] is True
    assert again["suppressed"]["reason"].endswith("(already in this incident)")
    same = await send(client, world, cpu("web-1"))
    assert same["incident_id"] == first["incident_id"]
    assert await count_rows(engine, "incidents") == 1
    listed = await alerts_of(client, world, first["incident_id"])
    assert [a["received"] for a in listed] == [2, 2]


async def test_a_grouped_incident_resolves_when_every_alert_has_resolved(
    client: AsyncClient, world: World, clock: FrozenClock
) -> None:
    await group_service(client, world, ["alertname", "cluster"])
    first = await send(client, world, cpu("web-1"))
    clock.advance(timedelta(seconds=1))
    await send(client, world, cpu("web-2"))
    await send(client, world, cpu("web-1", status="resolved"))
    shown = await detail(client, world, first["incident_id"])
    assert shown["status"] == "open"
    assert [a["status"] for a in shown["grouped_alerts"]] == ["resolved", "firing"]
    resolved = await send(client, world, cpu("web-2", status="resolved"))
    assert resolved["incident_id"] == first["incident_id"]
    shown = await detail(client, world, first["incident_id"])
    assert shown["status"] == "resolved"
    assert [a["status"] for a in shown["grouped_alerts"]] == ["resolved", "resolved"]
    assert shown["timeline"][-1]["note"] == "every alert of the incident has resolved"
    # Resolved: the group's next alert opens a new incident.
    assert (await send(client, world, cpu("web-3")))["incident_id"] != first["incident_id"]


async def test_silences_and_maintenance_come_before_grouping(
    client: AsyncClient, world: World, clock: FrozenClock
) -> None:
    await group_service(client, world, ["alertname"])
    first = await send(client, world, cpu("web-1"))
    clock.advance(timedelta(seconds=1))
    await silence(
        client, world, clock, [{"field": "tag", "name": "instance", "op": "=", "value": "web-2"}]
    )
    silenced = await send(client, world, cpu("web-2"))
    assert silenced["incident_id"] is None
    assert silenced["suppressed"]["kind"] == "silence"
    await window(client, world, clock)
    windowed = await send(client, world, cpu("web-3"))
    assert windowed["suppressed"]["kind"] == "maintenance"
    listed = await alerts_of(client, world, first["incident_id"])
    assert [a["tags"]["instance"] for a in listed] == ["web-1"]


async def test_an_integrations_group_by_overrides_its_services(
    client: AsyncClient, world: World
) -> None:
    await group_service(client, world, ["alertname", "cluster"])
    changed = await client.patch(
        f"/api/v1/integrations/{world.integration.id}",
        json={"group_by": ["cluster"], "group_window_seconds": 120},
        headers=world.cast.admin.headers,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["group_by"] == ["cluster"]
    first = await send(client, world, cpu("web-1"))
    other = await send(client, world, cpu("web-2", tags={"alertname": "DiskFull"}))
    assert other["incident_id"] == first["incident_id"]
    assert other["suppressed"]["reason"] == "grouped by cluster='eu-1'"
    # An empty list turns grouping off for the integration, whatever its service says.
    await client.patch(
        f"/api/v1/integrations/{world.integration.id}",
        json={"group_by": []},
        headers=world.cast.admin.headers,
    )
    assert (await send(client, world, cpu("web-3")))["incident_id"] != first["incident_id"]


async def test_one_batch_of_a_new_group_opens_one_incident(
    client: AsyncClient, world: World, engine: AsyncEngine, clock: FrozenClock
) -> None:
    await group_service(client, world, ["alertname"])
    async with engine.connect() as conn:
        integration = await find_active_integration(conn, world.integration.key)
        assert integration is not None
        prepared = [
            await prepare(
                conn,
                integration,
                NormalisedAlert(
                    title=f"CPU hot on {instance}",
                    severity=Severity.HIGH,
                    routing_key="payments-api",
                    dedup_key=instance,
                    tags={"alertname": "HighCPU", "instance": instance},
                ),
            )
            for instance in ("web-1", "web-2", "web-1", "web-3")
        ]
    async with engine.begin() as conn:
        outcome = await commit_submission(
            conn, Submission(integration, alerts=tuple(prepared)), now=clock.now()
        )
    assert len({a.incident_id for a in outcome.alerts}) == 1
    assert [a.deduplicated for a in outcome.alerts] == [False, True, True, True]
    assert [a.suppressed is not None for a in outcome.alerts] == [False, True, False, True]
    assert await count_rows(engine, "incidents") == 1
    assert await count_rows(engine, "escalation_jobs") == 1


async def test_simulate_says_which_group_an_alert_would_join(
    client: AsyncClient, world: World, engine: AsyncEngine
) -> None:
    await group_service(client, world, ["alertname"])
    first = await send(client, world, cpu("web-1"))
    response = await client.post(
        "/api/v1/simulate",
        json={"integration_id": str(world.integration.id), "payload": cpu("web-9")},
        headers=world.cast.bob.headers,
    )
    assert response.status_code == 200, response.text
    (simulated,) = response.json()["alerts"]
    assert simulated["suppressed"]["kind"] == "group"
    assert simulated["joins_incident_id"] == first["incident_id"]
    assert simulated["plan"] == []
    assert await count_rows(engine, "alerts") == 1


async def test_bad_grouping_settings_get_a_422_naming_the_field_and_change_nothing(
    client: AsyncClient, world: World, engine: AsyncEngine
) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"group_by": "alertname"}, "group_by"),
        ({"group_by": [1]}, "group_by"),
        ({"group_by": [{"tag": "x"}]}, "group_by"),
        ({"group_by": ["alertname", "alertname"]}, "group_by"),
        ({"group_by": [""]}, "group_by"),
        ({"group_by": None}, "group_by"),
        ({"group_window_seconds": -5}, "group_window_seconds"),
        ({"group_window_seconds": 0}, "group_window_seconds"),
        ({"group_window_seconds": "soon"}, "group_window_seconds"),
    ]
    for body, field in cases:
        response = await client.patch(
            f"/api/v1/services/{world.service}", json=body, headers=world.cast.alice.headers
        )
        assert response.status_code == 422, body
        assert field in response.text, response.text
        created = await client.post(
            "/api/v1/services",
            json={
                "name": "Search",
                "routing_key": "search",
                "team_id": str(world.cast.payments),
                **body,
            },
            headers=world.cast.alice.headers,
        )
        assert created.status_code == 422, body
        assert field in created.text, created.text
        on_integration = await client.patch(
            f"/api/v1/integrations/{world.integration.id}",
            json=body,
            headers=world.cast.admin.headers,
        )
        if body != {"group_by": None}:  # null: the service's, on an integration
            assert on_integration.status_code == 422, body
            assert field in on_integration.text
    shown = await client.get(f"/api/v1/services/{world.service}", headers=world.cast.bob.headers)
    assert (shown.json()["group_by"], shown.json()["group_window_seconds"]) == ([], 300)
    assert await count_rows(engine, "services") == 1


async def test_grouping_a_batch_costs_the_same_statements_whatever_its_size(
    client: AsyncClient, world: World, engine: AsyncEngine, clock: FrozenClock
) -> None:
    await group_service(client, world, ["alertname"])
    async with engine.connect() as conn:
        integration = await find_active_integration(conn, world.integration.key)
        assert integration is not None

    async def statements_for(size: int, name: str) -> int:
        async with engine.connect() as conn:
            prepared = [
                await prepare(
                    conn,
                    integration,
                    NormalisedAlert(
                        title="CPU hot",
                        severity=Severity.HIGH,
                        routing_key="payments-api",
                        dedup_key=f"{name}-{n}",
                        # Two groups per batch, each new: a leader and followers.
                        tags={"alertname": f"{name}-{n % 2}", "instance": str(n)},
                    ),
                )
                for n in range(size)
            ]
        seen: list[str] = []

        def count(*args: Any) -> None:
            seen.append(str(args[2]))

        sa.event.listen(engine.sync_engine, "before_cursor_execute", count)
        try:
            async with engine.begin() as conn:
                await commit_submission(
                    conn, Submission(integration, alerts=tuple(prepared)), now=clock.now()
                )
        finally:
            sa.event.remove(engine.sync_engine, "before_cursor_execute", count)
        return len(seen)

    await statements_for(2, "warm")  # per-process caches (the noise rules) filled first
    small = await statements_for(4, "small")
    large = await statements_for(40, "large")
    assert large == small, (small, large)
