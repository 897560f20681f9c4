"""iCalendar (RFC 5545) feeds of shifts, and the per-user secret tokens that unlock them.

Calendar apps subscribe to a URL and cannot send an API key, so the URL carries a secret of its
own: one per user, random, stored only as SHA-256 like API keys, revocable by rotating it. It
only ever unlocks reading shifts, never the API.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from icalendar import Calendar, Event
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tocsin.auth.models import User
from tocsin.auth.secrets import display_prefix, hash_token, new_token
from tocsin.schedules.models import CalendarToken
from tocsin.schedules.store import ScheduleShift

CALENDAR_TOKEN_PREFIX = "tcal"
# What a subscribed calendar shows: a little history and the months ahead.
FEED_PAST = timedelta(days=30)
FEED_FUTURE = timedelta(days=180)
PRODID = "-//Tocsin//On-call schedules//EN"

_tokens = CalendarToken.__table__
_users = User.__table__


@dataclass(frozen=True, slots=True)
class TokenStatus:
    prefix: str
    created_at: datetime


def user_calendar_url(public_url: str, user_id: uuid.UUID, token: str) -> str:
    """The URL a calendar app subscribes to for this user's shifts."""
    return f"{public_url.rstrip('/')}/api/v1/users/{user_id}/ical?token={token}"


async def issue_calendar_token(
    conn: AsyncConnection, user_id: uuid.UUID, *, now: datetime
) -> tuple[str, TokenStatus]:
    """A new calendar token for `user_id`, replacing (and so revoking) any earlier one."""
    token = new_token(CALENDAR_TOKEN_PREFIX)
    await conn.execute(delete(CalendarToken).where(_tokens.c.user_id == user_id))
    status = TokenStatus(prefix=display_prefix(token), created_at=now)
    await conn.execute(
        insert(CalendarToken).values(
            user_id=user_id,
            token_hash=hash_token(token),
            prefix=status.prefix,
            created_at=now,
        )
    )
    return token, status


async def revoke_calendar_token(conn: AsyncConnection, user_id: uuid.UUID) -> None:
    await conn.execute(delete(CalendarToken).where(_tokens.c.user_id == user_id))


async def find_token_status(conn: AsyncConnection, user_id: uuid.UUID) -> TokenStatus | None:
    row = (
        await conn.execute(
            select(_tokens.c.prefix, _tokens.c.created_at).where(_tokens.c.user_id == user_id)
        )
    ).first()
    return None if row is None else TokenStatus(prefix=row.prefix, created_at=row.created_at)


async def find_user_by_calendar_token(
    conn: AsyncConnection, token: str
) -> tuple[uuid.UUID, bool] | None:
    """(user id, is admin) of an active user holding `token`, or None.

    The lookup is a unique-index probe on the token's hash, so timing reveals nothing useful.
    """
    row = (
        await conn.execute(
            select(_users.c.id, _users.c.is_admin)
            .join(_tokens, _tokens.c.user_id == _users.c.id)
            .where(_tokens.c.token_hash == hash_token(token), _users.c.is_active.is_(True))
        )
    ).first()
    return None if row is None else (row.id, row.is_admin)


async def find_user_names(
    conn: AsyncConnection, user_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, str]:
    if not user_ids:
        return {}
    rows = await conn.execute(
        select(_users.c.id, _users.c.name).where(_users.c.id.in_(set(user_ids)))
    )
    return {row.id: row.name for row in rows}


def render_calendar(
    *,
    name: str,
    shifts: Sequence[ScheduleShift],
    user_names: Mapping[uuid.UUID, str],
    now: datetime,
    summary_by_schedule: bool,
) -> bytes:
    """An RFC 5545 VCALENDAR with one VEVENT per shift, all times in UTC.

    `summary_by_schedule` titles events by schedule ("On call: Payments primary", for one
    person's calendar); otherwise by who is on call ("On call: Alice, Bob").
    """
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", name)
    for item in shifts:
        shift = item.shift
        people = ", ".join(user_names.get(user_id, str(user_id)) for user_id in shift.user_ids)
        event = Event()
        event.add("uid", _uid(item))
        event.add("dtstamp", now)
        event.add("dtstart", shift.start)
        event.add("dtend", shift.end)
        event.add("summary", f"On call: {item.schedule_name if summary_by_schedule else people}")
        event.add(
            "description",
            f"Schedule: {item.schedule_name}\nOn call: {people}\n"
            f"From {shift.source.kind} {shift.source.id}",
        )
        event.add("transp", "TRANSPARENT")
        calendar.add_component(event)
    return bytes(calendar.to_ical())


def _uid(item: ScheduleShift) -> str:
    """Stable for the same shift across refreshes, so calendar apps update rather than add."""
    shift = item.shift
    key = "|".join(
        [
            str(item.schedule_id),
            str(shift.source.id),
            ",".join(str(user_id) for user_id in shift.user_ids),
            shift.start.isoformat(),
            shift.end.isoformat(),
        ]
    )
    return f"{hashlib.sha256(key.encode()).hexdigest()[:32]}@tocsin"
