"""The worker step that fires due escalation timers.

A timer is taken in two transactions. The claim marks a batch of due rows with this worker's
id and a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so concurrent workers take disjoint
rows); then each row is fired in its own transaction, which locks the incident first, then the
timer, and re-checks both: a timer cancelled by an acknowledgement, or re-claimed by another
worker after our lease ran out, is left alone. A worker that dies after claiming just lets its
lease expire; one that dies while firing has its transaction rolled back. Either way the row is
fired once, later, by someone else, and the pages' unique (incident, seq, user) makes a double
page impossible even then.

A timer that keeps failing is not retried forever: every claim counts an attempt, and after
`timer_max_attempts` of them the timer is parked (completed with outcome `parked`), its
incident's timeline says paging is stuck, and /metrics and `tocsin status` count it. A
PostgreSQL serialization failure or deadlock is the database asking for a retry, so it is
retried at once and never counts.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import DBAPIError

from tocsin.db import read_only
from tocsin.escalation.batch import BATCH_KINDS, BatchTimer, fire_timers_together
from tocsin.escalation.engine import (
    find_escalation,
    lock_incident,
    move_on,
    page_directly,
    resume_escalation,
    start_escalation,
)
from tocsin.escalation.models import TIMERS, EscalationJob, JobKind, JobOutcome
from tocsin.escalation.plan import Position, Verdict, judge_timer
from tocsin.escalation.responders import page_responder
from tocsin.incidents.lifecycle import Action, apply_transition
from tocsin.incidents.timeline import SYSTEM, EventKind, TimelineEntry, append_events
from tocsin.realtime.events import StreamEvent
from tocsin.store import queue
from tocsin.store.backend import has_single_writer
from tocsin.store.connection import Connection, Database
from tocsin.store.schema import unset
from tocsin.telemetry.logs import log_context
from tocsin.telemetry.tracing import span
from tocsin.worker import metrics
from tocsin.worker.context import WorkerContext

log = logging.getLogger(__name__)

# Rows claimed per round trip; small enough that a lease never runs out while the batch is
# worked through (and, on SQLite, that one batch of starts holds the event loop for tens of
# milliseconds, not seconds), large enough to keep up with a storm.
CLAIM_BATCH = 100
# PostgreSQL: timers of a batch fired at the same time by one worker, each on its own
# connection (SQLite has one writer, so there they go one after another).
FIRE_CONCURRENCY = 8
# SQLSTATEs with which PostgreSQL asks the client to run the transaction again.
_RETRY_SQLSTATES = frozenset({"40001", "40P01"})  # serialization_failure, deadlock_detected
RETRIES_ON_CONFLICT = 3


@dataclass(frozen=True)
class ClaimedJob:
    id: uuid.UUID
    incident_id: uuid.UUID
    scheduled_for: datetime
    # Claims of this timer so far, this one included.
    attempts: int = 1
    kind: JobKind = JobKind.LEVEL


async def claim_due_jobs(
    engine: Database, *, worker_id: str, now: datetime, lease: timedelta, limit: int
) -> list[ClaimedJob]:
    """Lease up to `limit` due timers (earliest first) to this worker; committed at once."""
    async with engine.begin() as conn:
        rows = await queue.claim(
            conn,
            TIMERS,
            owner=worker_id,
            now=now,
            lease=lease,
            limit=limit,
            returning=(
                EscalationJob.id,
                EscalationJob.incident_id,
                EscalationJob.attempts,
                EscalationJob.kind,
            ),
        )
    return [
        ClaimedJob(r.id, r.incident_id, r.scheduled_for, r.attempts, JobKind(r.kind)) for r in rows
    ]


_TIMER_STILL_OURS = (
    select(EscalationJob.__table__)
    .where(
        EscalationJob.id == bindparam("job_id"),
        unset(EscalationJob.completed),
        EscalationJob.cancelled_at.is_(None),
        EscalationJob.lease_owner == bindparam("worker_id"),
    )
    .with_for_update()
)
_COMPLETE = (
    update(EscalationJob)
    .where(EscalationJob.id == bindparam("job_id"))
    .values(completed=True, executed_at=bindparam("now"), outcome=bindparam("outcome"))
)


async def fire_job(
    conn: Connection, job: ClaimedJob, *, worker_id: str, now: datetime
) -> JobOutcome | None:
    """Fire one claimed timer in the caller's transaction. None when it is no longer ours to
    fire (cancelled, already fired, or re-claimed by another worker)."""
    incident_id = job.incident_id
    # Incident first, then the timer: the order acknowledge uses, so the two never deadlock.
    incident = await lock_incident(conn, incident_id)
    timer = (
        await conn.execute(_TIMER_STILL_OURS, {"job_id": job.id, "worker_id": worker_id})
    ).first()
    if timer is None or incident is None:
        return None
    escalation = await find_escalation(conn, incident_id)
    verdict = judge_timer(
        kind=timer.kind,
        job_seq=timer.escalation_seq,
        status=incident.status,
        state=escalation.state if escalation else None,
        seq=escalation.seq if escalation else None,
    )
    if verdict == Verdict.START:
        await start_escalation(conn, incident, actor=SYSTEM, job_id=timer.id, now=now)
    elif verdict == Verdict.ESCALATE:
        assert escalation is not None
        await move_on(
            conn,
            escalation,
            team_id=incident.team_id,
            start=Position(timer.scheduled_level, timer.scheduled_repeat),
            actor=SYSTEM,
            job_id=timer.id,
            now=now,
        )
    elif verdict == Verdict.RESPONDER:
        await page_responder(
            conn,
            incident,
            job_id=timer.id,
            seq=timer.escalation_seq,
            user_id=timer.responder_user_id,
            policy_id=timer.responder_policy_id,
            now=now,
        )
    elif verdict == Verdict.REASSIGN:
        assert escalation is not None and timer.responder_user_id is not None
        await page_directly(
            conn,
            escalation,
            user_id=timer.responder_user_id,
            actor=SYSTEM,
            job_id=timer.id,
            now=now,
        )
    elif verdict == Verdict.RESUME:
        await resume_escalation(
            conn, incident_id, team_id=incident.team_id, actor=SYSTEM, job_id=timer.id, now=now
        )
    elif verdict == Verdict.REOPEN:
        # Back to OPEN through the lifecycle, which writes the RESUME timer that pages.
        await apply_transition(
            conn,
            incident_id,
            Action.UNACKNOWLEDGE,
            actor=SYSTEM,
            now=now,
            note="the acknowledgement timed out",
        )
    outcome = JobOutcome.STALE if verdict == Verdict.STALE else JobOutcome.FIRED
    await conn.execute(_COMPLETE, {"job_id": job.id, "now": now, "outcome": outcome})
    return outcome


async def _fire_one(ctx: WorkerContext, job: ClaimedJob) -> None:
    with (
        log_context(incident_id=job.incident_id),
        span("escalation.fire_timer", {"tocsin.incident_id": str(job.incident_id)}),
    ):
        await _fire(ctx, job)


def is_retryable_conflict(exc: BaseException) -> bool:
    """True for a PostgreSQL serialization failure or deadlock: run the transaction again."""
    if not isinstance(exc, DBAPIError):
        return False
    for error in (exc.orig, getattr(exc.orig, "__cause__", None)):
        if getattr(error, "sqlstate", None) in _RETRY_SQLSTATES:
            return True
    return False


async def _fire(ctx: WorkerContext, job: ClaimedJob) -> None:
    now = ctx.clock.now()
    limit = ctx.settings.timer_max_attempts
    if queue.kept_failing(job.attempts, cap=limit):
        # Claimed `limit` times before without ever completing: the workers holding it died
        # (or were cut off) each time. Firing it again could kill this one too.
        await _park(ctx, job, now=now, reason="its worker stopped while firing it")
        return
    outcome: JobOutcome | None = None
    for retry in range(RETRIES_ON_CONFLICT + 1):
        try:
            async with ctx.engine.begin() as conn:
                outcome = await fire_job(conn, job, worker_id=ctx.worker_id, now=now)
            break
        except Exception as exc:
            if is_retryable_conflict(exc) and retry < RETRIES_ON_CONFLICT:
                log.info("escalation timer %s: conflict in the database; retrying", job.id)
                continue
            metrics.FIRE_ERRORS.inc()
            if job.attempts >= limit:
                log.exception("firing escalation timer %s failed %d times; parked", job.id, limit)
                await _park(ctx, job, now=now, reason=f"{type(exc).__name__} on every try")
                return
            # Its lease is still set, so the row waits out the lease before anyone retries:
            # a timer that always fails cannot spin the loop.
            log.exception(
                "firing escalation timer %s failed (try %d of %d); retried after its lease",
                job.id,
                job.attempts,
                limit,
            )
            return
    if outcome == JobOutcome.FIRED:
        # Paged, escalated or reopened: the incident's level, timeline or status changed.
        ctx.announce([(StreamEvent.INCIDENT_UPDATED, job.incident_id)])
    log.debug("escalation timer %s: %s", job.id, outcome.value if outcome else "no longer ours")
    if outcome is not None:
        metrics.TIMERS_FIRED.labels(outcome=outcome.value).inc()
        metrics.TIMER_LATENESS.observe(max((now - job.scheduled_for).total_seconds(), 0.0))


async def _fire_together(ctx: WorkerContext, jobs: list[ClaimedJob]) -> list[ClaimedJob]:
    """Fire start and level timers in one transaction (escalation/batch.py);
    the timers left to fire one by one: all of them if the batch failed, so that one bad
    row costs only itself its lease."""
    if not jobs:
        return []
    now = ctx.clock.now()
    for retry in range(RETRIES_ON_CONFLICT + 1):
        try:
            with span("escalation.fire_batch", {"tocsin.batch_size": len(jobs)}):
                async with ctx.engine.begin() as conn:
                    outcomes = await fire_timers_together(
                        conn,
                        [BatchTimer(job.id, job.incident_id) for job in jobs],
                        worker_id=ctx.worker_id,
                        now=now,
                    )
            break
        except Exception as exc:
            if is_retryable_conflict(exc) and retry < RETRIES_ON_CONFLICT:
                log.info("%d escalation timers: conflict in the database; retrying", len(jobs))
                continue
            log.exception("firing %d escalation timers together failed; one by one", len(jobs))
            return jobs
    else:  # pragma: no cover (the loop always breaks or returns)
        return jobs
    fired = [job for job in jobs if outcomes.get(job.id) == JobOutcome.FIRED]
    ctx.announce([(StreamEvent.INCIDENT_UPDATED, job.incident_id) for job in fired])
    for job in jobs:
        outcome = outcomes.get(job.id)
        # One span and one line a timer, as when timers fire one by one (the batch's own
        # span above carries the time spent).
        with (
            log_context(incident_id=job.incident_id),
            span("escalation.fire_timer", {"tocsin.incident_id": str(job.incident_id)}),
        ):
            log.debug(
                "escalation timer %s: %s", job.id, outcome.value if outcome else "no longer ours"
            )
        if outcome is not None:
            metrics.TIMERS_FIRED.labels(outcome=outcome.value).inc()
            metrics.TIMER_LATENESS.observe(max((now - job.scheduled_for).total_seconds(), 0.0))
    return []


async def _park(ctx: WorkerContext, job: ClaimedJob, *, now: datetime, reason: str) -> None:
    """Give up on a timer that keeps failing, and say so on its incident's timeline."""
    try:
        async with ctx.engine.begin() as conn:
            parked = await queue.park(
                conn,
                TIMERS,
                job.id,
                owner=ctx.worker_id,
                now=now,
                values={"completed": True, "executed_at": now, "outcome": JobOutcome.PARKED},
            )
            if not parked:
                return  # cancelled or taken over meanwhile: not ours to park
            # This claim counts as a try only when it was one (not when parked unfired).
            tries = min(job.attempts, ctx.settings.timer_max_attempts)
            entry = TimelineEntry(
                EventKind.PAGING_STUCK,
                SYSTEM,
                note=(
                    f"Paging is stuck: an escalation timer failed {tries} times ({reason}) "
                    "and was parked; nobody more is paged for this incident until someone "
                    "acts on it"
                ),
                data={"job_id": str(job.id), "attempts": tries},
            )
            await append_events(conn, job.incident_id, [entry], now=now)
    except Exception:
        log.exception("parking escalation timer %s failed; it is retried after its lease", job.id)
        return
    metrics.TIMERS_PARKED_HERE.inc()
    ctx.announce([(StreamEvent.INCIDENT_UPDATED, job.incident_id)])


async def fire_due_escalations(ctx: WorkerContext) -> bool:
    """Claim a batch of due timers and fire them (starts and level timeouts together,
    acknowledgement timeouts one by one); True if any were claimed."""
    claimed = await claim_due_jobs(
        ctx.engine,
        worker_id=ctx.worker_id,
        now=ctx.clock.now(),
        lease=ctx.lease,
        limit=CLAIM_BATCH,
    )
    # A timer claimed before was in a batch that never finished (its worker died): it goes
    # one by one, where a timer that keeps failing is parked.
    starts = [job for job in claimed if job.kind in BATCH_KINDS and job.attempts == 1]
    left = await _fire_together(ctx, starts)
    batched = {job.id for job in starts}
    claimed = [job for job in claimed if job.id not in batched] + left
    if not has_single_writer(ctx.engine.url):
        # Each timer is a chain of round trips: fire several at once, each in its own
        # transaction (two of the same incident wait for each other on its row lock).
        lanes = asyncio.Semaphore(FIRE_CONCURRENCY)

        async def in_lane(job: ClaimedJob) -> None:
            async with lanes:
                await _fire_one(ctx, job)

        await asyncio.gather(*(in_lane(job) for job in claimed))
        return bool(claimed or starts)
    for job in claimed:
        await _fire_one(ctx, job)
        # Let requests in between timers: on SQLite the transactions run inline and would
        # otherwise hold the event loop for a whole batch (tocsin.store.inline.InlineEngine).
        await asyncio.sleep(0)
    return bool(claimed or starts)


async def release_claims(engine: Database, *, worker_id: str) -> int:
    """Give back the timers this worker claimed but did not fire (at shutdown)."""
    async with engine.begin() as conn:
        return await queue.release(conn, TIMERS, owner=worker_id)


async def next_due_at(engine: Database, *, now: datetime) -> datetime | None:
    """When a pending timer next becomes claimable: its due time, or for one leased by
    another worker, the end of that lease. The loop sleeps until then (or a wake-up)."""
    async with read_only(engine).connect() as conn:
        return await queue.next_due_at(conn, TIMERS, now=now)
