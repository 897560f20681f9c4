"""What the schedule, layer, override, on-call, shifts and calendar endpoints accept and return.

Checks that need only the request live here, each reported on the field it concerns; the rules
themselves are in `tocsin.schedules.validation`, shared with the pure code. Whether users are on
the schedule's team needs the database and is checked in `tocsin.schedules.editing`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, time
from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_serializer,
    field_validator,
)

from tocsin.errors import InvalidInput
from tocsin.patching import not_null
from tocsin.schedules.definition import (
    LayerDef,
    OverrideDef,
    Restriction,
    Rotation,
    Weekday,
)
from tocsin.schedules.models import Schedule
from tocsin.schedules.shifts import Gap, Shift, ShiftSource, SourceKind
from tocsin.schedules.validation import InvalidSchedule, load_zone, validate_restrictions

# Dates a schedule may use. The computation copes with far more, but turning a handoff in one
# century into a turn number in another walks every year's clock changes in between.
FIRST_YEAR = 1900
LAST_YEAR = 2199
MAX_LAYERS = 20
MAX_PARTICIPANTS = 200
MAX_GROUP_SIZE = 50
MAX_RESTRICTIONS = 50
# A turn longer than a year is a typo, not a rotation.
MAX_TURN_LENGTH = {Rotation.HOURLY: 24 * 366, Rotation.DAILY: 366, Rotation.WEEKLY: 53}

ScheduleName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)
]
LayerName = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
Description = Annotated[str, StringConstraints(max_length=10_000)]
TimeZoneName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
UserIds = Annotated[list[uuid.UUID], Field(min_length=1, max_length=MAX_GROUP_SIZE)]


def _zone(value: str) -> str:
    try:
        load_zone(value)
    except InvalidSchedule as exc:
        raise ValueError(exc.message) from None
    return value


def supported_instant(value: datetime) -> datetime:
    """`value` in UTC; ValueError for years the zone tables do not cover."""
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"must be between the years {FIRST_YEAR} and {LAST_YEAR}")
    return value.astimezone(UTC)


def _clock_text(value: time) -> str:
    return value.isoformat(timespec="minutes" if value.second == 0 else "seconds")


class RestrictionIn(BaseModel):
    """A window on each listed day (every day when `days` is left out); `end` not after `start`
    means the window runs past midnight into the next day."""

    model_config = ConfigDict(extra="forbid")

    days: list[Weekday] | None = Field(
        default=None, min_length=1, description="mon..sun; leave out for every day"
    )
    start: time = Field(description="Local time of day, e.g. 09:00")
    end: time = Field(description="Local time of day, e.g. 17:00")

    @field_validator("start", "end")
    @classmethod
    def _wall_clock(cls, value: time) -> time:
        if value.tzinfo is not None:
            raise ValueError("must be a time of day without a zone (the schedule's)")
        return value.replace(microsecond=0)

    @field_validator("end")
    @classmethod
    def _not_empty(cls, value: time, info: ValidationInfo) -> time:
        if info.data.get("start") == value:
            raise ValueError("must differ from start (a window cannot be empty)")
        return value

    def definition(self) -> Restriction:
        days = None if self.days is None else tuple(dict.fromkeys(self.days))
        return Restriction(start=self.start, end=self.end, days=days)


class ParticipantIn(BaseModel):
    """Users on call together during the participant's turns."""

    model_config = ConfigDict(extra="forbid")

    user_ids: UserIds


class LayerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: LayerName = ""
    start: AwareDatetime | None = Field(
        default=None, description="UTC instant the layer takes effect; default: now"
    )
    end: AwareDatetime | None = Field(default=None, description="UTC instant it stops; null: never")
    rotation: Rotation = Field(description="hourly | daily | weekly")
    turn_length: int = Field(
        default=1, ge=1, description="Rotation units per turn: hourly with 12 is a 12-hour turn"
    )
    handoff: datetime = Field(
        description="Local date-time in the schedule's zone when the first participant's turn "
        "starts, e.g. 2026-02-23T09:00; earlier turns are counted backwards from it"
    )
    participants: list[ParticipantIn] = Field(min_length=1, max_length=MAX_PARTICIPANTS)
    restrictions: list[RestrictionIn] = Field(default_factory=list, max_length=MAX_RESTRICTIONS)

    @field_validator("start")
    @classmethod
    def _start_supported(cls, value: datetime | None) -> datetime | None:
        return None if value is None else supported_instant(value)

    @field_validator("end")
    @classmethod
    def _end_after_start(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        if value is None:
            return None
        value = supported_instant(value)
        start = info.data.get("start")
        if start is not None and value <= start:
            raise ValueError("must be after start")
        return value

    @field_validator("turn_length")
    @classmethod
    def _turn_not_absurd(cls, value: int, info: ValidationInfo) -> int:
        rotation = info.data.get("rotation")
        if rotation is not None and value > MAX_TURN_LENGTH[rotation]:
            raise ValueError(f"must be at most {MAX_TURN_LENGTH[rotation]} for {rotation} turns")
        return value

    @field_validator("handoff")
    @classmethod
    def _local_handoff(cls, value: datetime) -> datetime:
        if value.tzinfo is not None:
            raise ValueError(
                "must be a local date-time without a zone or offset, e.g. 2026-02-23T09:00: "
                "it is read in the schedule's time zone"
            )
        if not FIRST_YEAR <= value.year <= LAST_YEAR:
            raise ValueError(f"must be between the years {FIRST_YEAR} and {LAST_YEAR}")
        return value.replace(microsecond=0)

    @field_validator("restrictions")
    @classmethod
    def _restrictions_make_sense(cls, value: list[RestrictionIn]) -> list[RestrictionIn]:
        try:
            validate_restrictions([item.definition() for item in value], "restrictions")
        except InvalidSchedule as exc:
            raise ValueError(str(exc)) from None
        return value

    def definition(self, *, layer_id: uuid.UUID, position: int, now: datetime) -> LayerDef:
        """The pure layer; a missing start means `now`, a missing name "Layer <n>"."""
        start = self.start or now
        if self.end is not None and self.end <= start:
            raise InvalidSchedule("end", "must be after start")
        return LayerDef(
            id=layer_id,
            name=self.name or f"Layer {position + 1}",
            start=start,
            end=self.end,
            rotation=self.rotation,
            turn_length=self.turn_length,
            handoff=self.handoff,
            participants=tuple(tuple(p.user_ids) for p in self.participants),
            restrictions=tuple(item.definition() for item in self.restrictions),
        )


class LayerUpdate(BaseModel):
    """Only the fields sent change; the layer is then checked as a whole."""

    model_config = ConfigDict(extra="forbid")

    name: LayerName | None = None
    start: AwareDatetime | None = None
    end: AwareDatetime | None = None
    rotation: Rotation | None = None
    turn_length: int | None = None
    handoff: datetime | None = None
    participants: list[ParticipantIn] | None = None
    restrictions: list[RestrictionIn] | None = None

    _not_null = not_null(
        "name", "start", "rotation", "turn_length", "handoff", "participants", "restrictions"
    )


class ScheduleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    team_id: uuid.UUID
    name: ScheduleName
    description: Description = ""
    time_zone: TimeZoneName = Field(description="IANA zone, e.g. America/New_York")
    layers: list[LayerIn] = Field(
        default_factory=list,
        max_length=MAX_LAYERS,
        description="Lowest precedence first: where layers overlap, the last one wins",
    )

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return _zone(value)


class ScheduleUpdate(BaseModel):
    """Only the fields sent change. Layers have their own endpoints."""

    model_config = ConfigDict(extra="forbid")

    name: ScheduleName | None = None
    description: Description | None = None
    time_zone: TimeZoneName | None = None

    _not_null = not_null("name", "description", "time_zone")

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return _zone(value)


class OverrideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_ids: UserIds
    start: AwareDatetime
    end: AwareDatetime

    @field_validator("start")
    @classmethod
    def _start_supported(cls, value: datetime) -> datetime:
        return supported_instant(value)

    @field_validator("end")
    @classmethod
    def _end_after_start(cls, value: datetime, info: ValidationInfo) -> datetime:
        value = supported_instant(value)
        start = info.data.get("start")
        if start is not None and value <= start:
            raise ValueError("must be after start")
        return value

    def definition(self, override_id: uuid.UUID) -> OverrideDef:
        return OverrideDef(
            id=override_id, user_ids=tuple(self.user_ids), start=self.start, end=self.end
        )


class RestrictionOut(BaseModel):
    days: list[Weekday] | None
    start: time
    end: time

    @field_serializer("start", "end")
    def _hh_mm(self, value: time) -> str:
        return _clock_text(value)


class ParticipantOut(BaseModel):
    user_ids: list[uuid.UUID]


class LayerOut(BaseModel):
    id: uuid.UUID
    name: str
    position: int = Field(description="0 is the lowest precedence")
    start: datetime
    end: datetime | None
    rotation: Rotation
    turn_length: int
    handoff: datetime = Field(description="Local date-time in the schedule's zone")
    participants: list[ParticipantOut]
    restrictions: list[RestrictionOut]

    @field_serializer("handoff")
    def _local(self, value: datetime) -> str:
        return value.isoformat(timespec="minutes" if value.second == 0 else "seconds")

    @classmethod
    def of(cls, layer: LayerDef, position: int) -> LayerOut:
        return cls(
            id=layer.id,
            name=layer.name,
            position=position,
            start=layer.start,
            end=layer.end,
            rotation=layer.rotation,
            turn_length=layer.turn_length,
            handoff=layer.handoff,
            participants=[ParticipantOut(user_ids=list(group)) for group in layer.participants],
            restrictions=[
                RestrictionOut(
                    days=None if item.days is None else list(item.days),
                    start=item.start,
                    end=item.end,
                )
                for item in layer.restrictions
            ],
        )


class ScheduleOut(BaseModel):
    id: uuid.UUID
    team_id: uuid.UUID
    name: str
    description: str
    time_zone: str
    layers: list[LayerOut] = Field(description="Lowest precedence first, as given")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, schedule: Schedule, layers: Sequence[LayerDef]) -> ScheduleOut:
        return cls(
            id=schedule.id,
            team_id=schedule.team_id,
            name=schedule.name,
            description=schedule.description,
            time_zone=schedule.time_zone,
            layers=[LayerOut.of(layer, position) for position, layer in enumerate(layers)],
            created_at=schedule.created_at,
            updated_at=schedule.updated_at,
        )


class OverrideOut(BaseModel):
    id: uuid.UUID
    schedule_id: uuid.UUID
    user_ids: list[uuid.UUID]
    start: datetime
    end: datetime
    created_by: uuid.UUID | None
    created_at: datetime


class SourceOut(BaseModel):
    kind: SourceKind = Field(description="layer | override")
    id: uuid.UUID

    @classmethod
    def of(cls, source: ShiftSource | None) -> SourceOut | None:
        return None if source is None else cls(kind=source.kind, id=source.id)


class OnCallOut(BaseModel):
    at: datetime
    user_ids: list[uuid.UUID] = Field(description="Empty when nobody is on call")
    source: SourceOut | None = Field(description="null when nobody is on call")


class TeamOnCallOut(OnCallOut):
    schedule_id: uuid.UUID
    schedule_name: str


class TeamOnCallList(BaseModel):
    items: list[TeamOnCallOut]


class ShiftOut(BaseModel):
    start: datetime
    end: datetime
    user_ids: list[uuid.UUID]
    source: SourceOut

    @classmethod
    def of(cls, shift: Shift) -> ShiftOut:
        return cls(
            start=shift.start,
            end=shift.end,
            user_ids=list(shift.user_ids),
            source=SourceOut(kind=shift.source.kind, id=shift.source.id),
        )


class GapOut(BaseModel):
    start: datetime
    end: datetime

    @classmethod
    def of(cls, gap: Gap) -> GapOut:
        return cls(start=gap.start, end=gap.end)


class ShiftsOut(BaseModel):
    start: datetime
    end: datetime
    final: list[ShiftOut]
    layers: dict[uuid.UUID, list[ShiftOut]] = Field(description="Each layer's own shifts")
    gaps: list[GapOut] = Field(description="Intervals with nobody on call")


class UserShiftOut(ShiftOut):
    schedule_id: uuid.UUID
    schedule_name: str


class UserShiftsOut(BaseModel):
    user_id: uuid.UUID
    start: datetime
    end: datetime
    shifts: list[UserShiftOut]


class CalendarTokenOut(BaseModel):
    """Whether the user has a calendar token; the token itself is shown only when issued."""

    exists: bool
    prefix: str | None = None
    created_at: datetime | None = None


class CalendarTokenIssued(BaseModel):
    token: str = Field(description="Shown once; put it in calendar URLs as ?token=")
    prefix: str
    created_at: datetime
    user_calendar_url: str = Field(description="This user's shifts in every schedule")
    schedule_calendar_url: str = Field(
        description="Template: replace {schedule_id} to subscribe to one schedule"
    )


def layer_update_merged(current: LayerDef, update: LayerUpdate) -> LayerIn:
    """The layer as it would be once `update` is applied, checked as a whole."""
    merged: dict[str, Any] = {
        "name": current.name,
        "start": current.start,
        "end": current.end,
        "rotation": current.rotation,
        "turn_length": current.turn_length,
        "handoff": current.handoff,
        "participants": [{"user_ids": list(group)} for group in current.participants],
        "restrictions": [
            {
                "days": None if item.days is None else list(item.days),
                "start": item.start,
                "end": item.end,
            }
            for item in current.restrictions
        ],
    }
    merged.update(update.model_dump(exclude_unset=True))
    try:
        return LayerIn.model_validate(merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise InvalidInput(f"{field}: {first['msg']}", field=field) from None
