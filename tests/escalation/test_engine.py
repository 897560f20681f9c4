"""The escalation rules, scenario by scenario, with the clock under the test's control."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from tests.conftest import CURRENT_TIME
from tests.escalation.conftest import Scene
from tocsin.auth.models import User
from tocsin.escalation.models import TargetType

T0 = CURRENT_TIME


def who(scene: Scene, rows: list) -> list[tuple[str, int | None, int]]:  # type: ignore[type-arg]
    names = {
        scene.cast.alice.id: "alice",
        scene.cast.bob.id: "bob",
        scene.cast.olive.id: "olive",
        scene.carol.id: "carol",
    }
    return [(names[r.user_id], r.level, r.repeat) for r in rows]


async def test_it_pages_level_one_at_once_and_schedules_the_next(scene: Scene) -> None:
    incident = await scene.open_incident()
    pages = await scene.pages(incident)
    assert who(scene, pages) == [("bob", 1, 0)]
    assert pages[0].at == T0
    timeline = await scene.timeline(incident)
    assert [e["kind"] for e in timeline] == ["created", "paged", "escalation_scheduled"]
    scheduled = timeline[-1]["data"]
    assert scheduled["level"] == 2
    assert scheduled["at"] == (T0 + timedelta(minutes=5)).isoformat()
    assert await scene.pending_timers(incident) == 1


async def test_it_escalates_after_the_timeout_and_not_before(scene: Scene) -> None:
    incident = await scene.open_incident()
    await scene.advance(minutes=4, seconds=59)
    assert who(scene, await scene.pages(incident)) == [("bob", 1, 0)]
    await scene.advance(seconds=1)
    pages = await scene.pages(incident)
    assert who(scene, pages) == [("bob", 1, 0), ("alice", 2, 0)]
    assert pages[1].at == T0 + timedelta(minutes=5)
    detail = (
        await scene.client.get(f"/api/v1/incidents/{incident}", headers=scene.cast.bob.headers)
    ).json()
    assert (detail["current_level"], detail["current_repeat"]) == (2, 0)


async def test_it_repeats_the_policy_then_says_escalation_is_exhausted(scene: Scene) -> None:
    await scene.set_levels(
        [(TargetType.USER, scene.cast.bob.id, 5), (TargetType.USER, scene.cast.alice.id, 10)],
        repeat_count=2,
    )
    incident = await scene.open_incident()
    for minutes in (5, 10, 5):
        await scene.advance(minutes=minutes)
    assert who(scene, await scene.pages(incident)) == [
        ("bob", 1, 0),
        ("alice", 2, 0),
        ("bob", 1, 1),
        ("alice", 2, 1),
    ]
    assert "escalation_exhausted" not in await scene.kinds(incident)
    await scene.advance(minutes=10)
    kinds = await scene.kinds(incident)
    assert kinds[-1] == "escalation_exhausted"
    assert await scene.pending_timers(incident) == 0
    await scene.advance(hours=5)
    assert len(await scene.pages(incident)) == 4
    detail = (
        await scene.client.get(f"/api/v1/incidents/{incident}", headers=scene.cast.bob.headers)
    ).json()
    assert detail["status"] == "open"


async def test_a_level_that_resolves_to_nobody_is_skipped_at_once(scene: Scene) -> None:
    await scene.set_levels(
        [(TargetType.USER, scene.carol.id, 5), (TargetType.USER, scene.cast.alice.id, 10)]
    )
    async with scene.engine.begin() as conn:
        await conn.execute(update(User).where(User.id == scene.carol.id).values(is_active=False))
    incident = await scene.open_incident()
    assert who(scene, await scene.pages(incident)) == [("alice", 2, 0)]
    timeline = await scene.timeline(incident)
    skipped = [e for e in timeline if e["kind"] == "level_skipped"]
    assert len(skipped) == 1
    assert skipped[0]["data"] == {"level": 1, "repeat": 0}
    assert "deactivated" in skipped[0]["note"]


async def test_entire_team_pages_responders_and_managers_but_not_observers(scene: Scene) -> None:
    await scene.set_levels([(TargetType.ENTIRE_TEAM, None, 5)])
    incident = await scene.open_incident()
    assert sorted(n for n, _, _ in who(scene, await scene.pages(incident))) == [
        "alice",
        "bob",
        "carol",
    ]
    assert {p.via for p in await scene.pages(incident)} == {"entire_team"}


async def test_a_schedule_level_pages_whoever_is_on_call_when_it_is_reached(scene: Scene) -> None:
    # Daily handoff at 09:05 UTC: Carol until then, Bob from then on (T0 is 09:00).
    handoff = (T0 - timedelta(days=1) + timedelta(minutes=5)).replace(tzinfo=None)
    schedule, _layer, _ = await scene.make_schedule(
        [scene.carol.id, scene.cast.bob.id], handoff=handoff
    )
    await scene.set_levels(
        [(TargetType.SCHEDULE, schedule, 10), (TargetType.USER, scene.cast.alice.id, 10)],
        repeat_count=2,
    )
    incident = await scene.open_incident()
    await scene.advance(minutes=10)  # level 2: Alice
    await scene.advance(minutes=10)  # level 1 again, 09:20: Bob's turn now
    pages = await scene.pages(incident)
    assert who(scene, pages) == [("carol", 1, 0), ("alice", 2, 0), ("bob", 1, 1)]
    assert (pages[0].via, pages[2].via) == ("schedule", "schedule")


async def test_an_override_is_named_on_the_page(scene: Scene) -> None:
    handoff = (T0 - timedelta(days=1)).replace(tzinfo=None)
    schedule, _, override = await scene.make_schedule(
        [scene.carol.id],
        handoff=handoff,
        override=(T0 - timedelta(hours=1), T0 + timedelta(hours=1), scene.cast.alice.id),
    )
    await scene.set_levels([(TargetType.SCHEDULE, schedule, 10)])
    incident = await scene.open_incident()
    response = await scene.client.get(
        f"/api/v1/incidents/{incident}/pages", headers=scene.cast.bob.headers
    )
    assert response.status_code == 200
    (page,) = response.json()
    assert page["user_id"] == str(scene.cast.alice.id)
    assert page["override_id"] == str(override)
    assert page["schedule_id"] == str(schedule)
    assert (page["level_number"], page["repeat"], page["via"]) == (1, 0, "schedule")


async def test_acknowledge_cancels_the_pending_timer(scene: Scene) -> None:
    incident = await scene.open_incident()
    await scene.advance(minutes=2)
    assert (await scene.act(incident, "acknowledge", scene.cast.bob)).status_code == 200
    assert await scene.pending_timers(incident) == 0
    await scene.advance(hours=1)
    assert who(scene, await scene.pages(incident)) == [("bob", 1, 0)]


async def test_resolve_cancels_the_pending_timer(scene: Scene) -> None:
    incident = await scene.open_incident()
    assert (await scene.act(incident, "resolve", scene.cast.bob)).status_code == 200
    assert await scene.pending_timers(incident) == 0
    await scene.advance(hours=1)
    assert len(await scene.pages(incident)) == 1


async def test_a_timer_claimed_before_the_acknowledgement_fires_nothing(scene: Scene) -> None:
    from tocsin.escalation.step import claim_due_jobs, fire_job

    incident = await scene.open_incident()
    scene.clock.advance(timedelta(minutes=5))
    (claimed,) = await claim_due_jobs(
        scene.engine,
        worker_id="w",
        now=scene.clock.now(),
        lease=timedelta(seconds=60),
        limit=10,
    )
    await scene.act(incident, "acknowledge", scene.cast.bob)
    async with scene.engine.begin() as conn:
        assert await fire_job(conn, claimed, worker_id="w", now=scene.clock.now()) is None
    assert len(await scene.pages(incident)) == 1


async def test_escalate_now_moves_to_the_next_level_and_restarts_the_clock(scene: Scene) -> None:
    incident = await scene.open_incident()
    scene.clock.advance(timedelta(minutes=1))
    response = await scene.act(incident, "escalate", scene.cast.bob, {"note": "need help"})
    assert response.status_code == 200, response.text
    assert response.json()["current_level"] == 2
    await scene.run_worker()  # the worker pages level 2 (tests/escalation/test_by_hand.py)
    assert who(scene, await scene.pages(incident)) == [("bob", 1, 0), ("alice", 2, 0)]
    assert "escalated_now" in await scene.kinds(incident)
    # The old level-1 timer (due at minute 5) is gone; level 2's runs 10 minutes from now.
    await scene.advance(minutes=9)
    assert await scene.pending_timers(incident) == 1
    await scene.advance(minutes=1)
    assert (await scene.kinds(incident))[-1] == "escalation_exhausted"


async def test_escalate_now_refuses_an_acknowledged_incident(scene: Scene) -> None:
    incident = await scene.open_incident()
    await scene.act(incident, "acknowledge", scene.cast.bob)
    response = await scene.act(incident, "escalate", scene.cast.bob)
    assert response.status_code == 409
    assert "acknowledged" in response.json()["detail"]


async def test_reassign_to_a_user_pages_them_and_stops_the_policy(scene: Scene) -> None:
    incident = await scene.open_incident()
    response = await scene.act(
        incident, "reassign", scene.cast.bob, {"user_id": str(scene.carol.id)}
    )
    assert response.status_code == 200, response.text
    assert response.json()["assigned_user_id"] == str(scene.carol.id)
    await scene.run_worker()
    pages = await scene.pages(incident)
    assert who(scene, pages) == [("bob", 1, 0), ("carol", None, 0)]
    assert pages[-1].via == "reassign"
    assert await scene.pending_timers(incident) == 0
    await scene.advance(hours=2)
    assert len(await scene.pages(incident)) == 2


async def test_reassign_names_exactly_one_target(scene: Scene) -> None:
    incident = await scene.open_incident()
    response = await scene.act(incident, "reassign", scene.cast.bob, {})
    assert response.status_code == 422
    assert "exactly one" in response.text


async def test_reassign_to_a_policy_restarts_at_its_level_one(scene: Scene) -> None:
    from tests.factories import make_policy

    other = await make_policy(
        scene.engine,
        scene.clock.now(),
        team_id=scene.cast.payments,
        name="Escalate to Carol",
        is_default=False,
        targets=[(TargetType.USER, scene.carol.id)],
        timeout_minutes=15,
    )
    incident = await scene.open_incident()
    await scene.advance(minutes=5)  # Alice, level 2 of the first policy
    await scene.act(incident, "acknowledge", scene.cast.alice)
    response = await scene.act(
        incident, "reassign", scene.cast.alice, {"escalation_policy_id": str(other)}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["escalation_policy_id"], body["current_level"]) == (
        "open",
        str(other),
        1,
    )
    await scene.run_worker()
    assert who(scene, await scene.pages(incident))[-1] == ("carol", 1, 0)
    await scene.advance(minutes=15)
    assert (await scene.kinds(incident))[-1] == "escalation_exhausted"


async def test_reassign_to_a_policy_of_another_team_is_refused(scene: Scene) -> None:
    from tests.factories import make_policy, make_team

    team = await make_team(scene.engine, scene.clock.now(), name="Search")
    foreign = await make_policy(scene.engine, scene.clock.now(), team_id=team)
    incident = await scene.open_incident()
    response = await scene.act(
        incident, "reassign", scene.cast.bob, {"escalation_policy_id": str(foreign)}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "escalation_policy_id"]
    assert len(await scene.pages(incident)) == 1


async def test_an_acknowledgement_times_out_and_escalation_resumes(scene: Scene) -> None:
    await scene.set_levels(
        [(TargetType.USER, scene.cast.bob.id, 5), (TargetType.USER, scene.cast.alice.id, 10)],
        ack_timeout=30,
    )
    incident = await scene.open_incident()
    await scene.advance(minutes=1)
    await scene.act(incident, "acknowledge", scene.cast.bob)
    await scene.advance(minutes=29)
    assert len(await scene.pages(incident)) == 1
    await scene.advance(minutes=1)
    detail = (
        await scene.client.get(f"/api/v1/incidents/{incident}", headers=scene.cast.bob.headers)
    ).json()
    assert detail["status"] == "open"
    assert detail["acknowledged_at"] is None
    unack = [e for e in detail["timeline"] if e["kind"] == "unacknowledged"]
    assert unack[0]["note"] == "the acknowledgement timed out"
    assert unack[0]["actor_type"] == "system"
    assert who(scene, await scene.pages(incident)) == [("bob", 1, 0), ("bob", 1, 0)]
    await scene.advance(minutes=5)
    assert who(scene, await scene.pages(incident))[-1] == ("alice", 2, 0)


async def test_resolving_an_acknowledged_incident_cancels_its_ack_timeout(scene: Scene) -> None:
    await scene.set_levels([(TargetType.USER, scene.cast.bob.id, 5)], ack_timeout=30)
    incident = await scene.open_incident()
    await scene.act(incident, "acknowledge", scene.cast.bob)
    assert await scene.pending_timers(incident) == 1
    await scene.act(incident, "resolve", scene.cast.bob)
    assert await scene.pending_timers(incident) == 0
    await scene.advance(hours=1)
    assert len(await scene.pages(incident)) == 1


async def test_unacknowledge_reopens_pages_again_and_resumes(scene: Scene) -> None:
    incident = await scene.open_incident()
    await scene.act(incident, "acknowledge", scene.cast.bob)
    await scene.advance(minutes=20)
    response = await scene.act(incident, "unacknowledge", scene.cast.bob)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "open"
    await scene.run_worker()  # the worker pages again (test_transitions.py: the handler not)
    assert who(scene, await scene.pages(incident)) == [("bob", 1, 0), ("bob", 1, 0)]
    await scene.advance(minutes=5)
    assert who(scene, await scene.pages(incident))[-1] == ("alice", 2, 0)


async def test_unacknowledge_refuses_an_open_incident(scene: Scene) -> None:
    incident = await scene.open_incident()
    response = await scene.act(incident, "unacknowledge", scene.cast.bob)
    assert response.status_code == 409


async def test_a_running_incident_keeps_the_policy_it_opened_with(scene: Scene) -> None:
    incident = await scene.open_incident()
    # The policy changes: level 2 now pages Carol, after 1 minute.
    await scene.set_levels(
        [(TargetType.USER, scene.cast.bob.id, 1), (TargetType.USER, scene.carol.id, 1)]
    )
    await scene.advance(minutes=5)
    assert who(scene, await scene.pages(incident)) == [("bob", 1, 0), ("alice", 2, 0)]
    newer = await scene.open_incident("Another problem")
    await scene.advance(minutes=1)
    assert who(scene, await scene.pages(newer)) == [("bob", 1, 0), ("carol", 2, 0)]


async def test_a_policy_can_carry_an_acknowledgement_timeout(scene: Scene) -> None:
    body = {
        "team_id": str(scene.cast.payments),
        "name": "With ack timeout",
        "ack_timeout_minutes": 45,
        "levels": [{"level_number": 1, "target_type": "entire_team"}],
    }
    response = await scene.client.post(
        "/api/v1/escalation-policies", json=body, headers=scene.cast.alice.headers
    )
    assert response.status_code == 201, response.text
    assert response.json()["ack_timeout_minutes"] == 45
    body["ack_timeout_minutes"] = 0
    response = await scene.client.post(
        "/api/v1/escalation-policies", json=body, headers=scene.cast.alice.headers
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "ack_timeout_minutes"]
