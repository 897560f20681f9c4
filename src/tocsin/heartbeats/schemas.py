"""What the heartbeat monitor endpoints accept and return."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from tocsin.alerts.models import Severity
from tocsin.heartbeats.models import HeartbeatState
from tocsin.patching import not_null

MIN_INTERVAL_SECONDS = 10
MAX_INTERVAL_SECONDS = 90 * 24 * 3600
MAX_GRACE_SECONDS = 30 * 24 * 3600

MonitorName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Interval = Annotated[
    int,
    Field(
        ge=MIN_INTERVAL_SECONDS,
        le=MAX_INTERVAL_SECONDS,
        description="How often the job pings, in seconds",
    ),
]
Grace = Annotated[
    int,
    Field(
        ge=0,
        le=MAX_GRACE_SECONDS,
        description="How long past the interval a ping may be before it counts as late",
    ),
]


class HeartbeatOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    service_id: uuid.UUID
    integration_id: uuid.UUID = Field(description="Alerts and incidents of this monitor name it")
    interval_seconds: int
    grace_seconds: int
    severity: Severity
    state: HeartbeatState = Field(description="waiting (for the first ping) | up | late")
    last_ping_at: datetime | None
    due_at: datetime | None = Field(description="When the monitor goes late without a ping")
    late_since: datetime | None
    incident_id: uuid.UUID | None = Field(description="The incident opened for being late")
    key_prefix: str = Field(description="The first characters of the ping key")
    created_at: datetime
    updated_at: datetime


class HeartbeatWithKey(HeartbeatOut):
    """Answered on creation only: the key is never shown again."""

    key: str
    ping_url: str


class HeartbeatCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: MonitorName
    service_id: uuid.UUID = Field(description="Late alerts route through this service")
    interval_seconds: Interval
    grace_seconds: Grace = 60
    severity: Severity = Severity.CRITICAL


class HeartbeatUpdate(BaseModel):
    """Only the fields sent are changed."""

    model_config = ConfigDict(extra="forbid")

    name: MonitorName | None = None
    service_id: uuid.UUID | None = None
    interval_seconds: Interval | None = None
    grace_seconds: Grace | None = None
    severity: Severity | None = None

    _not_null = not_null("*")


class PingAccepted(BaseModel):
    state: HeartbeatState
    resolved_incident_id: uuid.UUID | None = Field(
        description="The incident this ping resolved, if the monitor was late"
    )
