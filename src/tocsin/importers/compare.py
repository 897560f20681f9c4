"""Who the source says is on call against who Tocsin computes, for every imported schedule.

Both sides become timelines of (start, end, people by email) over the same window; the window
is checked hour by hour, and any stretch where the two disagree is listed, cut at every change
on either side so a 30-minute difference (Lord Howe's DST shift) is not rounded away.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tocsin.auth.models import User
from tocsin.importers.models import ImportRecord
from tocsin.importers.source import Export, Kind
from tocsin.schedules.shifts import final_shifts
from tocsin.schedules.store import load_schedule

_HOUR = timedelta(hours=1)

People = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Disagreement:
    start: datetime
    end: datetime
    source: People
    tocsin: People


@dataclass(slots=True)
class ScheduleComparison:
    name: str
    hours: int = 0
    disagreements: list[Disagreement] = field(default_factory=list)
    # Set when the schedule could not be compared at all (not imported yet, say).
    problem: str = ""


async def compare_schedules(
    engine: AsyncEngine,
    export: Export,
    *,
    since: datetime,
    until: datetime,
    only: str | None = None,
) -> list[ScheduleComparison]:
    """One comparison per schedule of `export` that came with its rendered final schedule."""
    emails = {user.source_id: user.email for user in export.users}
    results = []
    async with engine.connect() as conn:
        for schedule in export.schedules:
            if only is not None and only not in (schedule.name, schedule.source_id):
                continue
            result = ScheduleComparison(schedule.name)
            results.append(result)
            rendered = export.rendered.get(schedule.source_id)
            if rendered is None:
                result.problem = "the source sent no rendered final schedule"
                continue
            record = (
                await conn.execute(
                    select(ImportRecord.object_id).where(
                        ImportRecord.source == export.source.value,
                        ImportRecord.kind == Kind.SCHEDULE.value,
                        ImportRecord.source_id == schedule.source_id,
                    )
                )
            ).scalar_one_or_none()
            definition = (
                await load_schedule(conn, record, overrides_from=since, overrides_until=until)
                if record is not None
                else None
            )
            if definition is None:
                result.problem = "not imported (run with --apply first)"
                continue
            shifts = final_shifts(definition, since, until)
            user_ids = {user for shift in shifts for user in shift.user_ids}
            tocsin_emails = await _emails(conn, user_ids)
            source_line = [
                (
                    entry.start,
                    entry.end,
                    tuple(sorted(emails.get(user, user) for user in entry.user_source_ids)),
                )
                for entry in rendered
            ]
            tocsin_line = [
                (
                    shift.start,
                    shift.end,
                    tuple(sorted(tocsin_emails.get(user, str(user)) for user in shift.user_ids)),
                )
                for shift in shifts
            ]
            result.hours, result.disagreements = _diff(source_line, tocsin_line, since, until)
    return results


async def _emails(conn: AsyncConnection, user_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not user_ids:
        return {}
    rows = await conn.execute(select(User.id, User.email).where(User.id.in_(user_ids)))
    return {row.id: row.email for row in rows}


Line = list[tuple[datetime, datetime, People]]


def _diff(
    source: Line, tocsin: Line, since: datetime, until: datetime
) -> tuple[int, list[Disagreement]]:
    """Hours checked, and the stretches of [since, until) where the two lines differ."""
    cuts = {since, until}
    hour = since
    while hour < until:
        cuts.add(hour)
        hour += _HOUR
    for start, end, _ in (*source, *tocsin):
        cuts.update(point for point in (start, end) if since < point < until)
    points = sorted(cuts)
    found: list[Disagreement] = []
    for start, end in itertools.pairwise(points):
        theirs = _at(source, start)
        ours = _at(tocsin, start)
        if theirs == ours:
            continue
        last = found[-1] if found else None
        if last and last.end == start and last.source == theirs and last.tocsin == ours:
            found[-1] = Disagreement(last.start, end, theirs, ours)
        else:
            found.append(Disagreement(start, end, theirs, ours))
    hours = int((until - since) / _HOUR)
    return hours, found


def _at(line: Line, instant: datetime) -> People:
    people: set[str] = set()
    for start, end, who in line:
        if start <= instant < end:
            people.update(who)
    return tuple(sorted(people))


def render_comparison(results: list[ScheduleComparison]) -> str:
    """The comparison as the terminal shows it."""
    lines = []
    for result in results:
        if result.problem:
            lines.append(f"{result.name}: not compared: {result.problem}")
            continue
        count = len(result.disagreements)
        lines.append(f"{result.name}: {result.hours} hours compared, {count} disagreements")
        for item in result.disagreements:
            lines.append(
                f"  {item.start:%Y-%m-%d %H:%M}Z to {item.end:%Y-%m-%d %H:%M}Z: source says "
                f"{', '.join(item.source) or 'nobody'}; Tocsin says "
                f"{', '.join(item.tocsin) or 'nobody'}"
            )
    return "\n".join(lines) + "\n"
