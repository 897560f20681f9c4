"""What was sent for an incident: its deliveries, oldest first, each with its attempts, as a
given person may see them; read by the deliveries endpoint and the incident page alike."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.auth.accounts import Principal
from tocsin.notifications.models import Delivery, DeliveryAttempt
from tocsin.notifications.redaction import mask_address, short_error
from tocsin.notifications.schemas import AttemptOut, DeliveryOut


async def with_attempts(
    session: AsyncSession, deliveries: list[Delivery], viewer: Principal
) -> list[DeliveryOut]:
    """The deliveries as `viewer` may see them: addresses masked unless they are the
    recipient's own or the viewer is an admin, errors short and plain (rows stored before
    errors were cut down included)."""
    ids = [d.id for d in deliveries]
    attempts: dict[uuid.UUID, list[AttemptOut]] = {}
    if ids:
        rows = await session.execute(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id.in_(ids))
            .order_by(DeliveryAttempt.number, DeliveryAttempt.finished_at)
        )
        for attempt in rows.scalars():
            shown = AttemptOut.model_validate(attempt)
            shown.error = short_error(shown.error)
            attempts.setdefault(attempt.delivery_id, []).append(shown)
    out = []
    for delivery in deliveries:
        item = DeliveryOut.model_validate(delivery)
        item.last_error = short_error(item.last_error)
        if not (viewer.is_admin or viewer.user_id == delivery.user_id):
            item.address = mask_address(delivery.contact_kind, delivery.address)
            item.address_masked = True
        item.attempt_log = attempts.get(delivery.id, [])
        out.append(item)
    return out


async def incident_deliveries(
    session: AsyncSession, incident_id: uuid.UUID, viewer: Principal
) -> list[DeliveryOut]:
    """Every notification of the incident, oldest first, with its attempts, as `viewer` may
    see them."""
    deliveries = list(
        (
            await session.execute(
                select(Delivery)
                .where(Delivery.incident_id == incident_id)
                .order_by(Delivery.created_at, Delivery.due_at, Delivery.id)
            )
        ).scalars()
    )
    return await with_attempts(session, deliveries, viewer)
