"""Acknowledge or resolve by dedup key, as PagerDuty and Opsgenie events do.

The scope is (integration, dedup key), and only open or acknowledged incidents count: a
signal for a key with nothing open changes nothing, which is what PagerDuty does too.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from tocsin.alerts.models import Severity
from tocsin.alerts.normalised import NormalisedAlert, fingerprint
from tocsin.incidents.dedup import find_active_incidents
from tocsin.incidents.lifecycle import Action, IllegalTransition, apply_transition
from tocsin.incidents.timeline import Actor
from tocsin.integrations.adapters.base import Signal, SignalAction

_ACTIONS = {SignalAction.ACKNOWLEDGE: Action.ACKNOWLEDGE, SignalAction.RESOLVE: Action.RESOLVE}


def dedup_fingerprint(dedup_key: str) -> str:
    """The fingerprint an alert with this dedup key was stored under."""
    return fingerprint(NormalisedAlert(title="", severity=Severity.INFO, dedup_key=dedup_key))


async def apply_signal(
    conn: AsyncConnection,
    integration_id: uuid.UUID,
    signal: Signal,
    *,
    source: str,
    now: datetime,
) -> list[uuid.UUID]:
    """Apply the signal to every active incident of its key; the ids of those it changed."""
    incident_ids = await find_active_incidents(
        conn, integration_id, dedup_fingerprint(signal.dedup_key)
    )
    changed = []
    for incident_id in incident_ids:
        try:
            await apply_transition(
                conn,
                incident_id,
                _ACTIONS[signal.action],
                actor=Actor.integration(integration_id),
                now=now,
                note=f"{signal.action.value} event from {source}",
            )
        except IllegalTransition:
            continue  # already acknowledged (or resolved a moment ago): nothing to do
        changed.append(incident_id)
    return changed
