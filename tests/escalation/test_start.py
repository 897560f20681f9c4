"""A new incident's escalation starts from a timer written with the incident and due at once:
ingest stays short, and the worker pages level 1. What people do in the moment between the two
must still come out right."""

from __future__ import annotations

from datetime import timedelta

from tests.escalation.conftest import Scene
from tests.escalation.test_engine import who


async def post_alert(scene: Scene, title: str = "Checkout down") -> str:
    """Send an alert without running the worker afterwards."""
    response = await scene.client.post(
        scene.integration.url, json={"title": title, "routing_key": "checkout"}
    )
    assert response.status_code == 202, response.text
    incident_id: str = response.json()["incident_id"]
    return incident_id


async def test_the_worker_pages_level_one_from_the_start_timer_once(scene: Scene) -> None:
    incident = await post_alert(scene)
    assert await scene.pages(incident) == []
    assert await scene.pending_timers(incident) == 1  # the start, due now

    await scene.run_worker()
    await scene.run_worker()
    assert who(scene, await scene.pages(incident)) == [("bob", 1, 0)]
    assert await scene.kinds(incident) == ["created", "paged", "escalation_scheduled"]
    await scene.advance(minutes=5)
    assert who(scene, await scene.pages(incident)) == [("bob", 1, 0), ("alice", 2, 0)]


async def test_acknowledged_before_the_start_pages_nobody_until_unacknowledged(
    scene: Scene,
) -> None:
    incident = await post_alert(scene)
    response = await scene.act(incident, "acknowledge", scene.cast.bob)
    assert response.status_code == 200, response.text
    await scene.run_worker()
    assert await scene.pages(incident) == []
    assert await scene.pending_timers(incident) == 0

    response = await scene.act(incident, "unacknowledge", scene.cast.bob)
    assert response.status_code == 200, response.text
    await scene.run_worker()  # the resume timer the un-acknowledgement wrote
    assert who(scene, await scene.pages(incident)) == [("bob", 1, 0)]
    await scene.advance(minutes=5)
    assert who(scene, await scene.pages(incident))[-1] == ("alice", 2, 0)


async def test_resolved_before_the_start_pages_nobody(scene: Scene) -> None:
    incident = await post_alert(scene)
    response = await scene.act(incident, "resolve", scene.cast.bob)
    assert response.status_code == 200, response.text
    await scene.advance(hours=1)
    assert await scene.pages(incident) == []
    assert await scene.pending_timers(incident) == 0


async def test_escalate_now_before_the_start_pages_level_one_once(scene: Scene) -> None:
    incident = await post_alert(scene)
    response = await scene.act(incident, "escalate", scene.cast.bob)
    assert response.status_code == 200, response.text
    await scene.run_worker()  # the start timer was cancelled; the escalate timer pages
    assert who(scene, await scene.pages(incident)) == [("bob", 1, 0)]
    await scene.run_worker()
    assert who(scene, await scene.pages(incident)) == [("bob", 1, 0)]
    await scene.advance(minutes=5)
    assert who(scene, await scene.pages(incident)) == [("bob", 1, 0), ("alice", 2, 0)]


async def test_a_policy_emptied_before_the_start_is_said_on_the_timeline(scene: Scene) -> None:
    incident = await post_alert(scene)
    await scene.set_levels([])
    await scene.run_worker()
    assert await scene.pages(incident) == []
    assert await scene.kinds(incident) == ["created", "no_escalation_policy"]
    scene.clock.advance(timedelta(hours=1))
    assert await scene.pending_timers(incident) == 0


async def test_a_storm_of_new_incidents_is_started_together_each_paged_once(
    scene: Scene,
) -> None:
    incidents = [await post_alert(scene, f"Storm {n}") for n in range(12)]
    # One was acknowledged and one resolved before the worker got to their start timers.
    assert (await scene.act(incidents[3], "acknowledge", scene.cast.bob)).status_code == 200
    assert (await scene.act(incidents[7], "resolve", scene.cast.bob)).status_code == 200

    await scene.run_worker()
    await scene.run_worker()
    for n, incident in enumerate(incidents):
        if n in (3, 7):
            assert await scene.pages(incident) == []
            assert await scene.pending_timers(incident) == 0
        else:
            assert who(scene, await scene.pages(incident)) == [("bob", 1, 0)]
            assert await scene.kinds(incident) == ["created", "paged", "escalation_scheduled"]
    await scene.advance(minutes=5)
    assert who(scene, await scene.pages(incidents[0])) == [("bob", 1, 0), ("alice", 2, 0)]
    assert await scene.pages(incidents[3]) == []
