"""What the service endpoints accept and return."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from tocsin.catalog.models import ServiceStatus, ServiceUrgency

ServiceName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Description = Annotated[str, StringConstraints(max_length=10_000)]
RoutingKey = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:/-]+$"),
    Field(description="What alerts name to reach this service: letters, digits and . _ : / -"),
]
URGENCY_HELP = (
    "How the service's incidents page people: severity_based (critical and high severities "
    "are high urgency, the rest low), high (always high urgency) or low (always low)"
)


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

    @field_validator("name", "description", "routing_key", "team_id", "status", "urgency")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may be left out but not set to null")
        return value
