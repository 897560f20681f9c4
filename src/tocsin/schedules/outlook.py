"""Who is on call now, until when, and who comes next: a schedule's outlook, read from the
same final shifts as `/api/v1/schedules/{id}/shifts` (so it always agrees with the timeline).

A hand-off is a change of the people on call. Two touching shifts with the same people (an
override giving Alice the hour her own layer turn would have given her anyway) are one stretch.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from tocsin.schedules.definition import ScheduleDef
from tocsin.schedules.models import Schedule
from tocsin.schedules.shifts import ShiftSource, compute_shifts
from tocsin.schedules.store import load_schedule

# How far ahead a hand-off is looked for: beyond it the page says "not in the next 14 days".
OUTLOOK_HORIZON = timedelta(days=14)


@dataclass(frozen=True, slots=True)
class Stretch:
    """An unbroken stretch of the same people on call (nobody when `user_ids` is empty).
    `end` None: it lasts beyond the horizon."""

    start: datetime
    end: datetime | None
    user_ids: tuple[uuid.UUID, ...]
    source: ShiftSource | None


@dataclass(frozen=True, slots=True)
class Outlook:
    """Now and the next stretch (None when nothing changes within the horizon)."""

    now: Stretch
    next: Stretch | None


def stretches(schedule: ScheduleDef, start: datetime, end: datetime) -> list[Stretch]:
    """[start, end) cut into stretches of the same people, gaps included, in time order."""
    result = compute_shifts(schedule, start, end)
    pieces: list[tuple[datetime, datetime, tuple[uuid.UUID, ...], ShiftSource | None]] = [
        (shift.start, shift.end, shift.user_ids, shift.source) for shift in result.final
    ]
    pieces += [(gap.start, gap.end, (), None) for gap in result.gaps]
    pieces.sort(key=lambda piece: piece[0])
    out: list[Stretch] = []
    for piece_start, piece_end, users, source in pieces:
        if piece_start >= piece_end:
            continue
        last = out[-1] if out else None
        if last is not None and last.end == piece_start and last.user_ids == users:
            out[-1] = Stretch(last.start, piece_end, users, last.source)
        else:
            out.append(Stretch(piece_start, piece_end, users, source))
    # The last stretch reaching the horizon has no known end.
    if out and out[-1].end == end:
        last = out[-1]
        out[-1] = Stretch(last.start, None, last.user_ids, last.source)
    return out


def outlook(schedule: ScheduleDef, now: datetime, horizon: timedelta = OUTLOOK_HORIZON) -> Outlook:
    """Who is on call at `now` and until when, and the stretch after the next hand-off."""
    found = stretches(schedule, now, now + horizon)
    if not found:  # pragma: no cover - a non-empty range always gives a stretch
        return Outlook(Stretch(now, None, (), None), None)
    return Outlook(found[0], found[1] if len(found) > 1 else None)


@dataclass(frozen=True, slots=True)
class ScheduleOutlook:
    schedule_id: uuid.UUID
    schedule_name: str
    time_zone: str
    outlook: Outlook


async def find_team_outlooks(
    conn: AsyncConnection, team_id: uuid.UUID, now: datetime
) -> list[ScheduleOutlook]:
    """The outlook of each of the team's schedules at `now`, schedules by name."""
    rows = (
        await conn.execute(
            select(Schedule.id, Schedule.name, Schedule.time_zone)
            .where(Schedule.team_id == team_id)
            .order_by(Schedule.name, Schedule.id)
        )
    ).all()
    found: list[ScheduleOutlook] = []
    for schedule_id, name, zone in rows:
        definition = await load_schedule(
            conn, schedule_id, overrides_from=now, overrides_until=now + OUTLOOK_HORIZON
        )
        if definition is None:  # pragma: no cover - deleted between the two reads
            continue
        found.append(ScheduleOutlook(schedule_id, name, zone, outlook(definition, now)))
    return found
