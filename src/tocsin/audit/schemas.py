"""What the audit log endpoint returns."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class AuditEntryOut(BaseModel):
    id: uuid.UUID
    at: datetime
    actor_user_id: uuid.UUID | None = Field(description="None for a change made with the CLI")
    actor_email: str | None = Field(description="The actor's email now (None once deleted)")
    via: str = Field(description="api_key, session or cli")
    via_id: uuid.UUID | None = Field(description="The API key or login session used")
    request_id: str | None
    action: str = Field(description="created, changed or deleted")
    object_type: str = Field(description="What was changed, by table: services, api_keys...")
    object_id: str
    team_id: uuid.UUID | None
    changes: dict[str, Any] = Field(
        description='{field: {"before": value, "after": value}}; secrets appear as "(secret)"'
    )
