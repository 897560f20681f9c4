"""GET /api/v1/audit: the audit log, for administrators."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from tocsin.audit.listing import AuditFilter, list_audit_entries
from tocsin.audit.schemas import AuditEntryOut
from tocsin.auth.permissions import require_admin
from tocsin.web import CurrentUser, Cursor, DbSession, Limit, Page

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get("", response_model=Page[AuditEntryOut])
async def list_audit(
    session: DbSession,
    principal: CurrentUser,
    actor: Annotated[uuid.UUID | None, Query(description="Changes made by this user")] = None,
    object_type: Annotated[
        str | None, Query(max_length=64, description="services, api_keys, team_members...")
    ] = None,
    object_id: Annotated[str | None, Query(max_length=200)] = None,
    team_id: Annotated[
        uuid.UUID | None, Query(description="Changes to this team's objects")
    ] = None,
    since: Annotated[AwareDatetime | None, Query(description="At or after this time")] = None,
    until: Annotated[AwareDatetime | None, Query(description="Before this time")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[AuditEntryOut]:
    """Every change to users, teams, members, services, policies, schedules, overrides,
    integrations, contact methods, notification rules and API keys: newest first, who made
    it through which key or session, and the changed fields before and after (secrets never).
    Administrators only."""
    require_admin(principal)
    wanted = AuditFilter(
        actor_user_id=actor,
        object_type=object_type,
        object_id=object_id,
        team_id=team_id,
        since=since,
        until=until,
    )
    items, next_cursor = await list_audit_entries(session, wanted, limit=limit, cursor=cursor)
    return Page[AuditEntryOut](items=items, next_cursor=next_cursor)
