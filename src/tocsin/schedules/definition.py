"""What a schedule is: layers of rotations, restriction windows and overrides, as plain values.

These mirror the API contract. They are trusted: bad input is rejected at the edge by
`tocsin.schedules.validation`, and the computations assume a schedule that passed it.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime, time

# One turn's people: everyone in it is on call together.
Participant = tuple[uuid.UUID, ...] | frozenset[uuid.UUID]


class Rotation(enum.StrEnum):
    HOURLY = "hourly"
    DAILY = "daily"
    WEEKLY = "weekly"


class Weekday(enum.StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"

    @property
    def number(self) -> int:
        """Monday 0 to Sunday 6, as `date.weekday()` counts."""
        return _WEEKDAY_NUMBERS[self]


_WEEKDAY_NUMBERS = {day: number for number, day in enumerate(Weekday)}


@dataclass(frozen=True, slots=True)
class Restriction:
    """A window of wall-clock time on each listed day (every day when `days` is None).

    `end` not after `start` means the window runs past midnight into the next day; the day it
    belongs to is the day it starts.
    """

    start: time
    end: time
    days: tuple[Weekday, ...] | None = None


@dataclass(frozen=True, slots=True)
class LayerDef:
    """One rotation layer; `handoff` is a naive local date-time in the schedule's zone."""

    id: uuid.UUID
    name: str
    start: datetime
    end: datetime | None
    rotation: Rotation
    turn_length: int
    handoff: datetime
    participants: tuple[Participant, ...]
    restrictions: tuple[Restriction, ...] = ()


@dataclass(frozen=True, slots=True)
class OverrideDef:
    """These users are on call instead of whoever the layers give, over [start, end)."""

    id: uuid.UUID
    user_ids: tuple[uuid.UUID, ...]
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class ScheduleDef:
    """Layers lowest precedence first (the last one wins); overrides beat every layer."""

    time_zone: str
    layers: tuple[LayerDef, ...]
    overrides: tuple[OverrideDef, ...] = ()
