"""Every kind of due work the worker loop runs, one step per domain, each declared with when
it is next due and what it gives back on shutdown."""

from __future__ import annotations

from datetime import datetime

from tocsin.escalation import step as escalation
from tocsin.heartbeats import watch as heartbeats
from tocsin.noise.expiry import end_silences_and_snoozes
from tocsin.notifications import delivery
from tocsin.retention.purge import retention_step
from tocsin.store.connection import Database
from tocsin.worker.context import WorkerStep


async def _timers_due(engine: Database, now: datetime) -> datetime | None:
    return await escalation.next_due_at(engine, now=now)


async def _release_timers(engine: Database, worker_id: str) -> int:
    return await escalation.release_claims(engine, worker_id=worker_id)


async def _monitors_due(engine: Database, now: datetime) -> datetime | None:
    return await heartbeats.next_due_at(engine, now=now)


async def _release_monitors(engine: Database, worker_id: str) -> int:
    return await heartbeats.release_claims(engine, worker_id=worker_id)


async def _deliveries_due(engine: Database, now: datetime) -> datetime | None:
    return await delivery.next_due_at(engine, now=now)


async def _release_deliveries(engine: Database, worker_id: str) -> int:
    return await delivery.release_claims(engine, worker_id=worker_id)


def all_steps() -> list[WorkerStep]:
    """The steps the loop runs, taking turns one batch each until none finds more work."""
    retention = retention_step()  # rests between checks; see tocsin.retention.purge
    return [
        WorkerStep(
            "escalation",
            escalation.fire_due_escalations,
            next_due=_timers_due,
            release=_release_timers,
        ),
        WorkerStep(
            "heartbeats",
            heartbeats.fire_late_heartbeats,
            next_due=_monitors_due,
            release=_release_monitors,
        ),
        WorkerStep(
            "notifications",
            delivery.send_due_deliveries,
            next_due=_deliveries_due,
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
