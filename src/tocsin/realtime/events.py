"""The event types a stream subscriber receives."""

from __future__ import annotations

import enum


class StreamEvent(enum.StrEnum):
    INCIDENT_CREATED = "incident.created"
    INCIDENT_UPDATED = "incident.updated"
    ALERT_ADDED = "alert.added"
