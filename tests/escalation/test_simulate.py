"""POST /api/v1/simulate: the dry run answers what the real path then does, and stores
nothing."""

from __future__ import annotations

from datetime import timedelta

from tests.conftest import CURRENT_TIME, count_rows
from tests.escalation.conftest import Scene
from tests.factories import make_integration, make_service, make_team
from tocsin.escalation.models import TargetType
from tocsin.integrations.models import IntegrationType
from tocsin.teams.models import TeamRole

PAYLOAD = {"title": "Checkout down", "routing_key": "checkout"}


async def simulate(scene: Scene, payload: object = PAYLOAD, **extra: object) -> dict:  # type: ignore[type-arg]
    response = await scene.client.post(
        "/api/v1/simulate",
        json={"integration_id": str(scene.integration.id), "payload": payload, **extra},
        headers=scene.cast.bob.headers,
    )
    assert response.status_code == 200, response.text
    body: dict = response.json()  # type: ignore[type-arg]
    return body


async def test_the_simulation_matches_what_the_engine_then_does(scene: Scene) -> None:
    await scene.set_levels(
        [
            (TargetType.USER, scene.cast.bob.id, 5),
            (TargetType.ENTIRE_TEAM, None, 10),
        ],
        repeat_count=2,
    )
    answer = await simulate(scene)
    (alert,) = answer["alerts"]
    assert alert["route"]["service_id"] == str(scene.service)
    assert alert["route"]["escalation_policy_id"] == str(scene.policy)
    assert alert["joins_incident_id"] is None
    planned = [
        (step["at"], step["level"], step["repeat"], sorted(u["user_id"] for u in step["users"]))
        for step in alert["plan"]
        if step["action"] == "page"
    ]
    assert alert["plan"][-1]["action"] == "exhausted"
    assert len(planned) == 4

    incident = await scene.open_incident()
    for minutes in (5, 10, 5, 10):
        await scene.advance(minutes=minutes)
    pages = await scene.pages(incident)
    done: dict[tuple[int | None, int], list[str]] = {}
    at: dict[tuple[int | None, int], str] = {}
    for page in pages:
        done.setdefault((page.level, page.repeat), []).append(str(page.user_id))
        at[(page.level, page.repeat)] = page.at.isoformat().replace("+00:00", "Z")
    actual = [(at[key], key[0], key[1], sorted(users)) for key, users in done.items()]
    assert actual == planned
    exhausted = [e for e in await scene.timeline(incident) if e["kind"] == "escalation_exhausted"]
    assert exhausted[0]["at"] == alert["plan"][-1]["at"]


async def test_a_simulation_changes_nothing(scene: Scene) -> None:
    before = {t: await count_rows(scene.engine, t) for t in ("alerts", "incidents", "pages")}
    await simulate(scene)
    after = {t: await count_rows(scene.engine, t) for t in ("alerts", "incidents", "pages")}
    assert before == after


async def test_it_says_when_the_alert_would_join_an_open_incident(scene: Scene) -> None:
    incident = await scene.open_incident()
    answer = await simulate(scene)
    assert answer["alerts"][0]["joins_incident_id"] == incident
    assert answer["alerts"][0]["plan"] == []
    # Past the integration's dedup window (60 minutes) it would open a new one.
    later = (CURRENT_TIME + timedelta(hours=2)).isoformat()
    answer = await simulate(scene, at=later)
    assert answer["alerts"][0]["joins_incident_id"] is None
    assert answer["alerts"][0]["plan"][0]["at"] == later.replace("+00:00", "Z")


async def test_an_unrouted_alert_has_no_route_and_no_plan(scene: Scene) -> None:
    answer = await simulate(scene, {"title": "Nobody's", "routing_key": "nope"})
    assert answer["alerts"][0]["route"] is None
    assert answer["alerts"][0]["plan"] == []


async def test_a_bad_payload_is_refused_naming_the_field(scene: Scene) -> None:
    response = await scene.client.post(
        "/api/v1/simulate",
        json={"integration_id": str(scene.integration.id), "payload": {"severity": "loud"}},
        headers=scene.cast.bob.headers,
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][:2] == ["body", "payload"]


async def test_an_unknown_integration_is_refused(scene: Scene) -> None:
    response = await scene.client.post(
        "/api/v1/simulate",
        json={"integration_id": "00000000-0000-0000-0000-000000000000", "payload": PAYLOAD},
        headers=scene.cast.bob.headers,
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "integration_id"]


async def test_another_teams_incident_it_would_join_is_not_named(scene: Scene) -> None:
    # Mallory's team Ops has a service of its own; an alert through the same integration
    # with the same dedup key as Payments' open incident would join that incident.
    now = scene.clock.now()
    ops = await make_team(
        scene.engine, now, name="Ops", members={scene.cast.mallory.id: TeamRole.RESPONDER}
    )
    await make_service(scene.engine, now, team_id=ops, routing_key="ops", name="Ops thing")
    sent = await scene.client.post(
        scene.integration.url,
        json={"title": "Checkout down", "routing_key": "checkout", "dedup_key": "db"},
    )
    incident = sent.json()["incident_id"]
    probe = {"title": "Checkout down", "routing_key": "ops", "dedup_key": "db"}
    response = await scene.client.post(
        "/api/v1/simulate",
        json={"integration_id": str(scene.integration.id), "payload": probe},
        headers=scene.cast.mallory.headers,
    )
    assert response.status_code == 200, response.text
    (alert,) = response.json()["alerts"]
    assert alert["route"]["team_id"] == str(ops)
    assert alert["joins_incident_id"] is None
    assert alert["joins_hidden_incident"] is True
    assert incident not in response.text
    admin = await scene.client.post(
        "/api/v1/simulate",
        json={"integration_id": str(scene.integration.id), "payload": probe},
        headers=scene.cast.admin.headers,
    )
    assert admin.json()["alerts"][0]["joins_incident_id"] == incident


async def test_an_integration_without_a_json_adapter_is_refused_not_a_500(scene: Scene) -> None:
    email = await make_integration(scene.engine, scene.clock.now(), type=IntegrationType.EMAIL)
    response = await scene.client.post(
        "/api/v1/simulate",
        json={"integration_id": str(email.id), "payload": PAYLOAD},
        headers=scene.cast.bob.headers,
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "integration_id"]
