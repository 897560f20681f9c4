"""The worker step that sends due deliveries: claim, send, record.

1. Claim a batch of due pending rows by writing our lease on them (`FOR UPDATE SKIP LOCKED`
   on PostgreSQL, so workers on many machines never take the same row; SQLite has one
   writer). A row whose lease ran out (its worker died mid-send) is due again.
2. Send each outside any transaction, all at once, each under the per-channel timeout, so
   a receiver that never answers holds up nobody else.
3. Record every attempt and the row's new state in one transaction: sent; pending again
   with exponential backoff; or failed after a permanent error or the last attempt.

A worker killed between 2 and 3 leaves the row leased; when the lease ends it is sent
again with the same idempotency key, which is what makes delivery at-least-once and, for
receivers that honour the key, exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, bindparam, func, insert, select, update

from tocsin.catalog.models import Service
from tocsin.config import Settings
from tocsin.db import read_only
from tocsin.incidents.models import Incident, IncidentStatus
from tocsin.incidents.timeline import SYSTEM, EventKind, TimelineEntry, append_to_timelines
from tocsin.notifications.channels import ChannelError, OutgoingMessage, Recipient
from tocsin.notifications.channels.registry import (
    UnknownChannel,
    channel_name_for,
    make_channel,
)
from tocsin.notifications.messages import (
    IncidentFacts,
    bundle_message,
    incident_message,
    plain_message,
    verification_text,
)
from tocsin.notifications.models import (
    DELIVERIES,
    AttemptStatus,
    ContactKind,
    ContactMethod,
    Delivery,
    DeliveryAttempt,
    DeliveryKind,
    DeliveryStatus,
)
from tocsin.notifications.redaction import short_error
from tocsin.notifications.throttle import RecentSends, decide
from tocsin.store import queue
from tocsin.store.connection import Connection, Database
from tocsin.teams.models import Team
from tocsin.telemetry.logs import log_context
from tocsin.telemetry.tracing import span
from tocsin.worker.context import WorkerContext

log = logging.getLogger(__name__)

_CLAIMED_COLUMNS = (
    Delivery.id,
    Delivery.kind,
    Delivery.idempotency_key,
    Delivery.incident_id,
    Delivery.user_id,
    Delivery.contact_method_id,
    Delivery.rule_id,
    Delivery.contact_kind,
    Delivery.address,
    Delivery.attempts,
    Delivery.payload,
)


@dataclass(frozen=True)
class Claimed:
    id: uuid.UUID
    kind: DeliveryKind
    idempotency_key: str
    incident_id: uuid.UUID | None
    user_id: uuid.UUID
    contact_method_id: uuid.UUID | None
    rule_id: uuid.UUID | None
    contact_kind: ContactKind
    address: str
    attempts: int  # including this one
    payload: dict[str, Any]


@dataclass(frozen=True)
class Send:
    """One message to send, standing for one delivery or (a bundle) for several."""

    rows: list[Claimed]
    message: OutgoingMessage | None  # None: nothing can be sent (see `refusal`)
    refusal: str | None = None


@dataclass(frozen=True)
class Outcome:
    send: Send
    channel: str
    status: AttemptStatus
    provider_id: str | None
    error: str | None
    started_at: datetime
    finished_at: datetime


def backoff(attempts: int, settings: Settings) -> timedelta:
    """Wait before try number attempts + 1: base, 2x base, 4x base ..., capped."""
    seconds = settings.notify_backoff_seconds * 2 ** max(0, attempts - 1)
    return timedelta(seconds=min(seconds, settings.notify_backoff_max_seconds))


async def _claim(
    conn: Connection,
    ctx: WorkerContext,
    now: datetime,
    limit: int,
    where: tuple[ColumnElement[bool], ...] = (),
) -> list[Claimed]:
    """Lease up to `limit` due rows (matching `where`), oldest due first."""
    rows = await queue.claim(
        conn,
        DELIVERIES,
        owner=ctx.worker_id,
        now=now,
        lease=ctx.lease,
        limit=limit,
        where=where,
        returning=_CLAIMED_COLUMNS,
        values={"updated_at": now},
    )
    claimed = [Claimed(*tuple(row)[1:]) for row in rows]
    claimed.sort(key=lambda c: c.idempotency_key)
    return claimed


_PARKED_NOTE = "its worker stopped while sending it, {tries} times; not sent again"


async def _park_kept_failing(
    conn: Connection, ctx: WorkerContext, claimed: list[Claimed], now: datetime
) -> list[Claimed]:
    """Park the claimed rows whose every worker died while sending them (the queue's policy
    for rows that keep failing): failed, with why on the incident's timeline. The others."""
    cap = ctx.settings.notify_max_attempts
    keep: list[Claimed] = []
    timeline: list[tuple[uuid.UUID, TimelineEntry]] = []
    for row in claimed:
        if not queue.kept_failing(row.attempts, cap=cap):
            keep.append(row)
            continue
        note = _PARKED_NOTE.format(tries=row.attempts - 1)
        parked = await queue.park(
            conn,
            DELIVERIES,
            row.id,
            owner=ctx.worker_id,
            now=now,
            values={"status": DeliveryStatus.FAILED, "last_error": note, "updated_at": now},
        )
        log.error("delivery %s parked: %s", row.id, note)
        if parked and row.incident_id is not None:
            entry = TimelineEntry(
                kind=EventKind.NOTIFICATION_FAILED,
                actor=SYSTEM,
                note=f"{row.contact_kind.value} notification parked: {note}",
                data={"delivery_id": str(row.id), "user_id": str(row.user_id), "parked": True},
            )
            timeline.append((row.incident_id, entry))
    await append_to_timelines(conn, timeline, now=now)
    return keep


# Pages of an incident that is no longer open, cancelled when claimed (an acknowledgement
# cancels them in its own transaction; this catches any written or left pending after it).
_CANCEL_STALE_PAGES = (
    update(Delivery)
    .where(
        Delivery.id.in_(bindparam("ids", expanding=True)),
        Delivery.lease_owner == bindparam("owner"),
        Delivery.status == DeliveryStatus.PENDING,
    )
    .values(
        status=DeliveryStatus.CANCELLED,
        updated_at=bindparam("now"),
        attempts=Delivery.attempts - 1,  # never tried
        **queue.released(DELIVERIES),
    )
)


async def _drop_stale_pages(
    conn: Connection, ctx: WorkerContext, claimed: list[Claimed], now: datetime
) -> list[Claimed]:
    """Re-check each claimed page's incident: one acknowledged, resolved or closed since the
    page was written is not paged (cancelled); the rows to send."""
    incident_ids = {r.incident_id for r in claimed if r.kind == DeliveryKind.PAGE and r.incident_id}
    if not incident_ids:
        return claimed
    open_ids = set(
        (
            await conn.execute(
                select(Incident.id).where(
                    Incident.id.in_(incident_ids), Incident.status == IncidentStatus.OPEN
                )
            )
        ).scalars()
    )
    stale = [
        r
        for r in claimed
        if r.kind == DeliveryKind.PAGE and r.incident_id and r.incident_id not in open_ids
    ]
    if not stale:
        return claimed
    await conn.execute(
        _CANCEL_STALE_PAGES, {"ids": [r.id for r in stale], "owner": ctx.worker_id, "now": now}
    )
    log.info("%d pages of incidents no longer open cancelled when claimed", len(stale))
    dropped = {r.id for r in stale}
    return [r for r in claimed if r.id not in dropped]


Address = tuple[uuid.UUID, ContactKind, str]  # a person's one way of being reached


async def _recent_sends(
    conn: Connection, addresses: Iterable[Address], since: datetime
) -> dict[Address, RecentSends]:
    """Page messages each of these addresses of each person got since `since` (bundles
    count once): one statement for a whole batch; an address with none is left out."""
    wanted = set(addresses)
    if not wanted:
        return {}
    rows = await conn.execute(
        select(
            Delivery.user_id,
            Delivery.contact_kind,
            Delivery.address,
            func.count(),
            func.min(Delivery.sent_at),
        )
        .where(
            Delivery.user_id.in_({user_id for user_id, _, _ in wanted}),
            Delivery.kind == DeliveryKind.PAGE,
            Delivery.status == DeliveryStatus.SENT,
            Delivery.bundled_into_id.is_(None),
            Delivery.sent_at > since,
        )
        .group_by(Delivery.user_id, Delivery.contact_kind, Delivery.address)
    )
    found = {}
    for user_id, kind, address, count, oldest in rows:
        if (user_id, kind, address) in wanted:
            found[(user_id, kind, address)] = RecentSends(int(count), oldest)
    return found


async def _load_incident_facts(
    conn: Connection, incident_ids: set[uuid.UUID]
) -> dict[uuid.UUID, IncidentFacts]:
    if not incident_ids:
        return {}
    rows = await conn.execute(
        select(
            Incident.id,
            Incident.number,
            Incident.title,
            Incident.priority,
            Incident.status,
            Service.name.label("service"),
            Team.name.label("team"),
        )
        .join(Team, Team.id == Incident.team_id)
        .outerjoin(Service, Service.id == Incident.service_id)
        .where(Incident.id.in_(incident_ids))
    )
    return {
        r.id: IncidentFacts(
            r.id, r.number, r.title, r.priority.value, r.status.value, r.service, r.team
        )
        for r in rows
    }


async def _load_secrets(
    conn: Connection, method_ids: set[uuid.UUID]
) -> dict[uuid.UUID, str | None]:
    if not method_ids:
        return {}
    rows = await conn.execute(
        select(ContactMethod.id, ContactMethod.signing_secret).where(
            ContactMethod.id.in_(method_ids)
        )
    )
    return {r.id: r.signing_secret for r in rows}


def _message_for_one(
    row: Claimed, facts: dict[uuid.UUID, IncidentFacts], settings: Settings, now: datetime
) -> Send:
    if row.kind == DeliveryKind.VERIFICATION:
        code = str(row.payload.get("code", ""))
        return Send(
            [row],
            plain_message(
                "Your Tocsin verification code",
                verification_text(code),
                idempotency_key=row.idempotency_key,
                kind="contact_method.verification",
            ),
        )
    if row.kind == DeliveryKind.TEST:
        return Send(
            [row],
            plain_message(
                "Tocsin test message",
                "This is a test message from Tocsin: this contact method works.",
                idempotency_key=row.idempotency_key,
                kind="contact_method.test",
            ),
        )
    incident = facts.get(row.incident_id) if row.incident_id else None
    if incident is None:
        return Send([row], None, "the incident no longer exists")
    return Send(
        [row],
        incident_message(
            settings,
            incident,
            user_id=row.user_id,
            idempotency_key=row.idempotency_key,
            now=now,
        ),
    )


async def _plan_sends(
    conn: Connection, ctx: WorkerContext, claimed: list[Claimed], now: datetime
) -> tuple[list[Send], list[tuple[Claimed, datetime]]]:
    """What to send for the claimed rows (after throttling), and which rows wait until when.
    May claim more of a flooded person's due pages, to bundle them all at once."""
    settings = ctx.settings
    window = timedelta(seconds=settings.notify_window_seconds)
    groups: dict[Address, list[Claimed]] = defaultdict(list)
    others: list[Claimed] = []
    for row in claimed:
        if row.kind == DeliveryKind.PAGE:
            groups[(row.user_id, row.contact_kind, row.address)].append(row)
        else:
            others.append(row)

    singles: list[Claimed] = list(others)
    bundles: list[list[Claimed]] = []
    deferred: list[tuple[Claimed, datetime]] = []
    recent_sends = await _recent_sends(conn, groups, now - window)
    for (user_id, kind, address), rows in groups.items():
        recent = recent_sends.get((user_id, kind, address), RecentSends(0, None))
        by_id = {r.id: r for r in rows}
        decision = decide(
            [r.id for r in rows], recent, burst=settings.notify_burst, window=window, now=now
        )
        singles.extend(by_id[i] for i in decision.singles)
        if decision.deferred and decision.defer_until is not None:
            deferred.extend((by_id[i], decision.defer_until) for i in decision.deferred)
        if decision.bundle:
            # Take every other due page of this person's address into the same bundle.
            more = await _claim(
                conn,
                ctx,
                now,
                1000,
                (
                    Delivery.kind == DeliveryKind.PAGE,
                    Delivery.user_id == user_id,
                    Delivery.contact_kind == kind,
                    Delivery.address == address,
                ),
            )
            more = await _drop_stale_pages(conn, ctx, more, now)
            bundles.append([by_id[i] for i in decision.bundle] + more)

    incident_ids = {r.incident_id for r in claimed if r.incident_id}
    incident_ids |= {r.incident_id for b in bundles for r in b if r.incident_id}
    facts = await _load_incident_facts(conn, incident_ids)
    sends = [_message_for_one(row, facts, settings, now) for row in singles]
    for rows in bundles:
        known = [facts[r.incident_id] for r in rows if r.incident_id in facts]
        leader = rows[0]
        sends.append(
            Send(
                rows,
                bundle_message(settings, known, idempotency_key=f"bundle:{leader.id}"),
            )
        )
    return sends, deferred


async def _attempt(
    send: Send, settings: Settings, secrets: dict[uuid.UUID, str | None], now: datetime
) -> Outcome:
    row = send.rows[0]
    attributes = {
        "tocsin.delivery_id": str(row.id),
        "tocsin.contact_kind": row.contact_kind.value,
        "tocsin.bundle_size": len(send.rows),
    }
    with log_context(incident_id=row.incident_id), span("notification.send", attributes):
        outcome = await _send(send, settings, secrets, now)
        if outcome.status != AttemptStatus.SENT:
            log.warning(
                "delivery %s via %s (attempt %d) %s: %s",
                row.id,
                outcome.channel,
                row.attempts,
                "failed for good" if outcome.status == AttemptStatus.FAILED else "will be retried",
                (outcome.error or "")[:300],
            )
        return outcome


async def _send(
    send: Send, settings: Settings, secrets: dict[uuid.UUID, str | None], now: datetime
) -> Outcome:
    row = send.rows[0]
    try:
        name = channel_name_for(row.contact_kind, settings)
    except ValueError:
        name = str(row.contact_kind)
    if send.message is None:
        return Outcome(send, name, AttemptStatus.FAILED, None, send.refusal, now, now)
    if row.rule_id is not None and row.contact_method_id is None:
        return Outcome(
            send, name, AttemptStatus.FAILED, None, "the contact method was removed", now, now
        )
    recipient = Recipient(
        row.address,
        signing_secret=secrets.get(row.contact_method_id) if row.contact_method_id else None,
    )
    try:
        channel = make_channel(name, settings)
        provider_id = await asyncio.wait_for(
            channel.send(recipient, send.message), timeout=settings.notify_timeout_seconds
        )
    except UnknownChannel as exc:
        return Outcome(send, name, AttemptStatus.FAILED, None, str(exc), now, now)
    except ChannelError as exc:
        final = exc.permanent or row.attempts >= settings.notify_max_attempts
        status = AttemptStatus.FAILED if final else AttemptStatus.RETRYING
        return Outcome(send, name, status, None, str(exc), now, now)
    except TimeoutError:
        final = row.attempts >= settings.notify_max_attempts
        status = AttemptStatus.FAILED if final else AttemptStatus.RETRYING
        error = f"no answer within {settings.notify_timeout_seconds:g} s"
        return Outcome(send, name, status, None, error, now, now)
    except Exception as exc:
        # A bug in a channel (a plugin's, say) must not stop the others: retry, and log it.
        log.exception("channel %s failed unexpectedly", name)
        final = row.attempts >= settings.notify_max_attempts
        status = AttemptStatus.FAILED if final else AttemptStatus.RETRYING
        return Outcome(send, name, status, None, f"{type(exc).__name__}: {exc}", now, now)
    return Outcome(send, name, AttemptStatus.SENT, provider_id, None, now, now)


# Recording a batch: one statement per kind of outcome, run with a row of parameters per
# delivery (executemany), each still conditional on our lease.
_MINE = (Delivery.id == bindparam("d_id"), Delivery.lease_owner == bindparam("d_owner"))
_RELEASED: dict[str, Any] = {
    **queue.released(DELIVERIES),
    "channel": bindparam("d_channel"),
    "updated_at": bindparam("d_now"),
}
_RECORD_SENT = (
    update(Delivery)
    .where(*_MINE)
    .values(
        **_RELEASED,
        status=DeliveryStatus.SENT,
        sent_at=bindparam("d_now"),
        provider_id=bindparam("d_provider"),
        last_error=None,
        bundled_into_id=bindparam("d_leader"),
        bundle_size=bindparam("d_size"),
    )
)
# The code of a verification has done its job once sent.
_RECORD_SENT_FORGET = _RECORD_SENT.values(payload={})
_RECORD_RETRY = (
    update(Delivery)
    .where(*_MINE, Delivery.status == DeliveryStatus.PENDING)
    .values(**_RELEASED, last_error=bindparam("d_error"), due_at=bindparam("d_due"))
)
# Throttled: back to pending until the window moves on; waiting is not an attempt.
_DEFER = (
    update(Delivery)
    .where(*_MINE)
    .values(
        **queue.released(DELIVERIES),
        attempts=Delivery.attempts - 1,
        due_at=bindparam("d_due"),
        updated_at=bindparam("d_now"),
    )
)
_RECORD_FAILED = (
    update(Delivery)
    .where(*_MINE, Delivery.status == DeliveryStatus.PENDING)
    .values(**_RELEASED, status=DeliveryStatus.FAILED, last_error=bindparam("d_error"))
)


async def _record(
    conn: Connection, ctx: WorkerContext, outcomes: list[Outcome], now: datetime
) -> None:
    attempts: list[dict[str, Any]] = []
    timeline: list[tuple[uuid.UUID, TimelineEntry]] = []
    updates: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for outcome in outcomes:
        leader = outcome.send.rows[0]
        for row in outcome.send.rows:
            params: dict[str, Any] = {
                "d_id": row.id,
                "d_owner": ctx.worker_id,
                "d_channel": outcome.channel,
                "d_now": now,
            }
            if outcome.status == AttemptStatus.SENT:
                # Sent even if the incident was acknowledged meanwhile: it did go out.
                statement = (
                    _RECORD_SENT_FORGET if row.kind == DeliveryKind.VERIFICATION else _RECORD_SENT
                )
                params |= {
                    "d_provider": outcome.provider_id,
                    "d_leader": leader.id if row is not leader else None,
                    "d_size": len(outcome.send.rows) if row is leader else 1,
                }
            elif outcome.status == AttemptStatus.RETRYING:
                statement = _RECORD_RETRY
                params |= {
                    "d_error": outcome.error,
                    "d_due": now + backoff(row.attempts, ctx.settings),
                }
            else:
                statement = _RECORD_FAILED
                params["d_error"] = outcome.error
            updates[statement].append(params)
            attempts.append(
                {
                    "id": uuid.uuid4(),
                    "delivery_id": row.id,
                    "number": row.attempts,
                    "status": outcome.status,
                    "channel": outcome.channel,
                    "worker_id": ctx.worker_id,
                    "provider_id": outcome.provider_id,
                    "error": outcome.error,
                    "started_at": outcome.started_at,
                    "finished_at": outcome.finished_at,
                }
            )
            if row.incident_id is not None:
                timeline.append((row.incident_id, _timeline_entry(row, outcome)))
    for statement, rows in updates.items():
        await conn.execute(statement, rows)
    if attempts:
        await conn.execute(insert(DeliveryAttempt), attempts)
    await append_to_timelines(conn, timeline, now=now)


_EVENT_FOR = {
    AttemptStatus.SENT: EventKind.NOTIFICATION_SENT,
    AttemptStatus.RETRYING: EventKind.NOTIFICATION_RETRYING,
    AttemptStatus.FAILED: EventKind.NOTIFICATION_FAILED,
}


def _timeline_entry(row: Claimed, outcome: Outcome) -> TimelineEntry:
    words = {
        AttemptStatus.SENT: "sent",
        AttemptStatus.RETRYING: "failed, will retry",
        AttemptStatus.FAILED: "failed for good",
    }[outcome.status]
    note = f"{row.contact_kind.value} notification via {outcome.channel} {words}"
    if outcome.error:
        note += f": {outcome.error}"
    return TimelineEntry(
        kind=_EVENT_FOR[outcome.status],
        actor=SYSTEM,
        note=note,
        data={
            "delivery_id": str(row.id),
            "user_id": str(row.user_id),
            "contact_kind": row.contact_kind.value,
            "channel": outcome.channel,
            "attempt": row.attempts,
            "provider_id": outcome.provider_id,
            "error": outcome.error,
            "bundle_size": len(outcome.send.rows),
        },
    )


async def send_due_deliveries(ctx: WorkerContext) -> bool:
    """Send one batch of due deliveries; True if there was any."""
    now = ctx.clock.now()
    async with ctx.engine.begin() as conn:
        claimed = await _claim(conn, ctx, now, ctx.settings.notify_batch_size)
        if not claimed:
            return False
        claimed = await _park_kept_failing(conn, ctx, claimed, now)
        claimed = await _drop_stale_pages(conn, ctx, claimed, now)
        sends, deferred = await _plan_sends(conn, ctx, claimed, now)
        method_ids = {r.contact_method_id for s in sends for r in s.rows if r.contact_method_id}
        secrets = await _load_secrets(conn, method_ids)
        if deferred:
            await conn.execute(
                _DEFER,
                [
                    {"d_id": row.id, "d_owner": ctx.worker_id, "d_due": until, "d_now": now}
                    for row, until in deferred
                ],
            )
    # A bounded number in flight per kind of channel: a storm's batch does not open a
    # hundred SMTP sessions at once, and one slow channel does not hold up the others.
    lanes: dict[ContactKind, asyncio.Semaphore] = defaultdict(
        lambda: asyncio.Semaphore(max(1, ctx.settings.notify_channel_concurrency))
    )

    async def in_lane(send: Send) -> Outcome:
        async with lanes[send.rows[0].contact_kind]:
            return await _attempt(send, ctx.settings, secrets, now)

    outcomes = await asyncio.gather(*(in_lane(send) for send in sends))
    finished = ctx.clock.now()
    async with ctx.engine.begin() as conn:
        await _record(
            conn,
            ctx,
            [
                # Errors are shown on the timeline to the whole team: short and plain.
                Outcome(
                    o.send,
                    o.channel,
                    o.status,
                    o.provider_id,
                    short_error(o.error),
                    o.started_at,
                    finished,
                )
                for o in outcomes
            ],
            finished,
        )
    return True


async def release_claims(engine: Database, *, worker_id: str) -> int:
    """Give back the deliveries this worker claimed and did not record (at shutdown): a
    step cut off mid-send. They go out again, with the same idempotency key."""
    async with engine.begin() as conn:
        return await queue.release(conn, DELIVERIES, owner=worker_id)


async def next_due_at(engine: Database, *, now: datetime) -> datetime | None:
    """When a pending delivery next becomes claimable (a retry's backoff, a delayed rule,
    a throttled page, or the end of another worker's lease)."""
    async with read_only(engine).connect() as conn:
        return await queue.next_due_at(conn, DELIVERIES, now=now)
