"""Snooze: an acknowledged incident returns to open and pages again at the given time."""

from __future__ import annotations

from datetime import timedelta

from tests.escalation.conftest import Scene
from tocsin.escalation.models import TargetType
from tocsin.noise.expiry import end_silences_and_snoozes


async def test_a_snoozed_incident_reopens_and_pages_at_its_time(scene: Scene) -> None:
    await scene.set_levels([(TargetType.USER, scene.cast.bob.id, 30)])
    incident = await scene.open_incident()
    assert len(await scene.pages(incident)) == 1
    headers = scene.cast.bob.headers
    await scene.client.post(f"/api/v1/incidents/{incident}/acknowledge", headers=headers)
    until = scene.clock.now() + timedelta(hours=2)
    snoozed = await scene.client.post(
        f"/api/v1/incidents/{incident}/snooze", json={"until": until.isoformat()}, headers=headers
    )
    assert snoozed.status_code == 204, snoozed.text
    await scene.advance(minutes=119)
    assert not await end_silences_and_snoozes(scene.context())
    detail = await scene.client.get(f"/api/v1/incidents/{incident}", headers=headers)
    assert detail.json()["status"] == "acknowledged"
    await scene.advance(minutes=1)
    assert await end_silences_and_snoozes(scene.context())
    await scene.run_worker()
    detail = await scene.client.get(f"/api/v1/incidents/{incident}", headers=headers)
    assert detail.json()["status"] == "open"
    kinds = [e["kind"] for e in detail.json()["timeline"]]
    assert "snoozed" in kinds and kinds[-1] != "snoozed"
    assert len(await scene.pages(incident)) == 2


async def test_only_an_acknowledged_incident_can_be_snoozed(scene: Scene) -> None:
    incident = await scene.open_incident()
    until = scene.clock.now() + timedelta(hours=1)
    response = await scene.client.post(
        f"/api/v1/incidents/{incident}/snooze",
        json={"until": until.isoformat()},
        headers=scene.cast.bob.headers,
    )
    assert response.status_code == 409
    past = await scene.client.post(
        f"/api/v1/incidents/{incident}/snooze",
        json={"until": "2020-01-01T00:00:00"},
        headers=scene.cast.bob.headers,
    )
    assert past.status_code == 422
    assert "until" in past.text
