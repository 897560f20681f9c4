"""Creating, changing and deleting schedules, their layers and their overrides.

The definitions arrive already checked on their own (schemas + `validation.py`); what is
checked here needs the database: that the team exists, that every user named is on it, that
a schedule name is free within the team, that nothing still pages through a schedule about to
be deleted.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.errors import Conflict, InvalidInput, NotFound
from tocsin.escalation.models import EscalationLevel, TargetType
from tocsin.schedules.definition import LayerDef, OverrideDef
from tocsin.schedules.models import (
    Schedule,
    ScheduleLayer,
    ScheduleOverride,
    ScheduleOverrideUser,
    ScheduleParticipant,
)
from tocsin.schedules.store import restriction_to_row
from tocsin.teams.models import Team, TeamMember


class ScheduleNotFound(NotFound):
    def __init__(self, schedule_id: uuid.UUID) -> None:
        super().__init__(f"schedule {schedule_id} not found")


class LayerNotFound(NotFound):
    def __init__(self, layer_id: uuid.UUID) -> None:
        super().__init__(f"layer {layer_id} not found in this schedule")


class OverrideNotFound(NotFound):
    def __init__(self, override_id: uuid.UUID) -> None:
        super().__init__(f"override {override_id} not found in this schedule")


class ScheduleNameTaken(Conflict):
    def __init__(self, name: str) -> None:
        super().__init__(f"the team already has a schedule named {name!r}")


class ScheduleInUse(Conflict):
    """Escalation policies still page through this schedule."""

    def __init__(self, schedule_id: uuid.UUID, policy_ids: Sequence[uuid.UUID]) -> None:
        listed = ", ".join(str(policy_id) for policy_id in policy_ids)
        super().__init__(
            f"schedule {schedule_id} is a target of escalation policies {listed}; "
            "change those levels first"
        )
        self.policy_ids = list(policy_ids)


@dataclass(frozen=True, slots=True)
class OverrideRecord:
    """An override as stored, with who made it."""

    id: uuid.UUID
    schedule_id: uuid.UUID
    user_ids: tuple[uuid.UUID, ...]
    start: datetime
    end: datetime
    created_by: uuid.UUID | None
    created_at: datetime


async def find_schedule(session: AsyncSession, schedule_id: uuid.UUID) -> Schedule | None:
    return await session.get(Schedule, schedule_id)


async def create_schedule(
    session: AsyncSession,
    *,
    team_id: uuid.UUID,
    name: str,
    description: str,
    time_zone: str,
    layers: Sequence[LayerDef],
    now: datetime,
) -> Schedule:
    """A new schedule with `layers` (lowest precedence first); InvalidInput for an unknown
    team or a user who is not on it, ScheduleNameTaken for a name the team already uses."""
    if await session.get(Team, team_id) is None:
        raise InvalidInput(f"team {team_id} does not exist", field="team_id")
    await _refuse_taken_name(session, team_id, name)
    for index, layer in enumerate(layers):
        await _refuse_outsiders(session, team_id, layer, field=f"layers.{index}")
    schedule = Schedule(
        team_id=team_id,
        name=name,
        description=description,
        time_zone=time_zone,
        created_at=now,
        updated_at=now,
    )
    session.add(schedule)
    await session.flush()
    for position, layer in enumerate(layers):
        await _insert_layer(session, schedule.id, layer, position=position, now=now)
    return schedule


async def change_schedule(
    session: AsyncSession, schedule: Schedule, changes: dict[str, object], *, now: datetime
) -> None:
    """Apply name, description and time zone changes; a taken name is a Conflict.

    Changing the zone keeps every handoff's local reading: "Monday 09:00" stays Monday 09:00,
    now in the new zone.
    """
    name = changes.get("name")
    if isinstance(name, str) and name != schedule.name:
        await _refuse_taken_name(session, schedule.team_id, name)
    for field, value in changes.items():
        setattr(schedule, field, value)
    schedule.updated_at = now
    await session.flush()


async def delete_schedule(session: AsyncSession, schedule: Schedule) -> None:
    """Delete the schedule with its layers and overrides; ScheduleInUse while an escalation
    level targets it, since that level would silently page nobody."""
    result = await session.execute(
        select(EscalationLevel.policy_id)
        .where(
            EscalationLevel.target_type == TargetType.SCHEDULE,
            EscalationLevel.target_id == schedule.id,
        )
        .distinct()
    )
    policy_ids = list(result.scalars())
    if policy_ids:
        raise ScheduleInUse(schedule.id, sorted(policy_ids))
    await session.delete(schedule)
    await session.flush()


async def add_layer(
    session: AsyncSession, schedule: Schedule, layer: LayerDef, *, now: datetime
) -> int:
    """Put `layer` on top of the schedule's layers (highest precedence); returns its position."""
    await _refuse_outsiders(session, schedule.team_id, layer, field="")
    top = (
        await session.execute(
            select(func.max(ScheduleLayer.position)).where(ScheduleLayer.schedule_id == schedule.id)
        )
    ).scalar_one_or_none()
    position = 0 if top is None else top + 1
    await _insert_layer(session, schedule.id, layer, position=position, now=now)
    schedule.updated_at = now
    await session.flush()
    return position


async def replace_layer(
    session: AsyncSession, schedule: Schedule, layer: LayerDef, *, now: datetime
) -> None:
    """Store `layer` in place of the layer with the same id, keeping its position."""
    row = await _find_layer(session, schedule.id, layer.id)
    await _refuse_outsiders(session, schedule.team_id, layer, field="")
    row.name = layer.name
    row.start = layer.start
    row.end = layer.end
    row.rotation = layer.rotation
    row.turn_length = layer.turn_length
    row.handoff = layer.handoff
    row.restrictions = [restriction_to_row(item) for item in layer.restrictions]
    row.updated_at = now
    await session.execute(
        delete(ScheduleParticipant).where(ScheduleParticipant.layer_id == layer.id)
    )
    await _insert_participants(session, layer)
    schedule.updated_at = now
    await session.flush()


async def delete_layer(
    session: AsyncSession, schedule: Schedule, layer_id: uuid.UUID, *, now: datetime
) -> None:
    """Remove one layer; the others keep their order (positions may skip numbers)."""
    row = await _find_layer(session, schedule.id, layer_id)
    await session.delete(row)
    schedule.updated_at = now
    await session.flush()


async def add_override(
    session: AsyncSession,
    schedule: Schedule,
    override: OverrideDef,
    *,
    created_by: uuid.UUID | None,
    now: datetime,
) -> OverrideRecord:
    """Store `override`; its users must be on the schedule's team. Where it overlaps older
    overrides, it wins."""
    await _refuse_users_off_team(session, schedule.team_id, [("user_ids", override.user_ids)])
    users = tuple(dict.fromkeys(override.user_ids))
    session.add(
        ScheduleOverride(
            id=override.id,
            schedule_id=schedule.id,
            start=override.start,
            end=override.end,
            created_by=created_by,
            created_at=now,
        )
    )
    await session.flush()
    await session.execute(
        insert(ScheduleOverrideUser),
        [{"override_id": override.id, "user_id": user_id} for user_id in users],
    )
    return OverrideRecord(
        override.id, schedule.id, users, override.start, override.end, created_by, now
    )


async def delete_override(
    session: AsyncSession, schedule: Schedule, override_id: uuid.UUID
) -> None:
    result = await session.execute(
        delete(ScheduleOverride).where(
            ScheduleOverride.id == override_id, ScheduleOverride.schedule_id == schedule.id
        )
    )
    if getattr(result, "rowcount", 0) == 0:
        raise OverrideNotFound(override_id)


async def list_overrides(
    session: AsyncSession,
    schedule_id: uuid.UUID,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    override_id: uuid.UUID | None = None,
) -> list[OverrideRecord]:
    """The schedule's overrides overlapping [start, end) (all when not given), oldest first."""
    query = (
        select(ScheduleOverride, ScheduleOverrideUser.user_id)
        .join(ScheduleOverrideUser, ScheduleOverrideUser.override_id == ScheduleOverride.id)
        .where(ScheduleOverride.schedule_id == schedule_id)
        .order_by(ScheduleOverride.id, ScheduleOverrideUser.user_id)
    )
    if start is not None:
        query = query.where(ScheduleOverride.end > start)
    if end is not None:
        query = query.where(ScheduleOverride.start < end)
    if override_id is not None:
        query = query.where(ScheduleOverride.id == override_id)
    records: list[OverrideRecord] = []
    for row, user_id in (await session.execute(query)).all():
        if records and records[-1].id == row.id:
            last = records[-1]
            records[-1] = OverrideRecord(
                last.id,
                last.schedule_id,
                (*last.user_ids, user_id),
                last.start,
                last.end,
                last.created_by,
                last.created_at,
            )
        else:
            records.append(
                OverrideRecord(
                    row.id,
                    row.schedule_id,
                    (user_id,),
                    row.start,
                    row.end,
                    row.created_by,
                    row.created_at,
                )
            )
    return records


async def _find_layer(
    session: AsyncSession, schedule_id: uuid.UUID, layer_id: uuid.UUID
) -> ScheduleLayer:
    row = await session.get(ScheduleLayer, layer_id)
    if row is None or row.schedule_id != schedule_id:
        raise LayerNotFound(layer_id)
    return row


async def _refuse_taken_name(session: AsyncSession, team_id: uuid.UUID, name: str) -> None:
    taken = await session.execute(
        select(Schedule.id).where(Schedule.team_id == team_id, Schedule.name == name).limit(1)
    )
    if taken.first() is not None:
        raise ScheduleNameTaken(name)


async def _refuse_outsiders(
    session: AsyncSession, team_id: uuid.UUID, layer: LayerDef, *, field: str
) -> None:
    prefix = f"{field}." if field else ""
    await _refuse_users_off_team(
        session,
        team_id,
        [
            (f"{prefix}participants.{index}.user_ids", group)
            for index, group in enumerate(layer.participants)
        ],
    )


async def _refuse_users_off_team(
    session: AsyncSession,
    team_id: uuid.UUID,
    groups: Sequence[tuple[str, Iterable[uuid.UUID]]],
) -> None:
    """InvalidInput naming the first field that lists a user who is not a member of the team."""
    wanted = {user_id for _, users in groups for user_id in users}
    if not wanted:
        return
    members = set(
        (
            await session.execute(
                select(TeamMember.user_id).where(
                    TeamMember.team_id == team_id, TeamMember.user_id.in_(wanted)
                )
            )
        ).scalars()
    )
    for field, users in groups:
        for user_id in users:
            if user_id not in members:
                raise InvalidInput(
                    f"user {user_id} is not a member of the schedule's team", field=field
                )


async def _insert_layer(
    session: AsyncSession,
    schedule_id: uuid.UUID,
    layer: LayerDef,
    *,
    position: int,
    now: datetime,
) -> None:
    session.add(
        ScheduleLayer(
            id=layer.id,
            schedule_id=schedule_id,
            position=position,
            name=layer.name,
            start=layer.start,
            end=layer.end,
            rotation=layer.rotation,
            turn_length=layer.turn_length,
            handoff=layer.handoff,
            restrictions=[restriction_to_row(item) for item in layer.restrictions],
            created_at=now,
            updated_at=now,
        )
    )
    await session.flush()
    await _insert_participants(session, layer)


async def _insert_participants(session: AsyncSession, layer: LayerDef) -> None:
    rows = [
        {"layer_id": layer.id, "position": position, "user_id": user_id}
        for position, group in enumerate(layer.participants)
        for user_id in dict.fromkeys(group)
    ]
    if rows:
        await session.execute(insert(ScheduleParticipant), rows)
