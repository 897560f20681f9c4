"""What the incident endpoints accept and return."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tocsin.alerts.limits import MAX_DEPTH, clip, depth_beyond
from tocsin.alerts.models import AlertStatus, Severity
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
    snoozed_until: datetime | None = Field(
        default=None, description="Acknowledged and snoozed: it returns to open and pages then"
    )
    group_key: str | None = Field(
        default=None,
        description="Set when it holds alerts of several fingerprints (grouped, merged or "
        "split): it then resolves when every one of its alerts has resolved",
    )
    urgency: str | None = Field(
        default=None,
        description="high or low: which notification rules its pages use, decided when it "
        "opened (the service's urgency, its support hours then, or the severity); null for "
        "incidents older than this field, which are paged by severity and service",
    )


class TeamRef(BaseModel):
    id: uuid.UUID
    name: str


class ServiceRef(BaseModel):
    id: uuid.UUID
    name: str
    routing_key: str
    team: TeamRef


class UserRef(BaseModel):
    id: uuid.UUID
    name: str


class IncidentListItem(IncidentOut):
    """An incident in the list: with its team, its service as the detail shows it, and the
    people paged at its current level."""

    team: TeamRef
    service: ServiceRef | None
    paged: list[UserRef] = Field(
        default_factory=list, description="Paged at the current level and cycle"
    )


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


class PageOut(BaseModel):
    """One person paged: by which level and cycle (none for a direct reassignment), when,
    and how the level's target led to them."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    incident_id: uuid.UUID
    user_id: uuid.UUID
    level_number: int | None
    repeat: int
    via: str
    schedule_id: uuid.UUID | None
    layer_id: uuid.UUID | None
    override_id: uuid.UUID | None
    created_at: datetime


class IncidentAlertOut(BaseModel):
    """One alert of the incident as people think of it: every receipt of one fingerprint from
    one integration, with its status now (its latest receipt's)."""

    alert_id: uuid.UUID = Field(description="Its latest receipt; split it out by this id")
    integration_id: uuid.UUID
    fingerprint: str
    status: AlertStatus = Field(description="firing or resolved: its latest receipt's status")
    title: str
    severity: Severity
    source: str
    tags: dict[str, Any]
    received: int = Field(description="How many times it was received in this incident")
    first_received_at: datetime
    last_received_at: datetime
    grouped_reason: str | None = Field(
        default=None,
        description="How it came into the incident when another alert opened it: the group",
    )

    @field_validator("tags", mode="before")
    @classmethod
    def _cut_too_deep(cls, value: Any) -> Any:
        return clip(value) if depth_beyond(value, MAX_DEPTH) else value


class IncidentDetail(IncidentOut):
    team: TeamRef
    service: ServiceRef | None
    alerts: list[AlertOut] = Field(description="The most recent alerts, newest first")
    timeline: list[TimelineEventOut] = Field(description="Oldest first")
    pages: list[PageOut] = Field(default_factory=list, description="People paged, oldest first")
    grouped_alerts: list[IncidentAlertOut] = Field(
        default_factory=list,
        description="Each distinct alert of the incident with its status now, first received "
        "first (the same list as GET /api/v1/incidents/{id}/alerts)",
    )


class ActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(default="", max_length=2000)


class PersonOrPolicyIn(ActionIn):
    """A person or an escalation policy to hand the incident to (reassign, add responder)."""

    user_id: uuid.UUID | None = None
    escalation_policy_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _exactly_one_target(self) -> Self:
        if (self.user_id is None) == (self.escalation_policy_id is None):
            raise ValueError("give exactly one of user_id or escalation_policy_id")
        return self

    @classmethod
    def from_choice(cls, choice: str, note: str) -> Self:
        """From a page's one choice field: "user:<id>" or "policy:<id>"."""
        kind, _, raw = choice.partition(":")
        values: dict[str, Any] = {"note": note}
        if kind == "user":
            values["user_id"] = raw
        elif kind == "policy":
            values["escalation_policy_id"] = raw
        return cls.model_validate(values)


class ReassignIn(PersonOrPolicyIn):
    """Exactly one of: `user_id` (page that person, stop the policy) or
    `escalation_policy_id` (escalate through that policy from level 1)."""


class MergeIn(ActionIn):
    """The incidents to merge into this one: their alerts move here and they resolve."""

    source_ids: list[uuid.UUID] = Field(min_length=1, max_length=50)

    @field_validator("source_ids")
    @classmethod
    def _distinct(cls, value: list[uuid.UUID]) -> list[uuid.UUID]:
        if len(set(value)) != len(value):
            raise ValueError("names an incident twice")
        return value


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(max_length=10_000)

    @field_validator("note")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a note needs some text")
        return value


class IncidentPage(BaseModel):
    items: list[IncidentListItem]
    next_cursor: str | None = None


class ResponderIn(PersonOrPolicyIn):
    """Exactly one of: `user_id` (a manager or responder of the incident's team: paged now)
    or `escalation_policy_id` (a policy of the team: its first level with someone is paged
    now). The incident's own escalation goes on as before."""


class PriorityIn(ActionIn):
    """The incident's new priority (a severity)."""

    priority: Severity
