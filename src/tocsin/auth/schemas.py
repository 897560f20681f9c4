"""What the user, API key and login endpoints accept and return."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
)

from tocsin.auth.models import KeyScope
from tocsin.patching import not_null

# Deliberately loose: one @, no spaces, a dot in the domain. Whether the address works is
# something only sending to it can tell.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _email(value: str) -> str:
    value = value.strip().lower()
    if not _EMAIL.match(value):
        raise ValueError("is not an email address (expected name@example.com)")
    return value


def _time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        # OSError: a name such as "America" that is a directory of the zone database.
        raise ValueError(f"{value!r} is not a known IANA time zone (e.g. Europe/Paris)") from exc
    return value


Email = Annotated[str, StringConstraints(max_length=254), AfterValidator(_email)]
PersonName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
TimeZone = Annotated[
    str, StringConstraints(min_length=1, max_length=64), AfterValidator(_time_zone)
]
Password = Annotated[str, StringConstraints(min_length=8, max_length=256)]
KeyName = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    name: str
    is_admin: bool
    is_active: bool
    time_zone: str
    created_at: datetime


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    name: PersonName
    is_admin: bool = False
    time_zone: TimeZone = "UTC"
    password: Password | None = Field(
        default=None, description="Optional: without one the user can only use API keys"
    )


# Fields a user may change on their own account; the rest need an administrator.
SELF_EDITABLE = frozenset({"name", "time_zone"})


class UserUpdate(BaseModel):
    """Only the fields sent are changed. Users may change their own name and time_zone;
    everything else, and other users, need an administrator."""

    model_config = ConfigDict(extra="forbid")

    email: Email | None = None
    name: PersonName | None = None
    is_admin: bool | None = None
    is_active: bool | None = None
    time_zone: TimeZone | None = None
    password: Password | None = None

    _not_null = not_null("email", "name", "is_admin", "is_active", "time_zone", "password")


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: KeyName = ""
    scope: KeyScope = Field(
        default=KeyScope.FULL,
        description="read: only reads; respond: reads and acts on incidents; full: all "
        "its user may do",
    )
    team_id: uuid.UUID | None = Field(
        default=None,
        description="Restrict the key to this team (the user must belong to it); "
        "administrator rights do not carry into a restricted key",
    )
    expires_at: AwareDatetime | None = Field(
        default=None, description="After this time the key is refused (401)"
    )


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    prefix: str = Field(description="The first characters of the key, to tell keys apart")
    created_at: datetime
    revoked_at: datetime | None
    scope: KeyScope
    team_id: uuid.UUID | None
    expires_at: datetime | None


class IssuedApiKey(BaseModel):
    id: uuid.UUID
    name: str
    prefix: str
    created_at: datetime
    scope: KeyScope
    team_id: uuid.UUID | None
    expires_at: datetime | None
    key: str = Field(description="The key itself; shown this once and never again")


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Annotated[str, StringConstraints(max_length=254)]
    password: Annotated[str, StringConstraints(max_length=256)]


class LoginOut(BaseModel):
    api_key: str = Field(
        description="A session key (`ts_…`), used like an API key until `expires_at` or "
        "sign-out; shown this once"
    )
    expires_at: datetime
    user: UserOut


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    old_password: Annotated[str, StringConstraints(max_length=256)]
    new_password: Password
