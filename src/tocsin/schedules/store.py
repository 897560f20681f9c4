"""Reading schedule definitions out of the database, and "who is on call" for a stored schedule.

Everything here works on the caller's `AsyncConnection` and inside its transaction; nothing
commits. The answers come from the pure code (`oncall.py`, `shifts.py`): this module only turns
rows into a `ScheduleDef`.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from tocsin.schedules.definition import (
    LayerDef,
    OverrideDef,
    Restriction,
    Rotation,
    ScheduleDef,
    Weekday,
)
from tocsin.schedules.models import (
    Schedule,
    ScheduleLayer,
    ScheduleOverride,
    ScheduleOverrideUser,
    ScheduleParticipant,
)
from tocsin.schedules.oncall import OnCall, who_is_on_call
from tocsin.schedules.shifts import Shift, final_shifts
from tocsin.store.connection import Connection

_schedules = Schedule.__table__
_layers = ScheduleLayer.__table__
_participants = ScheduleParticipant.__table__
_overrides = ScheduleOverride.__table__
_override_users = ScheduleOverrideUser.__table__

# What `find_on_call` answers: the users (empty when nobody) and the layer or override they
# come from (None when nobody).
OnCallAnswer = OnCall


async def load_schedule(
    conn: Connection,
    schedule_id: uuid.UUID,
    *,
    overrides_from: datetime | None = None,
    overrides_until: datetime | None = None,
) -> ScheduleDef | None:
    """The definition of schedule `schedule_id`, or None when there is no such schedule.

    Overrides are all loaded unless a window is given: then only those overlapping
    [overrides_from, overrides_until) are, which is all a computation inside that window needs.
    """
    zone = (
        await conn.execute(select(_schedules.c.time_zone).where(_schedules.c.id == schedule_id))
    ).scalar_one_or_none()
    if zone is None:
        return None
    layers = await load_layers(conn, schedule_id)
    overrides = await _load_overrides(conn, schedule_id, start=overrides_from, end=overrides_until)
    return ScheduleDef(time_zone=zone, layers=layers, overrides=overrides)


async def find_on_call(
    conn: Connection, schedule_id: uuid.UUID, at: datetime
) -> OnCallAnswer | None:
    """Who schedule `schedule_id` puts on call at instant `at`; None when there is no schedule.

    An answer with no `user_ids` (and `source` None) means the schedule exists but nobody is
    on call at `at`.
    """
    schedule = await load_schedule(conn, schedule_id, overrides_from=at, overrides_until=at)
    if schedule is None:
        return None
    return who_is_on_call(schedule, at)


async def find_schedule_team(conn: AsyncConnection, schedule_id: uuid.UUID) -> uuid.UUID | None:
    """The team owning schedule `schedule_id`, or None when there is no such schedule."""
    result = await conn.execute(select(_schedules.c.team_id).where(_schedules.c.id == schedule_id))
    team_id: uuid.UUID | None = result.scalar_one_or_none()
    return team_id


async def schedule_belongs_to_team(
    conn: AsyncConnection, *, team_id: uuid.UUID, schedule_id: uuid.UUID
) -> bool:
    """Whether `schedule_id` is one of team `team_id`'s schedules (for escalation targets)."""
    return await find_schedule_team(conn, schedule_id) == team_id


def restriction_from_row(data: dict[str, Any]) -> Restriction:
    """A restriction from its stored JSON form."""
    days = data.get("days")
    return Restriction(
        start=time.fromisoformat(data["start"]),
        end=time.fromisoformat(data["end"]),
        days=None if days is None else tuple(Weekday(day) for day in days),
    )


def restriction_to_row(restriction: Restriction) -> dict[str, Any]:
    """The stored JSON form of a restriction."""
    return {
        "days": None if restriction.days is None else [str(day) for day in restriction.days],
        "start": restriction.start.isoformat(timespec="minutes")
        if restriction.start.second == 0
        else restriction.start.isoformat(),
        "end": restriction.end.isoformat(timespec="minutes")
        if restriction.end.second == 0
        else restriction.end.isoformat(),
    }


async def load_layers(conn: Connection, schedule_id: uuid.UUID) -> tuple[LayerDef, ...]:
    """The layers of schedule `schedule_id`, lowest precedence first."""
    rows = (
        await conn.execute(
            select(
                _layers.c.id,
                _layers.c.name,
                _layers.c.start,
                _layers.c.end,
                _layers.c.rotation,
                _layers.c.turn_length,
                _layers.c.handoff,
                _layers.c.restrictions,
            )
            .where(_layers.c.schedule_id == schedule_id)
            .order_by(_layers.c.position)
        )
    ).all()
    if not rows:
        return ()
    members = (
        await conn.execute(
            select(_participants.c.layer_id, _participants.c.position, _participants.c.user_id)
            .where(_participants.c.layer_id.in_([row.id for row in rows]))
            .order_by(_participants.c.layer_id, _participants.c.position, _participants.c.user_id)
        )
    ).all()
    groups: dict[uuid.UUID, dict[int, list[uuid.UUID]]] = defaultdict(lambda: defaultdict(list))
    for member in members:
        groups[member.layer_id][member.position].append(member.user_id)
    return tuple(
        LayerDef(
            id=row.id,
            name=row.name,
            start=row.start,
            end=row.end,
            rotation=Rotation(row.rotation),
            turn_length=row.turn_length,
            handoff=row.handoff.replace(tzinfo=None),
            participants=tuple(
                tuple(users) for _, users in sorted(groups[row.id].items(), key=_first)
            ),
            restrictions=tuple(restriction_from_row(item) for item in row.restrictions or ()),
        )
        for row in rows
    )


def _first(item: tuple[int, list[uuid.UUID]]) -> int:
    return item[0]


async def _load_overrides(
    conn: Connection,
    schedule_id: uuid.UUID,
    *,
    start: datetime | None,
    end: datetime | None,
) -> tuple[OverrideDef, ...]:
    query = (
        select(
            _overrides.c.id,
            _overrides.c.start,
            _overrides.c.end,
            _override_users.c.user_id,
        )
        .join(_override_users, _override_users.c.override_id == _overrides.c.id)
        .where(_overrides.c.schedule_id == schedule_id)
        .order_by(_overrides.c.id, _override_users.c.user_id)
    )
    if start is not None:
        query = query.where(_overrides.c.end > start)
    if end is not None:
        # An override starting exactly at `end` still matters to a point query at `end`.
        query = query.where(_overrides.c.start <= end)
    overrides: list[OverrideDef] = []
    for row in (await conn.execute(query)).all():
        if overrides and overrides[-1].id == row.id:
            last = overrides[-1]
            overrides[-1] = OverrideDef(
                last.id, (*last.user_ids, row.user_id), last.start, last.end
            )
        else:
            overrides.append(OverrideDef(row.id, (row.user_id,), row.start, row.end))
    return tuple(overrides)


@dataclass(frozen=True, slots=True)
class ScheduleOnCall:
    """Who one schedule puts on call."""

    schedule_id: uuid.UUID
    schedule_name: str
    on_call: OnCall


@dataclass(frozen=True, slots=True)
class ScheduleShift:
    """A final shift of one schedule."""

    schedule_id: uuid.UUID
    schedule_name: str
    shift: Shift


async def find_team_on_call(
    conn: AsyncConnection, team_id: uuid.UUID, at: datetime
) -> list[ScheduleOnCall]:
    """Who each of the team's schedules puts on call at `at`, schedules by name."""
    schedules = (
        await conn.execute(
            select(_schedules.c.id, _schedules.c.name)
            .where(_schedules.c.team_id == team_id)
            .order_by(_schedules.c.name, _schedules.c.id)
        )
    ).all()
    answers: list[ScheduleOnCall] = []
    for schedule_id, name in schedules:
        on_call = await find_on_call(conn, schedule_id, at)
        if on_call is not None:
            answers.append(ScheduleOnCall(schedule_id, name, on_call))
    return answers


async def find_user_shifts(
    conn: AsyncConnection,
    user_id: uuid.UUID,
    start: datetime,
    end: datetime,
    *,
    team_ids: set[uuid.UUID] | None,
) -> list[ScheduleShift]:
    """The final shifts within [start, end) in which `user_id` is on call, in time order.

    Only schedules of `team_ids` count (None: every team). A schedule matters when the user is
    one of its participants or in one of its overrides inside the range.
    """
    in_layers = (
        select(_layers.c.schedule_id)
        .join(_participants, _participants.c.layer_id == _layers.c.id)
        .where(_participants.c.user_id == user_id)
    )
    in_overrides = (
        select(_overrides.c.schedule_id)
        .join(_override_users, _override_users.c.override_id == _overrides.c.id)
        .where(
            _override_users.c.user_id == user_id,
            _overrides.c.end > start,
            _overrides.c.start < end,
        )
    )
    query = select(_schedules.c.id, _schedules.c.name).where(
        _schedules.c.id.in_(in_layers.union(in_overrides).scalar_subquery())
    )
    if team_ids is not None:
        query = query.where(_schedules.c.team_id.in_(team_ids))
    found: list[ScheduleShift] = []
    for schedule_id, name in (await conn.execute(query.order_by(_schedules.c.name))).all():
        schedule = await load_schedule(conn, schedule_id, overrides_from=start, overrides_until=end)
        if schedule is None:  # pragma: no cover - deleted between the two reads
            continue
        found.extend(
            ScheduleShift(schedule_id, name, shift)
            for shift in final_shifts(schedule, start, end)
            if user_id in shift.user_ids
        )
    found.sort(key=lambda item: (item.shift.start, item.schedule_name))
    return found
