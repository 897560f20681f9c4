"""A timer that keeps failing is parked after `timer_max_attempts` tries: never retried
again, counted in /metrics and `tocsin status`, and its incident's timeline says paging is
stuck. A database conflict (PostgreSQL serialization failure) is retried and not counted."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from tests.escalation.conftest import Scene
from tocsin.db import read_only
from tocsin.escalation import step as escalation_step
from tocsin.escalation.models import EscalationJob, IncidentEscalation, JobOutcome
from tocsin.escalation.step import claim_due_jobs, fire_due_escalations, is_retryable_conflict
from tocsin.operations.status import gather_status
from tocsin.operations.status_text import render


async def break_policy_snapshot(scene: Scene, incident: str) -> None:
    """A snapshot no code can read: every firing of the incident's timer raises."""
    async with scene.engine.begin() as conn:
        await conn.execute(
            sa.update(IncidentEscalation)
            .where(IncidentEscalation.incident_id == uuid.UUID(incident))
            .values(policy_snapshot={"broken": True})
        )


async def timer_row(scene: Scene, incident: str) -> sa.Row[tuple[int, bool, str | None]]:
    """The timer that takes the incident to level 2 (due 5 minutes after it opened)."""
    async with scene.engine.connect() as conn:
        return (
            await conn.execute(
                sa.select(
                    EscalationJob.attempts, EscalationJob.completed, EscalationJob.outcome
                ).where(
                    EscalationJob.incident_id == uuid.UUID(incident),
                    EscalationJob.scheduled_level == 2,
                )
            )
        ).one()


async def test_a_timer_that_keeps_failing_is_parked_and_the_timeline_says_paging_is_stuck(
    scene: Scene,
) -> None:
    scene.settings.timer_max_attempts = 3
    incident = await scene.open_incident()
    await break_policy_snapshot(scene, incident)
    scene.clock.advance(timedelta(minutes=5))
    ctx = scene.context()
    for attempt in (1, 2):
        assert await fire_due_escalations(ctx) is True
        row = await timer_row(scene, incident)
        assert (row.attempts, row.completed) == (attempt, False), "retried after its lease"
        scene.clock.advance(timedelta(seconds=61))
    assert await fire_due_escalations(ctx) is True
    row = await timer_row(scene, incident)
    assert (row.attempts, row.completed, row.outcome) == (3, True, JobOutcome.PARKED)

    # Parked: never claimed again, however long we wait.
    scene.clock.advance(timedelta(hours=2))
    assert await fire_due_escalations(ctx) is False
    assert (await timer_row(scene, incident)).attempts == 3

    [stuck] = [e for e in await scene.timeline(incident) if e["kind"] == "paging_stuck"]
    assert "Paging is stuck" in stuck["note"] and "3 times" in stuck["note"]

    metrics = (await scene.client.get("/metrics")).text.splitlines()
    assert "tocsin_escalation_timers_parked 1.0" in metrics
    async with read_only(scene.engine).connect() as conn:
        report = await gather_status(conn, now=scene.clock.now(), schema_head=None)
    assert [(p.kind, p.count) for p in report.parked if p.kind == "parked_timers"] == [
        ("parked_timers", 1)
    ]
    assert "parked timers" in render(report, threshold=timedelta(seconds=60))


async def test_a_timer_whose_workers_died_each_time_is_parked_without_firing(
    scene: Scene,
) -> None:
    scene.settings.timer_max_attempts = 2
    incident = await scene.open_incident()
    scene.clock.advance(timedelta(minutes=5))
    for worker in ("dead-1", "dead-2"):  # each claims it and dies before firing
        claimed = await claim_due_jobs(
            scene.engine,
            worker_id=worker,
            now=scene.clock.now(),
            lease=timedelta(seconds=60),
            limit=10,
        )
        assert len(claimed) == 1
        scene.clock.advance(timedelta(seconds=61))
    await scene.run_worker("worker-3")
    assert [p.level for p in await scene.pages(incident)] == [1], "not fired a third time"
    assert (await timer_row(scene, incident)).outcome == JobOutcome.PARKED
    assert "paging_stuck" in await scene.kinds(incident)


async def test_a_timer_given_back_at_shutdown_has_not_used_up_a_try(scene: Scene) -> None:
    incident = await scene.open_incident()
    scene.clock.advance(timedelta(minutes=5))
    await claim_due_jobs(
        scene.engine, worker_id="stopping", now=scene.clock.now(), lease=timedelta(60), limit=5
    )
    await escalation_step.release_claims(scene.engine, worker_id="stopping")
    assert (await timer_row(scene, incident)).attempts == 0


class SerializationFailure(Exception):
    sqlstate = "40001"


async def test_a_serialization_failure_is_retried_at_once_and_not_counted(
    scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    incident = await scene.open_incident()
    scene.clock.advance(timedelta(minutes=5))
    real_fire = escalation_step.fire_job
    conflicts = []

    async def conflicting_once(*args: object, **kwargs: object) -> object:
        if not conflicts:
            conflicts.append(1)
            raise DBAPIError("UPDATE ...", None, SerializationFailure())
        return await real_fire(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(escalation_step, "fire_job", conflicting_once)
    await scene.run_worker()
    assert conflicts == [1]
    assert [p.level for p in await scene.pages(incident)] == [1, 2], "fired on the retry"
    row = await timer_row(scene, incident)
    assert (row.attempts, row.completed, row.outcome) == (1, True, JobOutcome.FIRED)


def test_only_serialization_failures_and_deadlocks_count_as_conflicts() -> None:
    class Deadlock(Exception):
        sqlstate = "40P01"

    class Unique(Exception):
        sqlstate = "23505"

    assert is_retryable_conflict(DBAPIError("x", None, Deadlock()))
    assert is_retryable_conflict(DBAPIError("x", None, SerializationFailure()))
    assert not is_retryable_conflict(DBAPIError("x", None, Unique()))
    assert not is_retryable_conflict(KeyError("levels"))
