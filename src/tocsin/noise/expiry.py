"""The worker's noise step: silences past their end are marked expired, and snoozed
incidents whose time has come return to open, which starts paging again."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Protocol

from sqlalchemy import bindparam, select, update

from tocsin.clock import Clock
from tocsin.incidents.lifecycle import Action, IllegalTransition, apply_transition
from tocsin.incidents.models import Incident, IncidentStatus
from tocsin.incidents.timeline import SYSTEM
from tocsin.noise.models import Silence
from tocsin.noise.silences import expire_ended_silences
from tocsin.realtime.events import StreamEvent
from tocsin.store.connection import Database

_BATCH = 50


class Collaborators(Protocol):
    """What the step uses of the worker that runs it (a WorkerContext is one): the step
    depends on these three, not on the worker package above it."""

    @property
    def engine(self) -> Database: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def announce(self) -> Callable[[Iterable[tuple[str, uuid.UUID]]], None]: ...


_DUE_SNOOZES = (
    select(Incident.id, Incident.status)
    .where(Incident.snoozed_until.is_not(None))
    .order_by(Incident.snoozed_until)
    .limit(_BATCH)
)


_ENDED_SILENCE = (
    select(Silence.id)
    .where(Silence.expired_at.is_(None), Silence.ends_at <= bindparam("now"))
    .limit(1)
)
_DUE_SNOOZE = select(Incident.id).where(Incident.snoozed_until <= bindparam("now")).limit(1)


async def _anything_due(ctx: Collaborators, now: datetime) -> bool:
    # Looked at on a read connection first: the loop runs this every poll, and on SQLite a
    # write transaction would take the one write lock each time for nothing.
    async with ctx.engine.connect() as conn:
        for query in (_ENDED_SILENCE, _DUE_SNOOZE):
            if (await conn.execute(query, {"now": now})).first() is not None:
                return True
    return False


async def end_silences_and_snoozes(ctx: Collaborators) -> bool:
    """One batch; True if it found anything to do."""
    now = ctx.clock.now()
    if not await _anything_due(ctx, now):
        return False
    woken = []
    async with ctx.engine.begin() as conn:
        expired = await expire_ended_silences(conn, now=now)
        rows = (await conn.execute(_DUE_SNOOZES.where(Incident.snoozed_until <= now))).all()
        for row in rows:
            # Clearing first (conditionally) makes a second worker on the same row a no-op.
            cleared = await conn.execute(
                update(Incident)
                .where(Incident.id == row.id, Incident.snoozed_until <= now)
                .values(snoozed_until=None)
            )
            if cleared.rowcount != 1 or row.status != IncidentStatus.ACKNOWLEDGED:
                continue
            try:
                await apply_transition(
                    conn, row.id, Action.UNACKNOWLEDGE, actor=SYSTEM, now=now, note="snooze ended"
                )
            except IllegalTransition:
                continue  # resolved a moment ago
            woken.append(row.id)
    ctx.announce((StreamEvent.INCIDENT_UPDATED, i) for i in woken)
    return bool(expired or rows)
