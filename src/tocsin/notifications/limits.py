"""How often codes and test messages may go out: toll-fraud protection.

A verification code or a test message to an SMS number or a phone costs money, and anyone
with an account could otherwise have the server text or call any number, again and again.
So each contact method, and each user across all of theirs, gets a few an hour (settings
`contact_sends_per_method_per_hour`, `contact_sends_per_user_per_hour`); past that the
answer is 429 with Retry-After. The count is the delivery rows themselves, so it holds
across every API process sharing the database and survives restarts.

Wrong verification codes have their own hourly limit per contact method, kept on the method
(`verification_failures` since `verification_failures_since`); asking for a new code does not
reset it, or guessing would cost one request more per five tries.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.auth.models import User
from tocsin.config import Settings
from tocsin.errors import TooManyRequests
from tocsin.notifications.models import ContactMethod, Delivery, DeliveryKind

WINDOW = timedelta(hours=1)
COUNTED_KINDS = (DeliveryKind.VERIFICATION, DeliveryKind.TEST)


@dataclass(frozen=True)
class Usage:
    """Sends in the last window: how many, and when the oldest of them was."""

    count: int
    oldest: datetime | None


def wait_seconds(usage: Usage, *, limit: int, now: datetime) -> int | None:
    """Seconds until one more send fits under `limit`, or None if it fits now."""
    if usage.count < limit:
        return None
    if usage.oldest is None:
        return math.ceil(WINDOW.total_seconds())
    return max(1, math.ceil((usage.oldest + WINDOW - now).total_seconds()))


async def _usage(
    session: AsyncSession, *, user_id: uuid.UUID, method_id: uuid.UUID | None, now: datetime
) -> Usage:
    query = select(func.count(), func.min(Delivery.created_at)).where(
        Delivery.user_id == user_id,
        Delivery.kind.in_(COUNTED_KINDS),
        Delivery.created_at > now - WINDOW,
    )
    if method_id is not None:
        query = query.where(Delivery.contact_method_id == method_id)
    count, oldest = (await session.execute(query)).one()
    return Usage(int(count), oldest)


async def require_send_allowed(
    session: AsyncSession, method: ContactMethod, *, settings: Settings, now: datetime
) -> None:
    """Return if one more code or test message may go to this method now; TooManyRequests
    (with Retry-After) if the method's or its owner's hourly limit is reached."""
    # Two requests counting at once could both see room for one more: on PostgreSQL the
    # owner's row is locked until this transaction ends (SQLite has one writer anyway).
    await session.execute(select(User.id).where(User.id == method.user_id).with_for_update())
    scopes = (
        ("this contact method", method.id, settings.contact_sends_per_method_per_hour),
        ("this user's contact methods", None, settings.contact_sends_per_user_per_hour),
    )
    for who, method_id, limit in scopes:
        usage = await _usage(session, user_id=method.user_id, method_id=method_id, now=now)
        wait = wait_seconds(usage, limit=limit, now=now)
        if wait is not None:
            raise TooManyRequests(
                f"{who} had {usage.count} codes or test messages in the last hour, the most"
                f" allowed; try again in {wait} s",
                retry_after=wait,
            )


def wrong_code_wait(method: ContactMethod, *, settings: Settings, now: datetime) -> int | None:
    """Seconds until this method may be sent a guess again, or None if it may now."""
    since = method.verification_failures_since
    if since is None or since + WINDOW <= now:
        return None
    usage = Usage(method.verification_failures, since)
    return wait_seconds(usage, limit=settings.verification_wrong_codes_per_hour, now=now)


def count_wrong_code(method: ContactMethod, *, now: datetime) -> None:
    """One more wrong code in the method's current hour (starting a new hour if the last
    one is over)."""
    since = method.verification_failures_since
    if since is None or since + WINDOW <= now:
        method.verification_failures = 0
        method.verification_failures_since = now
    method.verification_failures += 1
