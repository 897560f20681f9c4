"""Routes for silences, inhibition rules, maintenance windows and snooze.

Who may do what: responders of a team silence its alerts and snooze its incidents; managers
of a team write its inhibition rules and its services' maintenance windows; a silence or rule
without a team (over every team's alerts) is for administrators.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Response
from sqlalchemy import or_, select

from tocsin.auth.accounts import Principal
from tocsin.auth.permissions import (
    require_admin,
    require_team_manager,
    require_team_reader,
    require_team_responder,
    visible_team_ids,
)
from tocsin.catalog.models import Service
from tocsin.catalog.registry import ServiceNotFound, find_service
from tocsin.errors import NotFound
from tocsin.incidents.responding import find_visible_incident
from tocsin.incidents.timeline import Actor
from tocsin.noise.decide import window_rule
from tocsin.noise.inhibitions import create_inhibition, delete_inhibition
from tocsin.noise.maintenance import is_on
from tocsin.noise.models import InhibitionRule, MaintenanceWindow, Silence
from tocsin.noise.schemas import (
    InhibitionRuleCreate,
    InhibitionRuleOut,
    MaintenanceWindowCreate,
    MaintenanceWindowOut,
    MatcherOut,
    SilenceCreate,
    SilenceOut,
    SnoozeIn,
)
from tocsin.noise.silences import (
    create_silence,
    expire_silence,
    find_silence,
    list_silences,
    silence_like,
    silence_out,
)
from tocsin.noise.snooze import snooze
from tocsin.web import CurrentUser, DbSession, Now

router = APIRouter(tags=["noise"])


async def _require_scope(
    session: DbSession, principal: Principal, team_id: uuid.UUID | None, *, manager: bool
) -> None:
    if team_id is None:
        require_admin(principal)
    elif manager:
        await require_team_manager(session, principal, team_id)
    else:
        await require_team_responder(session, principal, team_id)


# Silences --------------------------------------------------------------------------------


async def get_visible_silence(
    silence_id: uuid.UUID, session: DbSession, user: CurrentUser
) -> Silence:
    silence = await find_silence(session, silence_id)
    if silence.team_id is not None:
        await require_team_reader(session, user, silence.team_id)
    return silence


VisibleSilence = Annotated[Silence, Depends(get_visible_silence)]


@router.get("/api/v1/silences", response_model=list[SilenceOut])
async def list_silences_route(
    session: DbSession,
    user: CurrentUser,
    now: Now,
    state: Literal["pending", "active", "expired"] | None = None,
) -> list[SilenceOut]:
    """Silences of your teams and those over every team, newest first (at most 500)."""
    teams = await visible_team_ids(session, user)
    rows = await list_silences(session, teams=teams, state=state, now=now)
    return [silence_out(s, now) for s in rows]


@router.post("/api/v1/silences", status_code=201, response_model=SilenceOut)
async def create_silence_route(
    body: SilenceCreate, session: DbSession, user: CurrentUser, now: Now
) -> SilenceOut:
    """Responders of team_id; a silence over every team (no team_id) needs an admin."""
    await _require_scope(session, user, body.team_id, manager=False)
    silence = await create_silence(session, body, by=user.user_id, now=now)
    return silence_out(silence, now)


@router.get("/api/v1/silences/{silence_id}", response_model=SilenceOut)
async def get_silence_route(silence: VisibleSilence, now: Now) -> SilenceOut:
    return silence_out(silence, now)


@router.post("/api/v1/silences/{silence_id}/expire", response_model=SilenceOut)
async def expire_silence_route(
    silence: VisibleSilence, session: DbSession, user: CurrentUser, now: Now
) -> SilenceOut:
    """End the silence now."""
    await _require_scope(session, user, silence.team_id, manager=False)
    await expire_silence(session, silence, now=now)
    return silence_out(silence, now)


@router.get("/api/v1/incidents/{incident_id}/silence-like-this", response_model=SilenceCreate)
async def silence_like_this(
    incident_id: uuid.UUID, session: DbSession, user: CurrentUser, now: Now
) -> SilenceCreate:
    """A draft silence (not saved) for alerts like this incident's: POST it, changed or not,
    to /api/v1/silences."""
    incident = await find_visible_incident(session, user, incident_id)
    return await silence_like(session, incident, now=now)


# Inhibition rules ------------------------------------------------------------------------


class InhibitionRuleNotFound(NotFound):
    def __init__(self, rule_id: uuid.UUID) -> None:
        super().__init__(f"inhibition rule {rule_id} not found")


def _rule_out(rule: InhibitionRule) -> InhibitionRuleOut:
    return InhibitionRuleOut(
        id=rule.id,
        team_id=rule.team_id,
        name=rule.name,
        source_matchers=[MatcherOut.model_validate(m) for m in rule.source_matchers],
        target_matchers=[MatcherOut.model_validate(m) for m in rule.target_matchers],
        equal=list(rule.equal),
        created_by=rule.created_by,
        created_at=rule.created_at,
    )


@router.get("/api/v1/inhibition-rules", response_model=list[InhibitionRuleOut])
async def list_inhibition_rules(session: DbSession, user: CurrentUser) -> list[InhibitionRuleOut]:
    teams = await visible_team_ids(session, user)
    stmt = select(InhibitionRule).order_by(InhibitionRule.created_at, InhibitionRule.id)
    if teams is not None:
        stmt = stmt.where(or_(InhibitionRule.team_id.is_(None), InhibitionRule.team_id.in_(teams)))
    return [_rule_out(r) for r in (await session.execute(stmt)).scalars()]


@router.post("/api/v1/inhibition-rules", status_code=201, response_model=InhibitionRuleOut)
async def create_inhibition_rule(
    body: InhibitionRuleCreate, session: DbSession, user: CurrentUser, now: Now
) -> InhibitionRuleOut:
    """Managers of team_id; a rule over every team (no team_id) needs an admin."""
    await _require_scope(session, user, body.team_id, manager=True)
    rule = await create_inhibition(session, body, by=user.user_id, now=now)
    return _rule_out(rule)


@router.delete("/api/v1/inhibition-rules/{rule_id}", status_code=204)
async def delete_inhibition_rule(
    rule_id: uuid.UUID, session: DbSession, user: CurrentUser
) -> Response:
    rule = await session.get(InhibitionRule, rule_id)
    if rule is None:
        raise InhibitionRuleNotFound(rule_id)
    if rule.team_id is not None:
        await require_team_reader(session, user, rule.team_id)
    await _require_scope(session, user, rule.team_id, manager=True)
    await delete_inhibition(session, rule)
    return Response(status_code=204)


# Maintenance windows ---------------------------------------------------------------------


class MaintenanceWindowNotFound(NotFound):
    def __init__(self, window_id: uuid.UUID) -> None:
        super().__init__(f"maintenance window {window_id} not found")


def window_out(window: MaintenanceWindow, now: datetime) -> MaintenanceWindowOut:
    out = MaintenanceWindowOut.model_validate(window)
    out.on_now = is_on(window_rule(window), now)
    return out


async def _service(session: DbSession, service_id: uuid.UUID) -> Service:
    service = await find_service(session, service_id)
    if service is None:
        raise ServiceNotFound(service_id)
    return service


@router.get(
    "/api/v1/services/{service_id}/maintenance-windows",
    response_model=list[MaintenanceWindowOut],
)
async def list_maintenance_windows(
    service_id: uuid.UUID, session: DbSession, _user: CurrentUser, now: Now
) -> list[MaintenanceWindowOut]:
    await _service(session, service_id)
    rows = await session.execute(
        select(MaintenanceWindow)
        .where(MaintenanceWindow.service_id == service_id)
        .order_by(MaintenanceWindow.created_at)
    )
    return [window_out(w, now) for w in rows.scalars()]


@router.post(
    "/api/v1/services/{service_id}/maintenance-windows",
    status_code=201,
    response_model=MaintenanceWindowOut,
)
async def create_maintenance_window(
    service_id: uuid.UUID,
    body: MaintenanceWindowCreate,
    session: DbSession,
    user: CurrentUser,
    now: Now,
) -> MaintenanceWindowOut:
    """Managers of the service's team."""
    service = await _service(session, service_id)
    await require_team_manager(session, user, service.team_id)
    window = MaintenanceWindow(
        service_id=service_id,
        description=body.description,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        weekdays=sorted(set(body.weekdays)) if body.weekdays else None,
        start_time=body.start_time,
        duration_minutes=body.duration_minutes,
        timezone=body.timezone,
        created_by=user.user_id,
        created_at=now,
    )
    session.add(window)
    await session.flush()
    return window_out(window, now)


@router.delete("/api/v1/services/{service_id}/maintenance-windows/{window_id}", status_code=204)
async def delete_maintenance_window(
    service_id: uuid.UUID, window_id: uuid.UUID, session: DbSession, user: CurrentUser
) -> Response:
    service = await _service(session, service_id)
    await require_team_manager(session, user, service.team_id)
    window = await session.get(MaintenanceWindow, window_id)
    if window is None or window.service_id != service_id:
        raise MaintenanceWindowNotFound(window_id)
    await session.delete(window)
    return Response(status_code=204)


# Snooze ----------------------------------------------------------------------------------


@router.post("/api/v1/incidents/{incident_id}/snooze", status_code=204)
async def snooze_incident(
    incident_id: uuid.UUID, body: SnoozeIn, session: DbSession, user: CurrentUser, now: Now
) -> Response:
    """Put an acknowledged incident aside until `until`: it returns to open and pages again
    then (409 unless acknowledged)."""
    incident = await find_visible_incident(session, user, incident_id)
    await require_team_responder(session, user, incident.team_id)
    conn = await session.connection()
    await snooze(conn, incident.id, until=body.until, actor=Actor.user(user.user_id), now=now)
    return Response(status_code=204)
