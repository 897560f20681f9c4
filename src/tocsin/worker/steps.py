"""Every kind of due work the worker loop runs, one step per domain, each declared with its
table of due rows (when it is next due) and what it gives back on shutdown."""

from __future__ import annotations

from tocsin.escalation import step as escalation
from tocsin.escalation.models import TIMERS
from tocsin.heartbeats import watch as heartbeats
from tocsin.heartbeats.models import MONITORS
from tocsin.noise.expiry import end_silences_and_snoozes
from tocsin.notifications import delivery
from tocsin.notifications.models import DELIVERIES
from tocsin.retention.purge import retention_step
from tocsin.store.connection import Database
from tocsin.worker.context import WorkerStep


async def _release_timers(engine: Database, worker_id: str) -> int:
    return await escalation.release_claims(engine, worker_id=worker_id)


async def _release_monitors(engine: Database, worker_id: str) -> int:
    return await heartbeats.release_claims(engine, worker_id=worker_id)


async def _release_deliveries(engine: Database, worker_id: str) -> int:
    return await delivery.release_claims(engine, worker_id=worker_id)


def all_steps() -> list[WorkerStep]:
    """The steps the loop runs, taking turns one batch each until none finds more work."""
    retention = retention_step()  # rests between checks; see tocsin.retention.purge
    return [
        WorkerStep(
            "escalation",
            escalation.fire_due_escalations,
            due=TIMERS,
            release=_release_timers,
        ),
        WorkerStep(
            "heartbeats",
            heartbeats.fire_late_heartbeats,
            due=MONITORS,
            release=_release_monitors,
        ),
        WorkerStep(
            "notifications",
            delivery.send_due_deliveries,
            due=DELIVERIES,
            release=_release_deliveries,
        ),
        WorkerStep("noise", end_silences_and_snoozes),
        WorkerStep("retention", retention),
    ]


def step_names() -> dict[str, WorkerStep]:
    """Each step by a short name, for `tocsin worker --steps` (e.g. workers dedicated to
    escalation timers, and others to deliveries)."""
    names = {step.name: step for step in all_steps()}
    # The heartbeat step lived in `integrations` before it had a package of its own.
    names["integrations"] = names["heartbeats"]
    return names
