"""The event types a stream subscriber receives."""

from __future__ import annotations

import enum


class StreamEvent(enum.StrEnum):
    INCIDENT_CREATED = "incident.created"
    INCIDENT_UPDATED = "incident.updated"
    ALERT_ADDED = "alert.added"
    # Internal, never sent to a subscriber: who may see what changed (the "incident" id is
    # the user concerned, or realtime.hub.EVERYONE); every socket checks its access again.
    ACCESS_CHANGED = "access.changed"
