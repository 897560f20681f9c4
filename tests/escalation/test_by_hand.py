"""Escalate now and reassign write rows; the worker pages. The request moves the escalation
(its level, its assignee, its policy) and writes an ESCALATE or REASSIGN timer due at once;
the worker fires it and pages, once, even when a worker dies holding it; an acknowledgement
that comes first cancels it, and nobody is paged."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from tests.conftest import CURRENT_TIME
from tests.escalation.conftest import Scene
from tests.escalation.test_engine import who
from tests.escalation.test_transitions import page_causes, pending_kinds
from tests.factories import make_policy
from tocsin.escalation.models import EscalationState, TargetType
from tocsin.escalation.plan import Verdict, judge_timer
from tocsin.escalation.step import claim_due_jobs, fire_due_escalations, fire_job
from tocsin.incidents.models import IncidentStatus
from tocsin.timers.models import JobKind

T0 = CURRENT_TIME


async def carols_policy(scene: Scene) -> uuid.UUID:
    return await make_policy(
        scene.engine,
        scene.clock.now(),
        team_id=scene.cast.payments,
        name="Escalate to Carol",
        is_default=False,
        targets=[(TargetType.USER, scene.carol.id)],
        timeout_minutes=15,
    )


async def test_escalate_now_writes_a_timer_and_the_worker_pages_the_next_level_once(
    scene: Scene,
) -> None:
    incident = await scene.open_incident()
    scene.clock.advance(timedelta(minutes=1))
    response = await scene.act(incident, "escalate", scene.cast.bob, {"note": "need help"})
    assert response.status_code == 200, response.text
    assert response.json()["current_level"] == 2
    # The request moved the level and wrote its timeline entry and a timer due now; no page.
    assert who(scene, await scene.pages(incident)) == [("bob", 1, 0)]
    assert await pending_kinds(scene, incident) == [("escalate", T0 + timedelta(minutes=1))]
    assert (await scene.kinds(incident))[-1] == "escalated_now"

    await scene.run_worker()
    pages = await scene.pages(incident)
    assert who(scene, pages) == [("bob", 1, 0), ("alice", 2, 0)]
    assert pages[-1].at == T0 + timedelta(minutes=1)
    assert await page_causes(scene, incident) == ["escalate", "start"]
    assert (await scene.kinds(incident))[-3:] == ["escalated_now", "paged", "escalation_scheduled"]
    await scene.run_worker()
    assert len(await scene.pages(incident)) == 2


async def test_escalate_now_twice_before_the_worker_pages_the_next_level_once(
    scene: Scene,
) -> None:
    incident = await scene.open_incident()
    for person in (scene.cast.bob, scene.cast.alice):
        response = await scene.act(incident, "escalate", person)
        assert response.status_code == 200, response.text
        assert response.json()["current_level"] == 2
    await scene.run_worker()
    assert who(scene, await scene.pages(incident)) == [("bob", 1, 0), ("alice", 2, 0)]
    assert "escalation_exhausted" not in await scene.kinds(incident)
    # Once it has paged, escalating again moves on: past the last level, exhausted.
    assert (await scene.act(incident, "escalate", scene.cast.bob)).status_code == 200
    await scene.run_worker()
    assert (await scene.kinds(incident))[-1] == "escalation_exhausted"
    assert len(await scene.pages(incident)) == 2


async def test_reassign_to_a_person_writes_a_timer_and_the_worker_pages_them_once(
    scene: Scene,
) -> None:
    incident = await scene.open_incident()
    response = await scene.act(
        incident, "reassign", scene.cast.bob, {"user_id": str(scene.carol.id)}
    )
    assert response.status_code == 200, response.text
    assert response.json()["assigned_user_id"] == str(scene.carol.id)
    assert who(scene, await scene.pages(incident)) == [("bob", 1, 0)]
    assert await pending_kinds(scene, incident) == [("reassign", T0)]
    assert (await scene.kinds(incident))[-1] == "reassigned"

    await scene.run_worker()
    pages = await scene.pages(incident)
    assert who(scene, pages) == [("bob", 1, 0), ("carol", None, 0)]
    assert pages[-1].via == "reassign"
    assert await page_causes(scene, incident) == ["reassign", "start"]
    await scene.advance(hours=2)
    assert len(await scene.pages(incident)) == 2


async def test_reassign_to_a_policy_writes_a_timer_and_the_worker_pages_its_level_one(
    scene: Scene,
) -> None:
    other = await carols_policy(scene)
    incident = await scene.open_incident()
    response = await scene.act(
        incident, "reassign", scene.cast.bob, {"escalation_policy_id": str(other)}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["escalation_policy_id"], body["current_level"]) == (str(other), 1)
    assert who(scene, await scene.pages(incident)) == [("bob", 1, 0)]
    assert await pending_kinds(scene, incident) == [("escalate", T0)]
    assert (await scene.kinds(incident))[-1] == "policy_reassigned"

    await scene.run_worker()
    assert who(scene, await scene.pages(incident)) == [("bob", 1, 0), ("carol", 1, 0)]
    assert await page_causes(scene, incident) == ["escalate", "start"]
    await scene.run_worker()
    assert len(await scene.pages(incident)) == 2


@pytest.mark.parametrize("action", ["escalate", "reassign to a person", "reassign to a policy"])
async def test_an_acknowledgement_before_the_worker_runs_means_no_page(
    scene: Scene, action: str
) -> None:
    other = await carols_policy(scene)
    incident = await scene.open_incident()
    body = {
        "escalate": None,
        "reassign to a person": {"user_id": str(scene.carol.id)},
        "reassign to a policy": {"escalation_policy_id": str(other)},
    }[action]
    path = action.split()[0]
    assert (await scene.act(incident, path, scene.cast.bob, body)).status_code == 200
    assert (await scene.act(incident, "acknowledge", scene.cast.bob)).status_code == 200
    await scene.run_worker()
    assert who(scene, await scene.pages(incident)) == [("bob", 1, 0)]
    assert await pending_kinds(scene, incident) == []
    await scene.advance(hours=2)
    assert len(await scene.pages(incident)) == 1


@pytest.mark.parametrize("action", ["escalate", "reassign"])
async def test_a_dead_workers_timer_by_hand_is_fired_once_by_the_next_worker(
    scene: Scene, action: str
) -> None:
    incident = await scene.open_incident()
    body = None if action == "escalate" else {"user_id": str(scene.carol.id)}
    assert (await scene.act(incident, action, scene.cast.bob, body)).status_code == 200
    # worker-1 claims the timer and dies before firing it.
    [claimed] = await claim_due_jobs(
        scene.engine,
        worker_id="worker-1",
        now=scene.clock.now(),
        lease=timedelta(seconds=60),
        limit=10,
    )
    assert claimed.kind == (JobKind.ESCALATE if action == "escalate" else JobKind.REASSIGN)
    worker_2 = scene.context("worker-2")
    assert await fire_due_escalations(worker_2) is False
    assert len(await scene.pages(incident)) == 1
    scene.clock.advance(timedelta(seconds=61))
    assert await fire_due_escalations(worker_2) is True
    expected = ("alice", 2, 0) if action == "escalate" else ("carol", None, 0)
    assert who(scene, await scene.pages(incident)) == [("bob", 1, 0), expected]
    # worker-1 comes back to life: its claim is gone, it fires nothing.
    async with scene.engine.begin() as conn:
        assert await fire_job(conn, claimed, worker_id="worker-1", now=scene.clock.now()) is None
    await scene.run_worker("worker-3")
    assert len(await scene.pages(incident)) == 2


@pytest.mark.parametrize(
    ("kind", "status", "state", "seq", "expected"),
    [
        (JobKind.ESCALATE, IncidentStatus.OPEN, EscalationState.ESCALATING, 0, Verdict.ESCALATE),
        (JobKind.ESCALATE, IncidentStatus.OPEN, EscalationState.ESCALATING, 1, Verdict.STALE),
        (JobKind.ESCALATE, IncidentStatus.OPEN, EscalationState.DIRECT, 0, Verdict.STALE),
        (
            JobKind.ESCALATE,
            IncidentStatus.ACKNOWLEDGED,
            EscalationState.ESCALATING,
            0,
            Verdict.STALE,
        ),
        (JobKind.REASSIGN, IncidentStatus.OPEN, EscalationState.DIRECT, 0, Verdict.REASSIGN),
        (
            JobKind.REASSIGN,
            IncidentStatus.ACKNOWLEDGED,
            EscalationState.DIRECT,
            0,
            Verdict.REASSIGN,
        ),
        (JobKind.REASSIGN, IncidentStatus.OPEN, EscalationState.DIRECT, 1, Verdict.STALE),
        (JobKind.REASSIGN, IncidentStatus.OPEN, EscalationState.ESCALATING, 0, Verdict.STALE),
        (JobKind.REASSIGN, IncidentStatus.RESOLVED, EscalationState.DIRECT, 0, Verdict.STALE),
    ],
)
def test_which_timers_by_hand_still_apply(
    kind: JobKind,
    status: IncidentStatus,
    state: EscalationState,
    seq: int,
    expected: Verdict,
) -> None:
    assert judge_timer(kind=kind, job_seq=0, status=status, state=state, seq=seq) == expected
