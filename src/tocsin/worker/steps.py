"""Every kind of due work the worker loop runs, one step per domain."""

from __future__ import annotations

from tocsin.escalation.step import fire_due_escalations
from tocsin.heartbeats.watch import fire_late_heartbeats
from tocsin.noise.expiry import end_silences_and_snoozes
from tocsin.notifications.delivery import send_due_deliveries
from tocsin.retention.purge import retention_step
from tocsin.worker.context import Step


def all_steps() -> list[Step]:
    """The steps the loop runs, taking turns one batch each until none finds more work."""
    return [
        fire_due_escalations,
        fire_late_heartbeats,
        send_due_deliveries,
        end_silences_and_snoozes,
        retention_step(),  # rests between checks; see tocsin.retention.purge
    ]


def step_names() -> dict[str, Step]:
    """Each step by a short name, for `tocsin worker --steps` (e.g. workers dedicated to
    escalation timers, and others to deliveries)."""
    names = {}
    for step in all_steps():
        module = getattr(step, "__module__", "").split(".")
        names[module[1] if len(module) > 1 else repr(step)] = step
    return names
