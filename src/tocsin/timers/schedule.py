"""Writing and cancelling escalation timers, in the caller's transaction: a new incident's
start, a level's timeout, an acknowledgement's timeout, the resume after an incident is OPEN
again, an added responder, an escalation moved or reassigned by hand; and stopping everything
pending when an incident stops escalating (`after_status_change`: what a change of status
implies, in one place). A row due now wakes the workers when the transaction commits
(tocsin.store.wakeup)."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, insert, update

from tocsin.store.connection import Connection
from tocsin.store.schema import unset
from tocsin.store.wakeup import announce_work
from tocsin.timers import attached
from tocsin.timers.models import EscalationJob, JobKind

FIRST_LEVEL = 1


def timer_row(
    incident_id: uuid.UUID,
    *,
    level: int,
    repeat: int,
    at: datetime,
    now: datetime,
    seq: int = 0,
    kind: JobKind = JobKind.LEVEL,
) -> dict[str, Any]:
    """The column values of a new pending timer."""
    return {
        "id": uuid.uuid4(),
        "incident_id": incident_id,
        "scheduled_level": level,
        "scheduled_repeat": repeat,
        "scheduled_for": at,
        "completed": False,
        "created_at": now,
        "kind": kind,
        "escalation_seq": seq,
        "attempts": 0,
    }


# Built once: a statement object reused keeps its compiled form's cache key.
_INSERT_TIMERS = insert(EscalationJob)


async def insert_timer(conn: Connection, row: dict[str, Any]) -> uuid.UUID:
    """Insert one timer row (from `timer_row`), waking the workers if it is already due;
    returns its id."""
    await insert_timers(conn, [row])
    job_id: uuid.UUID = row["id"]
    return job_id


async def insert_timers(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert timer rows (from `timer_row`) in one statement, waking the workers if one of
    them is already due."""
    await conn.execute(_INSERT_TIMERS, rows)
    if any(row["scheduled_for"] <= row["created_at"] for row in rows):
        await announce_work(conn)


async def schedule_page_now(
    conn: Connection, incident_id: uuid.UUID, *, level: int, repeat: int, seq: int, now: datetime
) -> None:
    """An ESCALATE timer due at once, valid for the escalation's step `seq`: the worker pages
    the level now (escalate-now, a policy changed by hand), woken now."""
    row = timer_row(
        incident_id, level=level, repeat=repeat, at=now, now=now, seq=seq, kind=JobKind.ESCALATE
    )
    await insert_timer(conn, row)


async def schedule_responder(
    conn: Connection,
    incident_id: uuid.UUID,
    *,
    seq: int,
    user_id: uuid.UUID | None,
    policy_id: uuid.UUID | None,
    now: datetime,
) -> None:
    """A RESPONDER timer due at once (escalation/responders.py), waking the workers."""
    row = timer_row(
        incident_id, level=0, repeat=0, at=now, now=now, seq=seq, kind=JobKind.RESPONDER
    )
    row.update(responder_user_id=user_id, responder_policy_id=policy_id)
    await insert_timer(conn, row)


async def schedule_reassign(
    conn: Connection, incident_id: uuid.UUID, *, seq: int, user_id: uuid.UUID, now: datetime
) -> None:
    """A REASSIGN timer due at once, valid for the escalation's step `seq`: the worker pages
    the new assignee (escalation/actions.py), woken now."""
    row = timer_row(incident_id, level=0, repeat=0, at=now, now=now, seq=seq, kind=JobKind.REASSIGN)
    row.update(responder_user_id=user_id)
    await insert_timer(conn, row)


async def schedule_starts(
    conn: Connection, incident_ids: list[uuid.UUID], *, now: datetime
) -> None:
    """The start timers of new incidents, due at once, in one statement: the worker pages
    level 1 of each (escalation/step.py), woken now rather than at its next poll."""
    if not incident_ids:
        return
    await conn.execute(
        _INSERT_TIMERS,
        [
            timer_row(incident_id, level=FIRST_LEVEL, repeat=0, at=now, now=now, kind=JobKind.START)
            for incident_id in incident_ids
        ],
    )
    await announce_work(conn)


@dataclass(frozen=True)
class AckTimeout:
    """The acknowledgement timeout timer written: when it runs out."""

    job_id: uuid.UUID
    at: datetime


_CANCEL_TIMERS = (
    update(EscalationJob)
    .where(
        EscalationJob.incident_id == bindparam("of_incident"),
        unset(EscalationJob.completed),
        EscalationJob.cancelled_at.is_(None),
    )
    .values(cancelled_at=bindparam("at"))
)


def _ack_timeout_row(
    source: attached.AckTimeoutSource | None, incident_id: uuid.UUID, *, now: datetime
) -> dict[str, Any] | None:
    """The ACK_TIMEOUT timer after an acknowledgement: it returns the incident to OPEN when
    the acknowledgement timeout of its policy runs out (the policy as snapshotted when its
    escalation started, or its policy as it is now if it has not started); None when the
    policy has none."""
    if source is None or not source.minutes:
        return None
    at = now + timedelta(minutes=source.minutes)
    return timer_row(
        incident_id,
        level=source.level,
        repeat=source.repeat,
        at=at,
        now=now,
        seq=source.seq,
        kind=JobKind.ACK_TIMEOUT,
    )


class StatusChange(enum.StrEnum):
    """What an incident's change of status (incidents/lifecycle.py) means for its timers."""

    # Stops escalating: pending timers and unsent pages are cancelled, and the policy's
    # acknowledgement timeout (if it has one) is scheduled.
    ACKNOWLEDGED = "acknowledged"
    # Resolved or closed: pending timers and unsent pages are cancelled.
    STOPPED = "stopped"
    # OPEN again: a RESUME timer due at once, with which the worker pages its current level
    # again (or starts its escalation, if it never started).
    OPEN_AGAIN = "open_again"


async def after_status_change(
    conn: Connection, incident_id: uuid.UUID, change: StatusChange, *, now: datetime
) -> AckTimeout | None:
    """Write the timer rows a change of the incident's status implies, in the caller's
    transaction: what the timers need is read first, then the rows are written. Returns the
    acknowledgement timeout scheduled, if any (a RESUME timer is due at once and wakes the
    workers)."""
    new: dict[str, Any] | None = None
    if change is StatusChange.ACKNOWLEDGED:
        source = await attached.ack_timeout_source()(conn, incident_id)
        new = _ack_timeout_row(source, incident_id, now=now)
    elif change is StatusChange.OPEN_AGAIN:
        new = timer_row(incident_id, level=0, repeat=0, at=now, now=now, kind=JobKind.RESUME)
    if change is not StatusChange.OPEN_AGAIN:
        await conn.execute(_CANCEL_TIMERS, {"of_incident": incident_id, "at": now})
        # Unsent pages: notifications owns them and says how they stop (timers/attached.py).
        # One a worker is sending right now still goes out.
        await attached.page_stopper()(conn, incident_id, now=now)
    if new is None:
        return None
    await insert_timer(conn, new)
    if change is StatusChange.OPEN_AGAIN:
        return None
    return AckTimeout(new["id"], new["scheduled_for"])


async def cancel_pending_timers(conn: Connection, incident_id: uuid.UUID, *, now: datetime) -> int:
    """Cancel every timer of the incident that has not fired; returns how many."""
    result = await conn.execute(_CANCEL_TIMERS, {"of_incident": incident_id, "at": now})
    return result.rowcount or 0
