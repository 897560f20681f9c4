"""What the service endpoints accept and return."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from tocsin.catalog.models import ServiceStatus, ServiceUrgency
from tocsin.patching import not_null

ServiceName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Description = Annotated[str, StringConstraints(max_length=10_000)]
RoutingKey = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:/-]+$"),
    Field(description="What alerts name to reach this service: letters, digits and . _ : / -"),
]
GroupKey = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, strict=True)
]
GROUP_BY_HELP = (
    "Tag names (Alertmanager labels) whose values group alerts into one incident, e.g. "
    '["alertname", "cluster"]; empty: alerts are grouped by fingerprint only'
)
GROUP_WINDOW_HELP = (
    "For how long after an incident of a group opened further alerts of the group join it"
)
GroupWindow = Annotated[int, Field(ge=1, le=7 * 86_400)]


def check_group_by(keys: list[str] | None) -> list[str] | None:
    """No key twice: the same tag named twice is a typing mistake, not a wish."""
    if keys is not None and len(set(keys)) != len(keys):
        raise ValueError("names a tag twice")
    return keys


URGENCY_HELP = (
    "How the service's incidents page people: severity_based (critical and high severities "
    "are high urgency, the rest low), high (always high urgency), low (always low) or "
    "support_hours (high inside the service's support_hours, low outside); decided when an "
    "incident opens"
)
SUPPORT_HOURS_HELP = (
    'Weekly windows on a zone\'s wall clock, e.g. {"timezone": "Europe/Paris", "windows": '
    '[{"weekdays": [1, 2, 3, 4, 5], "start_time": "09:00", "end_time": "18:00"}]}; '
    "an end at or before the start runs past midnight. Used with urgency support_hours"
)
HHMM = Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]


class SupportWindowIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    weekdays: list[Annotated[int, Field(ge=1, le=7, strict=True)]] = Field(
        min_length=1, max_length=7, description="ISO weekdays the window starts on: 1 Monday .. 7"
    )
    start_time: HHMM = Field(description="HH:MM, local time")
    end_time: HHMM = Field(description="HH:MM, local time; at or before start_time: next day")


class SupportHoursIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timezone: str = Field(min_length=1, max_length=64, description="IANA zone")
    windows: list[SupportWindowIn] = Field(min_length=1, max_length=20)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


class ServiceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    description: str
    routing_key: str
    team_id: uuid.UUID
    escalation_policy_id: uuid.UUID | None
    status: ServiceStatus
    urgency: ServiceUrgency = Field(description=URGENCY_HELP)
    group_by: list[str] = Field(default_factory=list, description=GROUP_BY_HELP)
    group_window_seconds: int = Field(default=300, description=GROUP_WINDOW_HELP)
    support_hours: SupportHoursIn | None = Field(default=None, description=SUPPORT_HOURS_HELP)
    created_at: datetime
    updated_at: datetime


class ServiceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: ServiceName
    description: Description = ""
    routing_key: RoutingKey
    team_id: uuid.UUID
    escalation_policy_id: uuid.UUID | None = Field(
        default=None, description="A policy of the same team; null uses the team's default"
    )
    status: ServiceStatus = ServiceStatus.ACTIVE
    urgency: ServiceUrgency = Field(default=ServiceUrgency.SEVERITY_BASED, description=URGENCY_HELP)
    group_by: list[GroupKey] = Field(default_factory=list, max_length=10, description=GROUP_BY_HELP)
    group_window_seconds: GroupWindow = Field(default=300, description=GROUP_WINDOW_HELP)
    support_hours: SupportHoursIn | None = Field(
        default=None, description=SUPPORT_HOURS_HELP, validate_default=True
    )

    _distinct_keys = field_validator("group_by")(check_group_by)

    @field_validator("support_hours")
    @classmethod
    def _hours_for_support_hours(
        cls, value: SupportHoursIn | None, info: ValidationInfo
    ) -> SupportHoursIn | None:
        if value is None and info.data.get("urgency") == ServiceUrgency.SUPPORT_HOURS:
            raise ValueError("needed when urgency is support_hours")
        return value


class ServiceUpdate(BaseModel):
    """Only the fields sent are changed; escalation_policy_id may be set to null."""

    model_config = ConfigDict(extra="forbid")

    name: ServiceName | None = None
    description: Description | None = None
    routing_key: RoutingKey | None = None
    team_id: uuid.UUID | None = None
    escalation_policy_id: uuid.UUID | None = None
    status: ServiceStatus | None = None
    urgency: ServiceUrgency | None = Field(default=None, description=URGENCY_HELP)
    group_by: list[GroupKey] | None = Field(default=None, max_length=10, description=GROUP_BY_HELP)
    group_window_seconds: GroupWindow | None = Field(default=None, description=GROUP_WINDOW_HELP)
    support_hours: SupportHoursIn | None = Field(
        default=None, description=SUPPORT_HOURS_HELP + " (null removes them)"
    )

    _distinct_keys = field_validator("group_by")(check_group_by)

    _not_null = not_null(
        "name",
        "description",
        "routing_key",
        "team_id",
        "status",
        "urgency",
        "group_by",
        "group_window_seconds",
    )
