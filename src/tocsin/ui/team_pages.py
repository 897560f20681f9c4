"""Teams: the list, and a team's page with its members and their roles and its tags. The
same domain functions and permission checks as /api/v1/teams: anyone signed in may read,
administrators create and delete teams, a team's managers (or an admin) change it."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Form, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.auth.permissions import find_team_role, require_admin, require_team_manager
from tocsin.auth.users import list_users
from tocsin.catalog.registry import list_services
from tocsin.errors import TocsinError
from tocsin.incidents.choices import user_names
from tocsin.store.rows import get_or_raise
from tocsin.teams.directory import (
    TeamNotFound,
    change_team,
    create_team,
    delete_team,
    list_teams,
)
from tocsin.teams.membership import add_member, change_role, list_members, remove_member
from tocsin.teams.models import Team, TeamRole
from tocsin.teams.schemas import MemberCreate, MemberUpdate, TagCreate, TeamCreate, TeamUpdate
from tocsin.teams.tags import add_tag, list_tags, remove_tag
from tocsin.ui.forms import Refusal, allowed, refusal, render_form
from tocsin.ui.pages import SignedIn, Viewer, list_links, page_router
from tocsin.web import DbSession, Now

router = page_router()

PAGE_SIZE = 50
ROLES = [r.value for r in TeamRole]
DONE = {
    "created": "Team created.",
    "saved": "Team saved.",
    "member-added": "Member added.",
    "role-changed": "Role changed.",
    "member-removed": "Member removed.",
    "tag-added": "Tag added.",
    "tag-removed": "Tag removed.",
}


@router.get("/teams")
async def team_list(
    request: Request,
    viewer: SignedIn,
    session: DbSession,
    cursor: Annotated[str | None, Query()] = None,
) -> Response:
    teams, next_cursor = await list_teams(session, limit=PAGE_SIZE, cursor=cursor)
    return await _team_list_page(request, viewer, session, teams, next_cursor, cursor=cursor)


async def _team_list_page(
    request: Request,
    viewer: Viewer,
    session: AsyncSession,
    teams: list[Team],
    next_cursor: str | None,
    *,
    cursor: str | None = None,
    refused: Refusal | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    roles = {t.id: await find_team_role(session, viewer.principal, t.id) for t in teams}
    return render_form(
        request,
        "teams/list.html",
        {
            "title": "Teams",
            "teams": teams,
            "roles": roles,
            **list_links("/teams?", cursor, next_cursor),
            "form": form or {},
        },
        refused,
    )


@router.post("/teams")
async def team_create(
    request: Request,
    viewer: SignedIn,
    session: DbSession,
    now: Now,
    name: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
) -> Response:
    """Administrators only, as POST /api/v1/teams."""
    try:
        require_admin(viewer.principal)
        body = TeamCreate(name=name, description=description)
        team = await create_team(session, name=body.name, description=body.description, now=now)
    except (ValidationError, TocsinError) as exc:
        await session.rollback()
        teams, next_cursor = await list_teams(session, limit=PAGE_SIZE, cursor=None)
        return await _team_list_page(
            request,
            viewer,
            session,
            teams,
            next_cursor,
            refused=refusal(exc),
            form={"name": name, "description": description},
        )
    await session.commit()
    return RedirectResponse(f"/teams/{team.id}?done=created", status_code=303)


async def _existing(session: AsyncSession, team_id: uuid.UUID) -> Team:
    return await get_or_raise(session, Team, team_id, TeamNotFound)


async def _team_page(
    request: Request,
    viewer: Viewer,
    session: AsyncSession,
    team: Team,
    *,
    done: str = "",
    refused: Refusal | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    members = await list_members(session, team.id)
    names = await user_names(session, [m.user_id for m in members])
    may_manage = await allowed(require_team_manager(session, viewer.principal, team.id))
    candidates: list[Any] = []
    if may_manage:
        users, _ = await list_users(session, limit=500, cursor=None)
        in_team = {m.user_id for m in members}
        candidates = sorted(
            (u for u in users if u.is_active and u.id not in in_team), key=lambda u: u.name
        )
    services, _ = await list_services(session, team_id=team.id, limit=200, cursor=None)
    return render_form(
        request,
        "teams/detail.html",
        {
            "title": team.name,
            "team": team,
            "members": members,
            "names": names,
            "tags": await list_tags(session, team.id),
            "services": services,
            "candidates": candidates,
            "roles": ROLES,
            "may_manage": may_manage,
            "done": DONE.get(done, ""),
            "form": form or {},
        },
        refused,
    )


@router.get("/teams/{team_id}")
async def team_page(
    request: Request,
    team_id: uuid.UUID,
    viewer: SignedIn,
    session: DbSession,
    done: Annotated[str, Query()] = "",
) -> Response:
    team = await _existing(session, team_id)
    return await _team_page(request, viewer, session, team, done=done)


async def _refused(
    request: Request,
    viewer: Viewer,
    session: AsyncSession,
    team_id: uuid.UUID,
    exc: ValidationError | TocsinError,
    form: dict[str, str],
    renames: dict[str, str] | None = None,
) -> Response:
    """The team page again with nothing saved and the API's message beside the field."""
    await session.rollback()
    team = await _existing(session, team_id)
    return await _team_page(
        request, viewer, session, team, refused=refusal(exc, renames), form=form
    )


def _saved(team_id: uuid.UUID, done: str) -> Response:
    return RedirectResponse(f"/teams/{team_id}?done={done}", status_code=303)


@router.post("/teams/{team_id}")
async def team_edit(
    request: Request,
    team_id: uuid.UUID,
    viewer: SignedIn,
    session: DbSession,
    now: Now,
    name: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
) -> Response:
    """The team's managers or an admin, as PATCH /api/v1/teams/{id}."""
    team = await _existing(session, team_id)
    try:
        await require_team_manager(session, viewer.principal, team.id)
        body = TeamUpdate(name=name, description=description)
        await change_team(session, team, body.model_dump(exclude_unset=True), now=now)
    except (ValidationError, TocsinError) as exc:
        form = {"name": name, "description": description}
        return await _refused(request, viewer, session, team_id, exc, form)
    await session.commit()
    return _saved(team.id, "saved")


@router.post("/teams/{team_id}/delete")
async def team_delete(
    request: Request, team_id: uuid.UUID, viewer: SignedIn, session: DbSession
) -> Response:
    """Administrators only; a team that still owns services, policies, schedules or
    incidents stays (409, with what it owns)."""
    team = await _existing(session, team_id)
    try:
        require_admin(viewer.principal)
        await delete_team(session, team)
    except TocsinError as exc:
        return await _refused(request, viewer, session, team_id, exc, {})
    await session.commit()
    return RedirectResponse("/teams", status_code=303)


@router.post("/teams/{team_id}/members")
async def member_add(
    request: Request,
    team_id: uuid.UUID,
    viewer: SignedIn,
    session: DbSession,
    now: Now,
    user_id: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = TeamRole.RESPONDER.value,
) -> Response:
    team = await _existing(session, team_id)
    try:
        await require_team_manager(session, viewer.principal, team.id)
        body = MemberCreate.model_validate({"user_id": user_id, "role": role})
        await add_member(session, team_id=team.id, user_id=body.user_id, role=body.role, now=now)
    except (ValidationError, TocsinError) as exc:
        form = {"user_id": user_id, "role": role}
        return await _refused(request, viewer, session, team_id, exc, form)
    await session.commit()
    return _saved(team.id, "member-added")


@router.post("/teams/{team_id}/members/{user_id}/role")
async def member_role(
    request: Request,
    team_id: uuid.UUID,
    user_id: uuid.UUID,
    viewer: SignedIn,
    session: DbSession,
    role: Annotated[str, Form()] = "",
) -> Response:
    team = await _existing(session, team_id)
    try:
        await require_team_manager(session, viewer.principal, team.id)
        body = MemberUpdate.model_validate({"role": role})
        await change_role(session, team_id=team.id, user_id=user_id, role=body.role)
    except (ValidationError, TocsinError) as exc:
        return await _refused(request, viewer, session, team_id, exc, {}, {"role": "form"})
    await session.commit()
    return _saved(team.id, "role-changed")


@router.post("/teams/{team_id}/members/{user_id}/remove")
async def member_remove(
    request: Request, team_id: uuid.UUID, user_id: uuid.UUID, viewer: SignedIn, session: DbSession
) -> Response:
    """409 while one of the team's escalation policies pages this member."""
    team = await _existing(session, team_id)
    try:
        await require_team_manager(session, viewer.principal, team.id)
        await remove_member(session, team_id=team.id, user_id=user_id)
    except TocsinError as exc:
        return await _refused(request, viewer, session, team_id, exc, {})
    await session.commit()
    return _saved(team.id, "member-removed")


@router.post("/teams/{team_id}/tags")
async def tag_add(
    request: Request,
    team_id: uuid.UUID,
    viewer: SignedIn,
    session: DbSession,
    now: Now,
    tag_key: Annotated[str, Form()] = "",
    tag_value: Annotated[str, Form()] = "",
) -> Response:
    team = await _existing(session, team_id)
    try:
        await require_team_manager(session, viewer.principal, team.id)
        body = TagCreate(key=tag_key, value=tag_value)
        await add_tag(session, team_id=team.id, key=body.key, value=body.value, now=now)
    except (ValidationError, TocsinError) as exc:
        renames = {"key": "tag_key", "value": "tag_value"}
        form = {"tag_key": tag_key, "tag_value": tag_value}
        return await _refused(request, viewer, session, team_id, exc, form, renames)
    await session.commit()
    return _saved(team.id, "tag-added")


@router.post("/teams/{team_id}/tags/{tag_id}/remove")
async def tag_remove(
    request: Request, team_id: uuid.UUID, tag_id: uuid.UUID, viewer: SignedIn, session: DbSession
) -> Response:
    team = await _existing(session, team_id)
    try:
        await require_team_manager(session, viewer.principal, team.id)
        await remove_tag(session, team_id=team.id, tag_id=tag_id)
    except TocsinError as exc:
        return await _refused(request, viewer, session, team_id, exc, {})
    await session.commit()
    return _saved(team.id, "tag-removed")
