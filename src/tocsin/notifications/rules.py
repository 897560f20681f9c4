"""Notification rules: "after N minutes use contact method M", per urgency, and the warnings
a person sees when their rules would leave them reachable only by the default."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.errors import Conflict, InvalidInput, NotFound
from tocsin.notifications.contacts import find_own_contact_method
from tocsin.notifications.models import ContactMethod, NotificationRule, Urgency
from tocsin.notifications.schemas import RuleIn
from tocsin.store.rows import flush_or_raise


class RuleNotFound(NotFound):
    def __init__(self, rule_id: uuid.UUID) -> None:
        super().__init__(f"notification rule {rule_id} not found")


async def list_rules(session: AsyncSession, user_id: uuid.UUID) -> list[NotificationRule]:
    result = await session.execute(
        select(NotificationRule)
        .where(NotificationRule.user_id == user_id)
        .order_by(
            NotificationRule.urgency, NotificationRule.delay_minutes, NotificationRule.created_at
        )
    )
    return list(result.scalars())


async def add_rule(
    session: AsyncSession, body: RuleIn, *, user_id: uuid.UUID, now: datetime
) -> NotificationRule:
    """Add the rule a body asks for (the API's, or the page's form), using one of the user's
    own verified contact methods."""
    method = await find_own_contact_method(session, user_id, body.contact_method_id)
    if method is None:
        raise InvalidInput(
            "no contact method with this id belongs to the user", field="contact_method_id"
        )
    if method.verified_at is None:
        raise InvalidInput("this contact method is not verified yet", field="contact_method_id")
    rule = NotificationRule(
        id=uuid.uuid4(),
        user_id=user_id,
        urgency=body.urgency,
        delay_minutes=body.delay_minutes,
        contact_method_id=body.contact_method_id,
        created_at=now,
    )
    session.add(rule)
    await flush_or_raise(session, Conflict("the same rule already exists"))
    return rule


async def remove_rule(session: AsyncSession, user_id: uuid.UUID, rule_id: uuid.UUID) -> None:
    rule = (
        await session.execute(
            select(NotificationRule).where(
                NotificationRule.id == rule_id, NotificationRule.user_id == user_id
            )
        )
    ).scalar_one_or_none()
    if rule is None:
        raise RuleNotFound(rule_id)
    await session.delete(rule)
    await session.flush()


def reachability_warnings(
    rules: list[NotificationRule], methods: list[ContactMethod], account_email: str
) -> list[str]:
    """What the person should fix: an urgency with no usable rule falls back to email."""
    verified = {m.id for m in methods if m.verified_at is not None}
    warnings = []
    for urgency in Urgency:
        usable = [r for r in rules if r.urgency == urgency and r.contact_method_id in verified]
        if not usable:
            warnings.append(
                f"no notification rule for {urgency.value} urgency: pages of that urgency go "
                f"by email to {account_email}, immediately, and nowhere else"
            )
    unverified = [m.name for m in methods if m.verified_at is None]
    if unverified:
        warnings.append("not verified, so not used: " + ", ".join(sorted(unverified)))
    return warnings
