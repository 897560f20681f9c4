"""Worker routes: Prometheus metrics at /metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func, select

from tocsin.escalation.models import EscalationJob, JobOutcome
from tocsin.retention import metrics as retention_metrics
from tocsin.store.schema import unset
from tocsin.web import Now, State
from tocsin.worker import metrics

router = APIRouter(tags=["worker"])


@router.get("/metrics", response_class=Response)
async def prometheus_metrics(state: State, now: Now) -> Response:
    """Prometheus text format: pending, overdue and parked timers, timers fired, their lateness, and
    worker errors. Unauthenticated, like /healthz: it carries counts, never content."""
    pending = (unset(EscalationJob.completed), EscalationJob.cancelled_at.is_(None))
    async with state.read_engine.connect() as conn:
        total = (
            await conn.execute(select(func.count()).select_from(EscalationJob).where(*pending))
        ).scalar_one()
        overdue = (
            await conn.execute(
                select(func.count())
                .select_from(EscalationJob)
                .where(*pending, EscalationJob.scheduled_for <= now)
            )
        ).scalar_one()
        parked = (
            await conn.execute(
                select(func.count())
                .select_from(EscalationJob)
                .where(EscalationJob.outcome == JobOutcome.PARKED)
            )
        ).scalar_one()
        await retention_metrics.PURGED.refresh(conn)
    metrics.TIMERS_PENDING.set(total)
    metrics.TIMERS_PARKED.set(parked)
    metrics.TIMERS_OVERDUE.set(overdue)
    return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)
