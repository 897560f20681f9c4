"""Transitions write rows; the worker reacts. An un-acknowledgement, an acknowledgement's
timeout and a snooze's end put the incident back to OPEN with a RESUME timer due at once,
and the worker pages, as it pages a new incident; the request that caused it pages nobody."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests.conftest import CURRENT_TIME
from tests.escalation.conftest import Scene
from tests.escalation.test_engine import who
from tests.escalation.test_start import post_alert
from tocsin.db import create_session_factory
from tocsin.escalation.models import EscalationState, Page, TargetType
from tocsin.escalation.plan import Verdict, judge_timer
from tocsin.incidents.models import IncidentStatus
from tocsin.noise.expiry import end_silences_and_snoozes
from tocsin.notifications.models import ContactKind, Delivery, DeliveryKind, DeliveryStatus
from tocsin.timers.models import EscalationJob, JobKind

T0 = CURRENT_TIME
ACKED = IncidentStatus.ACKNOWLEDGED


async def pending_kinds(scene: Scene, incident_id: str) -> list[tuple[str, object]]:
    """The incident's pending timers: (kind, due), earliest first."""
    async with scene.engine.connect() as conn:
        rows = await conn.execute(
            sa.select(EscalationJob.kind, EscalationJob.scheduled_for)
            .where(
                EscalationJob.incident_id == uuid.UUID(incident_id),
                EscalationJob.completed.is_(False),
                EscalationJob.cancelled_at.is_(None),
            )
            .order_by(EscalationJob.scheduled_for)
        )
        return [(r.kind.value, r.scheduled_for) for r in rows]


async def page_causes(scene: Scene, incident_id: str) -> list[str]:
    """The kinds of timer behind the incident's pages, sorted ("" for none)."""
    async with scene.engine.connect() as conn:
        rows = await conn.execute(
            sa.select(EscalationJob.kind)
            .select_from(Page)
            .outerjoin(EscalationJob, EscalationJob.id == Page.job_id)
            .where(Page.incident_id == uuid.UUID(incident_id))
        )
        return sorted(r.kind.value if r.kind is not None else "" for r in rows)


async def test_an_unacknowledged_incident_is_paged_again_by_the_worker_not_the_request(
    scene: Scene,
) -> None:
    incident = await scene.open_incident()
    await scene.act(incident, "acknowledge", scene.cast.bob)
    await scene.advance(minutes=20)

    response = await scene.act(incident, "unacknowledge", scene.cast.bob)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "open"
    # The request wrote the transition, its timeline entry and a timer due now; no page.
    assert who(scene, await scene.pages(incident)) == [("bob", 1, 0)]
    assert await pending_kinds(scene, incident) == [("resume", T0 + timedelta(minutes=20))]

    await scene.run_worker()
    pages = await scene.pages(incident)
    assert who(scene, pages) == [("bob", 1, 0), ("bob", 1, 0)]
    assert pages[-1].at == T0 + timedelta(minutes=20)
    assert await page_causes(scene, incident) == ["resume", "start"]
    kinds = await scene.kinds(incident)
    assert kinds[-4:] == ["acknowledged", "unacknowledged", "paged", "escalation_scheduled"]
    await scene.advance(minutes=4, seconds=59)
    assert len(await scene.pages(incident)) == 2
    await scene.advance(seconds=1)
    assert who(scene, await scene.pages(incident))[-1] == ("alice", 2, 0)


async def test_an_acknowledgement_timeout_fires_in_the_worker_and_the_worker_pages(
    scene: Scene,
) -> None:
    await scene.set_levels(
        [(TargetType.USER, scene.cast.bob.id, 5), (TargetType.USER, scene.cast.alice.id, 10)],
        ack_timeout=30,
    )
    incident = await scene.open_incident()
    response = await scene.act(incident, "acknowledge", scene.cast.bob)
    assert response.status_code == 200
    assert await pending_kinds(scene, incident) == [("ack_timeout", T0 + timedelta(minutes=30))]
    timeline = await scene.timeline(incident)
    assert [e["kind"] for e in timeline[-2:]] == ["acknowledged", "escalation_scheduled"]
    assert timeline[-1]["data"]["at"] == (T0 + timedelta(minutes=30)).isoformat()

    await scene.advance(minutes=29, seconds=59)
    assert len(await scene.pages(incident)) == 1
    await scene.advance(seconds=1)
    detail = (
        await scene.client.get(f"/api/v1/incidents/{incident}", headers=scene.cast.bob.headers)
    ).json()
    assert detail["status"] == "open"
    assert who(scene, await scene.pages(incident)) == [("bob", 1, 0), ("bob", 1, 0)]
    assert await page_causes(scene, incident) == ["resume", "start"]
    await scene.advance(minutes=5)
    assert who(scene, await scene.pages(incident))[-1] == ("alice", 2, 0)


async def test_an_acknowledgement_timeout_before_the_start_starts_escalation_at_level_one(
    scene: Scene,
) -> None:
    await scene.set_levels([(TargetType.USER, scene.cast.bob.id, 5)], ack_timeout=10)
    incident = await post_alert(scene)
    assert (await scene.act(incident, "acknowledge", scene.cast.bob)).status_code == 200
    await scene.run_worker()
    assert await scene.pages(incident) == []
    assert await pending_kinds(scene, incident) == [("ack_timeout", T0 + timedelta(minutes=10))]
    await scene.advance(minutes=10)
    assert who(scene, await scene.pages(incident)) == [("bob", 1, 0)]


async def test_a_snoozed_incident_reopens_and_the_escalation_step_pages_it(scene: Scene) -> None:
    await scene.set_levels([(TargetType.USER, scene.cast.bob.id, 30)])
    incident = await scene.open_incident()
    await scene.act(incident, "acknowledge", scene.cast.bob)
    until = scene.clock.now() + timedelta(hours=1)
    snoozed = await scene.client.post(
        f"/api/v1/incidents/{incident}/snooze",
        json={"until": until.isoformat()},
        headers=scene.cast.bob.headers,
    )
    assert snoozed.status_code == 204, snoozed.text
    scene.clock.advance(timedelta(hours=1))
    assert await end_silences_and_snoozes(scene.context())
    # Reopened by the noise step; paging is left to the escalation step.
    assert len(await scene.pages(incident)) == 1
    assert [kind for kind, _ in await pending_kinds(scene, incident)] == ["resume"]
    await scene.run_worker()
    assert who(scene, await scene.pages(incident)) == [("bob", 1, 0), ("bob", 1, 0)]


async def test_an_acknowledgement_before_the_resume_fires_pages_nobody(scene: Scene) -> None:
    incident = await scene.open_incident()
    await scene.act(incident, "acknowledge", scene.cast.bob)
    await scene.act(incident, "unacknowledge", scene.cast.bob)
    assert (await scene.act(incident, "acknowledge", scene.cast.alice)).status_code == 200
    await scene.run_worker()
    assert len(await scene.pages(incident)) == 1
    assert await pending_kinds(scene, incident) == []
    await scene.advance(hours=1)
    assert len(await scene.pages(incident)) == 1


async def test_acknowledge_and_resolve_requests_write_no_pages_and_cancel_unsent_ones(
    scene: Scene,
) -> None:
    incident = await scene.open_incident()
    incident_id = uuid.UUID(incident)
    now = scene.clock.now()
    async with create_session_factory(scene.engine)() as session, session.begin():
        # A page's delivery still waiting (a rule's delay): the acknowledgement stops it.
        session.add(
            Delivery(
                kind=DeliveryKind.PAGE,
                idempotency_key=str(uuid.uuid4()),
                incident_id=incident_id,
                user_id=scene.cast.bob.id,
                contact_kind=ContactKind.EMAIL,
                address="bob@example.com",
                status=DeliveryStatus.PENDING,
                due_at=now + timedelta(minutes=3),
                payload={},
                created_at=now,
                updated_at=now,
            )
        )
    for action in ("acknowledge", "unacknowledge", "acknowledge", "resolve"):
        assert (await scene.act(incident, action, scene.cast.bob)).status_code == 200
        assert len(await scene.pages(incident)) == 1
    async with scene.engine.connect() as conn:
        statuses = (
            (
                await conn.execute(
                    sa.select(Delivery.status).where(Delivery.incident_id == incident_id)
                )
            )
            .scalars()
            .all()
        )
    assert statuses and set(statuses) == {DeliveryStatus.CANCELLED}
    assert await pending_kinds(scene, incident) == []


# What `tocsin serve` and `tocsin worker` import first (cli.py builds both through these).
ATTACHED = """
import importlib, sys
importlib.import_module(sys.argv[1])
from tocsin.timers import attached
attached.ack_timeout_source()
attached.page_stopper()
"""


@pytest.mark.parametrize("process", ["tocsin.app", "tocsin.runtime"])
def test_the_layers_above_the_timers_attach_what_a_transition_needs(process: str) -> None:
    # The timers know no table above them: escalation and notifications register the
    # acknowledgement timeout and the stopping of unsent pages when they are imported.
    found = subprocess.run([sys.executable, "-c", ATTACHED, process], capture_output=True)
    assert found.returncode == 0, found.stderr.decode()


@pytest.mark.parametrize(
    ("kind", "status", "state", "seq", "expected"),
    [
        (JobKind.RESUME, IncidentStatus.OPEN, EscalationState.ESCALATING, 3, Verdict.RESUME),
        (JobKind.RESUME, IncidentStatus.OPEN, None, None, Verdict.RESUME),
        (JobKind.RESUME, IncidentStatus.ACKNOWLEDGED, None, None, Verdict.STALE),
        (JobKind.RESUME, IncidentStatus.RESOLVED, EscalationState.EXHAUSTED, 3, Verdict.STALE),
        (JobKind.ACK_TIMEOUT, IncidentStatus.ACKNOWLEDGED, None, None, Verdict.REOPEN),
        (
            JobKind.ACK_TIMEOUT,
            IncidentStatus.ACKNOWLEDGED,
            EscalationState.DIRECT,
            0,
            Verdict.REOPEN,
        ),
        (
            JobKind.ACK_TIMEOUT,
            IncidentStatus.ACKNOWLEDGED,
            EscalationState.ESCALATING,
            1,
            Verdict.STALE,
        ),
        (JobKind.ACK_TIMEOUT, IncidentStatus.OPEN, EscalationState.ESCALATING, 0, Verdict.STALE),
    ],
)
def test_which_resume_and_ack_timeout_timers_still_apply(
    kind: JobKind,
    status: IncidentStatus,
    state: EscalationState | None,
    seq: int | None,
    expected: Verdict,
) -> None:
    assert judge_timer(kind=kind, job_seq=0, status=status, state=state, seq=seq) == expected
