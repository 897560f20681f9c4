"""What the incident endpoints accept and return."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tocsin.alerts.models import Severity
from tocsin.alerts.schemas import AlertOut
from tocsin.incidents.models import ActorType, IncidentStatus


class IncidentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    number: int
    title: str
    description: str
    status: IncidentStatus
    priority: Severity
    team_id: uuid.UUID
    service_id: uuid.UUID | None
    escalation_policy_id: uuid.UUID | None
    assigned_user_id: uuid.UUID | None
    integration_id: uuid.UUID | None
    alert_count: int
    fingerprint: str
    current_level: int
    current_repeat: int
    created_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    last_escalated_at: datetime | None


class TeamRef(BaseModel):
    id: uuid.UUID
    name: str


class ServiceRef(BaseModel):
    id: uuid.UUID
    name: str
    routing_key: str
    team: TeamRef


class TimelineEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    at: datetime
    kind: str
    actor_type: ActorType
    actor_id: uuid.UUID | None
    old_status: str | None
    new_status: str | None
    note: str
    data: dict[str, Any]


class IncidentDetail(IncidentOut):
    team: TeamRef
    service: ServiceRef | None
    alerts: list[AlertOut] = Field(description="The most recent alerts, newest first")
    timeline: list[TimelineEventOut] = Field(description="Oldest first")


class ActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(default="", max_length=2000)


class ReassignIn(ActionIn):
    user_id: uuid.UUID


class IncidentPage(BaseModel):
    items: list[IncidentOut]
    next_cursor: str | None = None
