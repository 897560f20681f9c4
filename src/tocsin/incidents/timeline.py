"""Appending to an incident's timeline: every state change says who, when, from and to."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert

from tocsin.db import new_ordered_id
from tocsin.incidents.models import ActorType, IncidentEvent
from tocsin.store.connection import Connection


class EventKind(enum.StrEnum):
    CREATED = "created"
    ALERT_ADDED = "alert_added"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    CLOSED = "closed"
    REASSIGNED = "reassigned"
    ESCALATION_SCHEDULED = "escalation_scheduled"
    NO_ESCALATION_POLICY = "no_escalation_policy"
    PAGED = "paged"
    LEVEL_SKIPPED = "level_skipped"
    ESCALATION_EXHAUSTED = "escalation_exhausted"
    ESCALATED_NOW = "escalated_now"
    # A change event (a deploy) on the incident's service: context, never a state change.
    CHANGE_EVENT = "change_event"
    UNACKNOWLEDGED = "unacknowledged"
    POLICY_REASSIGNED = "policy_reassigned"
    NOTIFICATION_SENT = "notification_sent"
    NOTIFICATION_RETRYING = "notification_retrying"
    NOTIFICATION_FAILED = "notification_failed"
    # A person's note: context, never a state change.
    NOTE = "note"
    # An escalation timer failed again and again and was parked: nobody is being paged.
    PAGING_STUCK = "paging_stuck"
    # An acknowledged incident put aside until a time (noise/snooze.py); it pages again then.
    SNOOZED = "snoozed"
    # A person's change of the incident's priority (its severity), with from and to.
    PRIORITY_CHANGED = "priority_changed"
    # Someone asked for one more person (or a policy's first level) to be paged now.
    RESPONDER_ADDED = "responder_added"
    # A low-urgency page went to the person's quiet channel only: they had been paged their
    # limit of times in the last hour (notifications/downgrade.py).
    PAGE_DOWNGRADED = "page_downgraded"
    # Merged by hand (noise/merging.py): on the target, naming its sources; on each source,
    # naming the target it went into (it is resolved too).
    MERGED = "merged"
    MERGED_INTO = "merged_into"
    # One alert split out by hand into a new incident: on the incident it left, naming the new
    # one (whose `created` entry names where it came from).
    SPLIT = "split"


@dataclass(frozen=True)
class Actor:
    """Who or what caused a change."""

    type: ActorType
    id: uuid.UUID | None = None

    @classmethod
    def user(cls, user_id: uuid.UUID) -> Actor:
        return cls(ActorType.USER, user_id)

    @classmethod
    def integration(cls, integration_id: uuid.UUID) -> Actor:
        return cls(ActorType.INTEGRATION, integration_id)


SYSTEM = Actor(ActorType.SYSTEM)

# The note of a NO_ESCALATION_POLICY entry: whoever opens an incident that no policy pages
# (ingest, a split, the worker) says the same.
NO_POLICY_NOTE = "the team has no active default policy and the service names none"


@dataclass(frozen=True)
class TimelineEntry:
    kind: EventKind
    actor: Actor
    old_status: str | None = None
    new_status: str | None = None
    note: str = ""
    data: dict[str, Any] = field(default_factory=dict)


async def append_events(
    conn: Connection, incident_id: uuid.UUID, entries: list[TimelineEntry], *, now: datetime
) -> None:
    """Write entries to the incident's timeline, all stamped `now`, in one statement."""
    await append_to_timelines(conn, [(incident_id, entry) for entry in entries], now=now)


# Built once: a statement object reused keeps its compiled form's cache key.
_INSERT_EVENTS = insert(IncidentEvent)


async def append_to_timelines(
    conn: Connection, entries: list[tuple[uuid.UUID, TimelineEntry]], *, now: datetime
) -> None:
    """Write entries to the timelines of several incidents, in order, in one statement."""
    if not entries:
        return
    await conn.execute(
        _INSERT_EVENTS,
        [
            {
                "id": new_ordered_id(),
                "incident_id": incident_id,
                "at": now,
                "kind": entry.kind.value,
                "actor_type": entry.actor.type,
                "actor_id": entry.actor.id,
                "old_status": entry.old_status,
                "new_status": entry.new_status,
                "note": entry.note,
                "data": entry.data,
            }
            for incident_id, entry in entries
        ],
    )
