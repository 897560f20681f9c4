"""What the integration endpoints accept and return."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from tocsin.integrations.models import IntegrationType

MAX_DEDUP_WINDOW_MINUTES = 7 * 24 * 60

IntegrationName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)
]
DedupWindow = Annotated[
    int,
    Field(
        ge=0,
        le=MAX_DEDUP_WINDOW_MINUTES,
        description="Alerts with the same fingerprint within this many minutes join one "
        "incident; 0 turns deduplication off",
    ),
]


class IntegrationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    type: IntegrationType
    default_service_id: uuid.UUID | None
    dedup_window_minutes: int
    auto_resolve: bool
    active: bool
    key_prefix: str = Field(description="The first characters of the key, to tell keys apart")
    created_at: datetime
    updated_at: datetime


class IntegrationWithKey(IntegrationOut):
    """Answered on creation and key rotation only: the key is never shown again."""

    key: str
    webhook_url: str


class IntegrationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: IntegrationName
    type: IntegrationType = IntegrationType.GENERIC
    default_service_id: uuid.UUID | None = Field(
        default=None, description="Where alerts go that name no routing key"
    )
    dedup_window_minutes: DedupWindow = 60
    auto_resolve: bool = Field(default=True, description="A resolving alert resolves its incident")
    active: bool = True


class IntegrationUpdate(BaseModel):
    """Only the fields sent are changed; default_service_id may be set to null."""

    model_config = ConfigDict(extra="forbid")

    name: IntegrationName | None = None
    default_service_id: uuid.UUID | None = None
    dedup_window_minutes: DedupWindow | None = None
    auto_resolve: bool | None = None
    active: bool | None = None

    @field_validator("name", "dedup_window_minutes", "auto_resolve", "active")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may be left out but not set to null")
        return value
