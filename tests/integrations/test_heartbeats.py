"""Heartbeat monitors: CRUD, pings at /heartbeats/{key}, and the worker step that opens an
alert when a ping is late and lets the next ping resolve it."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import count_rows, new_uuid
from tests.factories import World
from tocsin.app import create_app
from tocsin.clock import FrozenClock
from tocsin.config import Settings
from tocsin.db import create_engine
from tocsin.heartbeats import watch as heartbeats
from tocsin.heartbeats.watch import fire_late_heartbeats
from tocsin.worker import wakeup
from tocsin.worker.context import WorkerContext

INTERVAL = 300
GRACE = 60


@pytest.fixture
def ctx(engine: AsyncEngine, clock: FrozenClock, settings: Settings) -> WorkerContext:
    return WorkerContext(engine=engine, clock=clock, settings=settings, worker_id="test-worker")


async def create_monitor(client: AsyncClient, world: World, **fields: Any) -> dict[str, Any]:
    body = {
        "name": "nightly backup",
        "service_id": str(world.service),
        "interval_seconds": INTERVAL,
        "grace_seconds": GRACE,
        **fields,
    }
    response = await client.post("/api/v1/heartbeats", json=body, headers=world.cast.alice.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def ping(client: AsyncClient, key: str, method: str = "GET") -> dict[str, Any]:
    response = await client.request(method, f"/heartbeats/{key}")
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def monitor_state(client: AsyncClient, world: World, monitor_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/heartbeats/{monitor_id}", headers=world.cast.bob.headers)
    assert response.status_code == 200
    state: dict[str, Any] = response.json()
    return state


async def incident(client: AsyncClient, world: World, incident_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/incidents/{incident_id}", headers=world.cast.bob.headers)
    assert response.status_code == 200
    detail: dict[str, Any] = response.json()
    return detail


async def run_until_idle(ctx: WorkerContext) -> int:
    """How many steps found work."""
    steps = 0
    while await fire_late_heartbeats(ctx):
        steps += 1
    return steps


async def test_creation_shows_the_ping_url_once(client: AsyncClient, world: World) -> None:
    created = await create_monitor(client, world)
    assert created["ping_url"] == f"http://test/heartbeats/{created['key']}"
    assert created["key"].startswith(created["key_prefix"])
    assert created["state"] == "waiting"
    assert created["last_ping_at"] is None
    assert created["due_at"] is None
    again = await monitor_state(client, world, created["id"])
    assert "key" not in again
    assert "ping_url" not in again


async def test_nothing_fires_before_the_first_ping(
    client: AsyncClient, world: World, clock: FrozenClock, ctx: WorkerContext, engine: AsyncEngine
) -> None:
    created = await create_monitor(client, world)
    clock.advance(timedelta(days=3))
    assert await run_until_idle(ctx) == 0
    assert await count_rows(engine, "incidents") == 0
    assert (await monitor_state(client, world, created["id"]))["state"] == "waiting"


async def test_a_ping_within_interval_and_grace_keeps_it_up(
    client: AsyncClient, world: World, clock: FrozenClock, ctx: WorkerContext, engine: AsyncEngine
) -> None:
    created = await create_monitor(client, world)
    assert (await ping(client, created["key"]))["state"] == "up"
    clock.advance(timedelta(seconds=INTERVAL + GRACE))  # exactly at the deadline: not yet late
    assert await run_until_idle(ctx) == 0
    await ping(client, created["key"], "POST")
    clock.advance(timedelta(seconds=INTERVAL + GRACE))
    assert await run_until_idle(ctx) == 0
    assert await count_rows(engine, "incidents") == 0
    state = await monitor_state(client, world, created["id"])
    assert state["state"] == "up"
    assert state["due_at"] is not None


async def test_a_late_ping_opens_exactly_one_incident_through_the_service(
    client: AsyncClient, world: World, clock: FrozenClock, ctx: WorkerContext, engine: AsyncEngine
) -> None:
    created = await create_monitor(client, world, severity="high")
    await ping(client, created["key"])
    clock.advance(timedelta(seconds=INTERVAL + GRACE + 1))
    assert await run_until_idle(ctx) == 1
    clock.advance(timedelta(hours=2))
    assert await run_until_idle(ctx) == 0  # still late, but it has fired already
    assert await count_rows(engine, "incidents") == 1

    state = await monitor_state(client, world, created["id"])
    assert state["state"] == "late"
    assert state["due_at"] is None
    detail = await incident(client, world, state["incident_id"])
    assert detail["title"] == "Heartbeat 'nightly backup' is late"
    assert detail["status"] == "open"
    assert detail["priority"] == "high"
    assert detail["service"]["id"] == str(world.service)
    assert detail["team_id"] == str(world.cast.payments)
    assert detail["escalation_policy_id"] == str(world.policy)
    assert await count_rows(engine, "escalation_jobs") == 1


async def test_the_next_ping_resolves_it_and_a_later_lapse_opens_a_new_one(
    client: AsyncClient, world: World, clock: FrozenClock, ctx: WorkerContext
) -> None:
    created = await create_monitor(client, world)
    await ping(client, created["key"])
    clock.advance(timedelta(seconds=INTERVAL + GRACE + 1))
    await run_until_idle(ctx)
    first = (await monitor_state(client, world, created["id"]))["incident_id"]

    clock.advance(timedelta(minutes=10))
    answer = await ping(client, created["key"], "POST")
    assert answer == {"state": "up", "resolved_incident_id": first}
    detail = await incident(client, world, first)
    assert detail["status"] == "resolved"
    state = await monitor_state(client, world, created["id"])
    assert state["state"] == "up"
    assert state["incident_id"] is None
    # A second ping finds nothing left to resolve.
    assert (await ping(client, created["key"]))["resolved_incident_id"] is None

    clock.advance(timedelta(seconds=INTERVAL + GRACE + 1))
    assert await run_until_idle(ctx) == 1
    second = (await monitor_state(client, world, created["id"]))["incident_id"]
    assert second not in (None, first)
    assert (await incident(client, world, second))["status"] == "open"


async def test_changing_the_interval_moves_the_deadline(
    client: AsyncClient, world: World, clock: FrozenClock, ctx: WorkerContext
) -> None:
    created = await create_monitor(client, world)
    await ping(client, created["key"])
    response = await client.patch(
        f"/api/v1/heartbeats/{created['id']}",
        json={"interval_seconds": 3600, "grace_seconds": 0},
        headers=world.cast.alice.headers,
    )
    assert response.status_code == 200
    clock.advance(timedelta(seconds=INTERVAL + GRACE + 1))
    assert await run_until_idle(ctx) == 0
    clock.advance(timedelta(hours=1))
    assert await run_until_idle(ctx) == 1


async def test_concurrent_workers_fire_each_late_monitor_once(
    client: AsyncClient,
    world: World,
    clock: FrozenClock,
    settings: Settings,
    database_url: str,
    engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(heartbeats, "BATCH", 2)  # several batches, so the workers contend
    keys = [(await create_monitor(client, world, name=f"job {n}"))["key"] for n in range(6)]
    for key in keys:
        await ping(client, key)
    clock.advance(timedelta(seconds=INTERVAL + GRACE + 1))
    # Separate engines, so the workers hold separate connections, as separate processes would.
    engines = [create_engine(database_url) for _ in range(3)]
    try:
        contexts = [
            WorkerContext(engine=e, clock=clock, settings=settings, worker_id=f"w{n}")
            for n, e in enumerate(engines)
        ]
        await asyncio.gather(*(run_until_idle(c) for c in contexts))
    finally:
        for e in engines:
            await e.dispose()
    assert await count_rows(engine, "incidents") == len(keys)
    assert await count_rows(engine, "alerts") == len(keys)
    listed = await client.get("/api/v1/heartbeats", headers=world.cast.bob.headers)
    incidents = {m["incident_id"] for m in listed.json()["items"]}
    assert len(incidents) == len(keys)
    assert None not in incidents


async def test_two_workers_racing_for_one_monitor_fire_it_once(
    client: AsyncClient,
    world: World,
    clock: FrozenClock,
    settings: Settings,
    database_url: str,
    engine: AsyncEngine,
) -> None:
    created = await create_monitor(client, world)
    await ping(client, created["key"])
    clock.advance(timedelta(seconds=INTERVAL + GRACE + 1))
    engines = [create_engine(database_url) for _ in range(2)]
    try:
        results = await asyncio.gather(
            *(
                fire_late_heartbeats(
                    WorkerContext(engine=e, clock=clock, settings=settings, worker_id=f"w{n}")
                )
                for n, e in enumerate(engines)
            )
        )
    finally:
        for e in engines:
            await e.dispose()
    assert sorted(results) == [False, True]
    assert await count_rows(engine, "incidents") == 1


async def test_an_unknown_key_is_404(client: AsyncClient, world: World) -> None:
    for method in ("GET", "POST"):
        response = await client.request(method, "/heartbeats/hb_not-a-key")
        assert response.status_code == 404
        assert "heartbeat" in response.json()["detail"]


async def test_a_deleted_monitor_stops_taking_pings(
    client: AsyncClient, world: World, engine: AsyncEngine
) -> None:
    created = await create_monitor(client, world)
    response = await client.delete(
        f"/api/v1/heartbeats/{created['id']}", headers=world.cast.alice.headers
    )
    assert response.status_code == 204
    assert (await client.get(f"/heartbeats/{created['key']}")).status_code == 404
    assert await count_rows(engine, "heartbeat_monitors") == 0


async def test_deleting_a_monitor_that_fired_keeps_its_incident(
    client: AsyncClient, world: World, clock: FrozenClock, ctx: WorkerContext, engine: AsyncEngine
) -> None:
    created = await create_monitor(client, world)
    await ping(client, created["key"])
    clock.advance(timedelta(seconds=INTERVAL + GRACE + 1))
    await run_until_idle(ctx)
    incident_id = (await monitor_state(client, world, created["id"]))["incident_id"]
    response = await client.delete(
        f"/api/v1/heartbeats/{created['id']}", headers=world.cast.alice.headers
    )
    assert response.status_code == 204
    assert (await incident(client, world, incident_id))["alert_count"] == 1
    integration = await client.get(
        f"/api/v1/integrations/{created['integration_id']}", headers=world.cast.admin.headers
    )
    assert integration.json()["active"] is False
    assert (await client.get(f"/heartbeats/{created['key']}")).status_code == 404


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"service_id": None}, "service_id"),
        ({"service_id": "not-a-uuid"}, "service_id"),
        ({"service_id": new_uuid()}, "service_id"),
        ({"interval_seconds": 0}, "interval_seconds"),
        ({"interval_seconds": "often"}, "interval_seconds"),
        ({"grace_seconds": -1}, "grace_seconds"),
        ({"severity": "apocalyptic"}, "severity"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_an_invalid_monitor_is_refused_with_422_naming_the_field(
    client: AsyncClient, world: World, engine: AsyncEngine, changes: dict[str, Any], field: str
) -> None:
    integrations_before = await count_rows(engine, "integrations")
    body = {
        "name": "nightly backup",
        "service_id": str(world.service),
        "interval_seconds": INTERVAL,
        **changes,
    }
    response = await client.post("/api/v1/heartbeats", json=body, headers=world.cast.admin.headers)
    assert response.status_code == 422, response.text
    locations = [err["loc"] for err in response.json()["detail"]]
    assert any(loc[:2] == ["body", field] for loc in locations), locations
    assert await count_rows(engine, "heartbeat_monitors") == 0
    assert await count_rows(engine, "integrations") == integrations_before


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"interval_seconds": None}, "interval_seconds"),
        ({"interval_seconds": 1}, "interval_seconds"),
        ({"service_id": new_uuid()}, "service_id"),
    ],
)
async def test_an_invalid_change_is_refused_and_nothing_changes(
    client: AsyncClient, world: World, changes: dict[str, Any], field: str
) -> None:
    created = await create_monitor(client, world)
    response = await client.patch(
        f"/api/v1/heartbeats/{created['id']}", json=changes, headers=world.cast.alice.headers
    )
    assert response.status_code == 422, response.text
    locations = [err["loc"] for err in response.json()["detail"]]
    assert any(loc[:2] == ["body", field] for loc in locations), locations
    state = await monitor_state(client, world, created["id"])
    assert state["interval_seconds"] == INTERVAL
    assert state["service_id"] == str(world.service)


async def test_only_managers_of_the_services_team_may_change_monitors(
    client: AsyncClient, world: World, engine: AsyncEngine
) -> None:
    body = {"name": "x", "service_id": str(world.service), "interval_seconds": INTERVAL}
    for person in (world.cast.bob, world.cast.mallory):
        response = await client.post("/api/v1/heartbeats", json=body, headers=person.headers)
        assert response.status_code == 403
    assert await count_rows(engine, "heartbeat_monitors") == 0
    assert (await client.post("/api/v1/heartbeats", json=body)).status_code == 401
    created = await create_monitor(client, world)
    response = await client.delete(
        f"/api/v1/heartbeats/{created['id']}", headers=world.cast.bob.headers
    )
    assert response.status_code == 403
    listed = await client.get("/api/v1/heartbeats", headers=world.cast.mallory.headers)
    assert [m["id"] for m in listed.json()["items"]] == [created["id"]]


async def test_the_servers_own_worker_fires_a_late_heartbeat(
    settings: Settings, clock: FrozenClock, world: World, backend: str
) -> None:
    """The step is registered with the worker loop that `tocsin serve` runs."""
    if backend != "sqlite":
        pytest.skip("registration does not depend on the backend; the step's tests cover both")
    application = create_app(settings, clock=clock, run_worker=True)
    async with (
        application.router.lifespan_context(application),
        AsyncClient(transport=ASGITransport(app=application), base_url="http://test") as http,
    ):
        created = await create_monitor(http, world)
        await ping(http, created["key"])
        clock.advance(timedelta(seconds=INTERVAL + GRACE + 1))
        wakeup.wake_local()
        for _ in range(200):
            state = await monitor_state(http, world, created["id"])
            if state["state"] == "late":
                break
            await asyncio.sleep(0.05)
        assert state["state"] == "late"
        assert state["incident_id"] is not None
