"""What the silence, inhibition rule, maintenance window and snooze endpoints accept and
return."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from tocsin.noise.matchers import FIELDS, Matcher, MatchOp, check_regex, matches

MATCHER_FIELDS = ("tag", *FIELDS)


class MatcherIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str = Field(description="tag (then name is the tag), title, source, severity or service")
    name: Annotated[str, StringConstraints(max_length=200)] = ""
    op: MatchOp = Field(description="= equals, != not equals, =~ regex, !~ negative regex")
    value: Annotated[str, StringConstraints(max_length=1000)]

    @model_validator(mode="after")
    def _valid(self) -> Self:
        if self.field not in MATCHER_FIELDS:
            raise ValueError(f"field must be one of {', '.join(MATCHER_FIELDS)}")
        if self.field == "tag" and not self.name:
            raise ValueError("a tag matcher needs the tag's name")
        if self.op in (MatchOp.REGEX, MatchOp.NOT_REGEX):
            problem = check_regex(self.value)
            if problem:
                raise ValueError(problem)
        return self

    def matcher(self) -> Matcher:
        return Matcher(self.field, self.op, self.value, self.name if self.field == "tag" else "")


Matchers = Annotated[list[MatcherIn], Field(min_length=1, max_length=50)]


def _not_everything(matchers: list[MatcherIn]) -> list[MatcherIn]:
    # As Alertmanager: at least one matcher must not match the empty value, or the silence
    # (or rule side) would match alerts that lack the label entirely, i.e. nearly everything.
    if all(matches(m.matcher(), {}) for m in matchers):
        raise ValueError("at least one matcher must not match an empty value")
    return matchers


class MatcherOut(BaseModel):
    field: str
    name: str
    op: MatchOp
    value: str


class SilenceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    team_id: uuid.UUID | None = Field(
        default=None, description="Silences only this team's alerts; null (admins): every team"
    )
    matchers: Matchers
    starts_at: AwareDatetime | None = Field(default=None, description="Default: now")
    ends_at: AwareDatetime
    comment: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] = ""

    _matchers = field_validator("matchers")(_not_everything)

    @model_validator(mode="after")
    def _ends_after_start(self) -> Self:
        if self.starts_at is not None and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class SilenceOut(BaseModel):
    id: uuid.UUID
    team_id: uuid.UUID | None
    matchers: list[MatcherOut]
    starts_at: datetime
    ends_at: datetime
    comment: str
    created_by: uuid.UUID | None
    created_at: datetime
    expired_at: datetime | None
    state: str = Field(description="pending, active or expired")


class InhibitionRuleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    team_id: uuid.UUID | None = Field(
        default=None, description="Applies to this team's alerts; null (admins): every team"
    )
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    source_matchers: Matchers
    target_matchers: Matchers
    equal: list[Annotated[str, StringConstraints(min_length=1, max_length=200)]] = Field(
        default_factory=list,
        max_length=20,
        description="Tag names whose values must be the same on the source and the target",
    )

    _source = field_validator("source_matchers", "target_matchers")(_not_everything)


class InhibitionRuleOut(BaseModel):
    id: uuid.UUID
    team_id: uuid.UUID | None
    name: str
    source_matchers: list[MatcherOut]
    target_matchers: list[MatcherOut]
    equal: list[str]
    created_by: uuid.UUID | None
    created_at: datetime


TimeOfDay = Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]


class MaintenanceWindowCreate(BaseModel):
    """Either starts_at and ends_at (once), or weekdays, start_time, duration_minutes and
    timezone (every week)."""

    model_config = ConfigDict(extra="forbid")

    description: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] = ""
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    weekdays: list[Annotated[int, Field(ge=1, le=7)]] | None = Field(
        default=None, description="ISO weekdays: 1 Monday .. 7 Sunday", max_length=7
    )
    start_time: TimeOfDay | None = Field(default=None, description="HH:MM, local time")
    duration_minutes: int | None = Field(default=None, ge=1, le=7 * 24 * 60)
    timezone: str | None = Field(default=None, description="IANA zone, e.g. Europe/Paris")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        recurring = [self.weekdays, self.start_time, self.duration_minutes, self.timezone]
        if self.starts_at is not None or self.ends_at is not None:
            if any(v is not None for v in recurring):
                raise ValueError("give starts_at/ends_at or a weekly recurrence, not both")
            if self.starts_at is None or self.ends_at is None:
                raise ValueError("a one-off window needs both starts_at and ends_at")
            if self.ends_at <= self.starts_at:
                raise ValueError("ends_at must be after starts_at")
            return self
        if any(v is None for v in recurring) or not self.weekdays:
            raise ValueError(
                "give starts_at and ends_at, or weekdays, start_time, duration_minutes and timezone"
            )
        return self


class MaintenanceWindowOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    service_id: uuid.UUID
    description: str
    starts_at: datetime | None
    ends_at: datetime | None
    weekdays: list[int] | None
    start_time: str | None
    duration_minutes: int | None
    timezone: str | None
    created_at: datetime
    on_now: bool = False


class SnoozeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    until: AwareDatetime = Field(description="When the incident returns to open and pages again")


class SuppressionOut(BaseModel):
    kind: str = Field(
        description="maintenance, silence or inhibition; or group: it joined its group's "
        "incident and paged nobody new"
    )
    id: uuid.UUID = Field(
        description="The maintenance window's, silence's or rule's id; for group, the incident's"
    )
    reason: str
