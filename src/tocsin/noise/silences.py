"""Silences: creating, listing and expiring them, and the draft "silence like this" offers."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.alerts.models import Alert
from tocsin.catalog.models import Service
from tocsin.errors import Conflict, NotFound
from tocsin.incidents.models import Incident
from tocsin.noise.matchers import MatchOp
from tocsin.noise.models import Silence
from tocsin.noise.rulecache import note_rules_changed
from tocsin.noise.schemas import MatcherOut, SilenceCreate, SilenceOut
from tocsin.store.connection import Connection


class SilenceNotFound(NotFound):
    def __init__(self, silence_id: uuid.UUID) -> None:
        super().__init__(f"silence {silence_id} not found")


def silence_state(silence: Silence, now: datetime) -> str:
    if silence.expired_at is not None or silence.ends_at <= now:
        return "expired"
    return "pending" if silence.starts_at > now else "active"


def silence_out(silence: Silence, now: datetime) -> SilenceOut:
    return SilenceOut(
        id=silence.id,
        team_id=silence.team_id,
        matchers=[MatcherOut.model_validate(m) for m in silence.matchers],
        starts_at=silence.starts_at,
        ends_at=silence.ends_at,
        comment=silence.comment,
        created_by=silence.created_by,
        created_at=silence.created_at,
        expired_at=silence.expired_at,
        state=silence_state(silence, now),
    )


async def create_silence(
    session: AsyncSession, body: SilenceCreate, *, by: uuid.UUID, now: datetime
) -> Silence:
    silence = Silence(
        team_id=body.team_id,
        matchers=[m.matcher().as_dict() for m in body.matchers],
        starts_at=body.starts_at or now,
        ends_at=body.ends_at,
        comment=body.comment,
        created_by=by,
        created_at=now,
    )
    session.add(silence)
    await session.flush()
    await note_rules_changed(session)
    return silence


async def find_silence(session: AsyncSession, silence_id: uuid.UUID) -> Silence:
    silence = await session.get(Silence, silence_id)
    if silence is None:
        raise SilenceNotFound(silence_id)
    return silence


async def list_silences(
    session: AsyncSession, *, teams: set[uuid.UUID] | None, state: str | None, now: datetime
) -> list[Silence]:
    """Silences of these teams (None: all) and the global ones, newest first."""
    stmt = select(Silence).order_by(Silence.created_at.desc(), Silence.id)
    if teams is not None:
        stmt = stmt.where(or_(Silence.team_id.is_(None), Silence.team_id.in_(teams)))
    live = Silence.expired_at.is_(None) & (Silence.ends_at > now)
    if state == "expired":
        stmt = stmt.where(~live)
    elif state == "active":
        stmt = stmt.where(live, Silence.starts_at <= now)
    elif state == "pending":
        stmt = stmt.where(live, Silence.starts_at > now)
    return list((await session.execute(stmt.limit(500))).scalars())


async def expire_silence(session: AsyncSession, silence: Silence, *, now: datetime) -> None:
    """End it now; alerts from now on are no longer silenced by it."""
    if silence.expired_at is not None:
        raise Conflict("this silence has already expired")
    silence.expired_at = now
    silence.ends_at = min(silence.ends_at, now)
    await session.flush()
    await note_rules_changed(session)


async def count_silenced(
    session: AsyncSession, silence_ids: list[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """How many alerts each silence kept from opening an incident."""
    if not silence_ids:
        return {}
    rows = await session.execute(
        select(Alert.suppressed_by, func.count())
        .where(Alert.suppressed_by.in_(silence_ids))
        .group_by(Alert.suppressed_by)
    )
    return {row[0]: int(row[1]) for row in rows if row[0] is not None}


async def silence_like(
    session: AsyncSession, incident: Incident, *, now: datetime
) -> SilenceCreate:
    """A draft silence for alerts like this incident's first one: its service and tags, or
    its title when it has no tags; for two hours from now."""
    first = (
        await session.execute(
            select(Alert.tags, Alert.title)
            .where(Alert.incident_id == incident.id)
            .order_by(Alert.received_at)
            .limit(1)
        )
    ).first()
    matchers: list[dict[str, str]] = []
    if incident.service_id is not None:
        name = (
            await session.execute(select(Service.name).where(Service.id == incident.service_id))
        ).scalar_one_or_none()
        if name:
            matchers.append({"field": "service", "op": MatchOp.EQUAL, "value": name})
    tags = dict(first.tags) if first is not None else {}
    for key, value in sorted(tags.items())[:10]:
        matchers.append(
            {"field": "tag", "name": str(key), "op": MatchOp.EQUAL, "value": str(value)}
        )
    if not tags:
        title = first.title if first is not None else incident.title
        matchers.append({"field": "title", "op": MatchOp.EQUAL, "value": title[:1000]})
    return SilenceCreate.model_validate(
        {
            "team_id": incident.team_id,
            "matchers": matchers,
            "starts_at": now,
            "ends_at": now + timedelta(hours=2),
            "comment": f"Like incident #{incident.number}: {incident.title}"[:2000],
        }
    )


async def expire_ended_silences(conn: Connection, *, now: datetime) -> int:
    """Mark every silence whose end has passed as expired; how many were."""
    result = await conn.execute(
        update(Silence)
        .where(Silence.expired_at.is_(None), Silence.ends_at <= now)
        .values(expired_at=now)
    )
    expired = int(result.rowcount or 0)
    if expired:
        await note_rules_changed(conn)  # not needed for correctness: drops them from caches
    return expired
