"""Reading the audit log: newest first, filtered, a page at a time."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.audit.models import AuditEntry
from tocsin.audit.schemas import AuditEntryOut
from tocsin.auth.models import User
from tocsin.store.pages import newest_first


@dataclass(frozen=True)
class AuditFilter:
    actor_user_id: uuid.UUID | None = None
    object_type: str | None = None
    object_id: str | None = None
    team_id: uuid.UUID | None = None
    since: datetime | None = None
    until: datetime | None = None


async def list_audit_entries(
    session: AsyncSession, wanted: AuditFilter, *, limit: int, cursor: str | None
) -> tuple[list[AuditEntryOut], str | None]:
    """One page of entries matching every given filter, and the cursor of the next page."""
    stmt = select(AuditEntry)
    if wanted.actor_user_id is not None:
        stmt = stmt.where(AuditEntry.actor_user_id == wanted.actor_user_id)
    if wanted.object_type is not None:
        stmt = stmt.where(AuditEntry.object_type == wanted.object_type)
    if wanted.object_id is not None:
        stmt = stmt.where(AuditEntry.object_id == wanted.object_id)
    if wanted.team_id is not None:
        stmt = stmt.where(AuditEntry.team_id == wanted.team_id)
    if wanted.since is not None:
        stmt = stmt.where(AuditEntry.at >= wanted.since)
    if wanted.until is not None:
        stmt = stmt.where(AuditEntry.at < wanted.until)
    page, next_cursor = await newest_first(
        session, stmt, created=AuditEntry.at, row_id=AuditEntry.id, limit=limit, cursor=cursor
    )
    actors = {entry.actor_user_id for entry in page if entry.actor_user_id is not None}
    found = await session.execute(select(User.id, User.email).where(User.id.in_(actors)))
    emails = {user_id: email for user_id, email in found}
    entries = [
        AuditEntryOut(
            id=entry.id,
            at=entry.at,
            actor_user_id=entry.actor_user_id,
            actor_email=emails.get(entry.actor_user_id) if entry.actor_user_id else None,
            via=entry.via,
            via_id=entry.via_id,
            request_id=entry.request_id,
            action=entry.action,
            object_type=entry.object_type,
            object_id=entry.object_id,
            team_id=entry.team_id,
            changes=entry.changes,
        )
        for entry in page
    ]
    return entries, next_cursor
