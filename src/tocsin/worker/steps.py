"""Every kind of due work the worker loop runs, one step per domain."""

from __future__ import annotations

from tocsin.escalation.step import fire_due_escalations
from tocsin.integrations.heartbeats import fire_late_heartbeats
from tocsin.notifications.delivery import send_due_deliveries
from tocsin.worker.context import Step


def all_steps() -> list[Step]:
    """The steps the loop runs in turn, each until it finds no more work."""
    return [
        fire_due_escalations,
        fire_late_heartbeats,
        send_due_deliveries,
    ]
