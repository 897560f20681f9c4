"""What the team, member and tag endpoints accept and return."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from tocsin.patching import not_null
from tocsin.teams.models import TeamRole

TeamName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Description = Annotated[str, StringConstraints(max_length=10_000)]
# Not stripped: routing compares a team's tags with an alert's byte for byte.
TagKey = Annotated[str, StringConstraints(min_length=1, max_length=200)]
TagValue = Annotated[str, StringConstraints(max_length=500)]


class TeamOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    description: str
    created_at: datetime


class TeamCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: TeamName
    description: Description = ""


class TeamUpdate(BaseModel):
    """Only the fields sent are changed."""

    model_config = ConfigDict(extra="forbid")

    name: TeamName | None = None
    description: Description | None = None

    _not_null = not_null("name", "description")


class MemberOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    user_id: uuid.UUID
    role: TeamRole


class MemberCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: uuid.UUID
    role: TeamRole = Field(default=TeamRole.RESPONDER, description="manager | responder | observer")


class MemberUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: TeamRole


class TagOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    key: str
    value: str


class TagCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: TagKey
    value: TagValue
