"""Adaptive downgrade: a person paged a lot in the last hour gets further low-urgency pages
on their quiet channel only (one message, at once) instead of their low-urgency rules, so a
storm of minor incidents does not ring their phone all night. High urgency is never touched.

Each person chooses the limit (`pages_per_hour`, none: never) and the quiet contact method
(none, or no longer verified: their account email). The decision is pure (`downgraded`);
`load_paging_limits` reads the limits, and dispatch.py counts the recent pages, once per
set of pages, in the transaction that writes them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.errors import InvalidInput
from tocsin.notifications.models import ContactKind, ContactMethod, PagingPreference
from tocsin.store.connection import Connection

WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class PagingLimit:
    """One person's limit and where quiet pages go."""

    pages_per_hour: int
    quiet_method_id: uuid.UUID | None = None
    quiet_kind: ContactKind | None = None
    quiet_address: str | None = None


def downgraded(limit: PagingLimit | None, *, pages_in_last_hour: int) -> bool:
    """Whether a low-urgency page goes to the quiet channel: the person had already been paged
    `pages_per_hour` times in the hour before it."""
    return (
        limit is not None
        and limit.pages_per_hour > 0
        and (pages_in_last_hour >= limit.pages_per_hour)
    )


async def load_paging_limits(
    conn: Connection, user_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, PagingLimit]:
    """The limits of those of these people who set one, with their quiet method if it is
    still verified."""
    rows = await conn.execute(
        select(
            PagingPreference.user_id,
            PagingPreference.pages_per_hour,
            ContactMethod.id.label("method_id"),
            ContactMethod.kind,
            ContactMethod.address,
        )
        .outerjoin(
            ContactMethod,
            (ContactMethod.id == PagingPreference.quiet_contact_method_id)
            & ContactMethod.verified_at.is_not(None),
        )
        .where(
            PagingPreference.user_id.in_(list(user_ids)),
            PagingPreference.pages_per_hour > 0,
        )
    )
    return {r.user_id: PagingLimit(r.pages_per_hour, r.method_id, r.kind, r.address) for r in rows}


async def find_paging_preference(
    session: AsyncSession, user_id: uuid.UUID
) -> PagingPreference | None:
    return await session.get(PagingPreference, user_id)


async def set_paging_preference(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    pages_per_hour: int | None,
    quiet_contact_method_id: uuid.UUID | None,
    now: datetime,
) -> PagingPreference:
    """Set (or replace) the person's limit and quiet method. The method must be theirs and
    verified: nothing else is ever sent to."""
    if quiet_contact_method_id is not None:
        method = await session.get(ContactMethod, quiet_contact_method_id)
        if method is None or method.user_id != user_id:
            raise InvalidInput(
                f"contact method {quiet_contact_method_id} is not one of this user's",
                field="quiet_contact_method_id",
            )
        if method.verified_at is None:
            raise InvalidInput(
                "this contact method is not verified yet", field="quiet_contact_method_id"
            )
    preference = await session.get(PagingPreference, user_id)
    if preference is None:
        preference = PagingPreference(user_id=user_id, updated_at=now)
        session.add(preference)
    preference.pages_per_hour = pages_per_hour
    preference.quiet_contact_method_id = quiet_contact_method_id
    preference.updated_at = now
    await session.flush()
    return preference
