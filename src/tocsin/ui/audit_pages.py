"""The audit log page (/admin/audit): recent configuration changes, for administrators."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Query, Request, Response
from sqlalchemy import select

from tocsin.audit.listing import AuditFilter, list_audit_entries
from tocsin.audit.recorder import AUDITED_TABLES
from tocsin.auth.models import User
from tocsin.auth.permissions import require_admin
from tocsin.errors import InvalidInput
from tocsin.ui.clockface import zone_named
from tocsin.ui.pages import SignedIn, page_router, render
from tocsin.web import DbSession

router = page_router()
PAGE_SIZE = 50
# What each audited table holds, as a person names it.
LABELS = {
    "users": "user",
    "api_keys": "API key",
    "teams": "team",
    "team_members": "team member",
    "team_tags": "team tag",
    "services": "service",
    "escalation_policies": "escalation policy",
    "escalation_levels": "escalation level",
    "schedules": "schedule",
    "schedule_layers": "schedule layer",
    "schedule_participants": "schedule participant",
    "schedule_overrides": "override",
    "schedule_override_users": "override person",
    "integrations": "integration",
    "heartbeat_monitors": "heartbeat monitor",
    "contact_methods": "contact method",
    "notification_rules": "notification rule",
    "silences": "silence",
    "inhibition_rules": "inhibition rule",
    "maintenance_windows": "maintenance window",
}


def _day(value: str | None, field: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInput(f"{field} is not a date (YYYY-MM-DD)", field=field) from exc


@router.get("/admin/audit")
async def audit_page(
    request: Request,
    viewer: SignedIn,
    session: DbSession,
    actor: Annotated[str | None, Query(max_length=254)] = None,
    object_type: Annotated[str | None, Query(max_length=64)] = None,
    object_id: Annotated[str | None, Query(max_length=200)] = None,
    since: Annotated[str | None, Query(max_length=10)] = None,
    until: Annotated[str | None, Query(max_length=10)] = None,
    cursor: Annotated[str | None, Query()] = None,
) -> Response:
    """Changes newest first; filters by who (email), what (kind and id) and days in the
    viewer's time zone."""
    require_admin(viewer.principal)
    zone = zone_named(viewer.time_zone)
    first, last = _day(since, "since"), _day(until, "until")
    actor_id: uuid.UUID | None = None
    unknown_actor = False
    if actor:
        found = await session.execute(select(User.id).where(User.email == actor.strip().lower()))
        actor_id = found.scalar_one_or_none()
        unknown_actor = actor_id is None
    wanted = AuditFilter(
        actor_user_id=actor_id,
        object_type=object_type or None,
        object_id=(object_id or "").strip() or None,
        since=datetime.combine(first, time(), zone) if first else None,
        until=datetime.combine(last + timedelta(days=1), time(), zone) if last else None,
    )
    entries, next_cursor = (
        ([], None)
        if unknown_actor
        else await list_audit_entries(session, wanted, limit=PAGE_SIZE, cursor=cursor)
    )
    query = {
        k: v
        for k, v in {
            "actor": actor,
            "object_type": object_type,
            "object_id": object_id,
            "since": since,
            "until": until,
        }.items()
        if v
    }
    return render(
        request,
        "audit/list.html",
        {
            "title": "Audit log",
            "entries": entries,
            "object_types": sorted(AUDITED_TABLES, key=lambda t: LABELS.get(t, t)),
            "labels": {t: LABELS.get(t, t.replace("_", " ")) for t in AUDITED_TABLES},
            "filters": query,
            "unknown_actor": unknown_actor,
            "first_page": cursor is None,
            "first_url": "/admin/audit" + ("?" + urlencode(query) if query else ""),
            "next_url": "/admin/audit?" + urlencode({**query, "cursor": next_cursor})
            if next_cursor
            else None,
        },
    )
