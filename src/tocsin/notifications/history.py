"""What was sent for an incident: its deliveries, oldest first, each with its attempts; read
by the deliveries endpoint and the incident page alike."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.notifications.models import Delivery, DeliveryAttempt
from tocsin.notifications.schemas import AttemptOut, DeliveryOut


async def with_attempts(session: AsyncSession, deliveries: list[Delivery]) -> list[DeliveryOut]:
    """The deliveries as the API shows them, each with its attempts in order."""
    ids = [d.id for d in deliveries]
    attempts: dict[uuid.UUID, list[AttemptOut]] = {}
    if ids:
        rows = await session.execute(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id.in_(ids))
            .order_by(DeliveryAttempt.number, DeliveryAttempt.finished_at)
        )
        for attempt in rows.scalars():
            attempts.setdefault(attempt.delivery_id, []).append(AttemptOut.model_validate(attempt))
    out = []
    for delivery in deliveries:
        item = DeliveryOut.model_validate(delivery)
        item.attempt_log = attempts.get(delivery.id, [])
        out.append(item)
    return out


async def incident_deliveries(session: AsyncSession, incident_id: uuid.UUID) -> list[DeliveryOut]:
    """Every notification of the incident, oldest first, with its attempts."""
    deliveries = list(
        (
            await session.execute(
                select(Delivery)
                .where(Delivery.incident_id == incident_id)
                .order_by(Delivery.created_at, Delivery.due_at, Delivery.id)
            )
        ).scalars()
    )
    return await with_attempts(session, deliveries)
