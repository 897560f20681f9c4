"""Team routes: the teams themselves, their members and their tags.

Any signed-in user may read teams, members and tags (people pick teams and assignees from
them). Administrators create and delete teams; a team's managers, or an administrator, change
it, its members and its tags.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter

from tocsin.auth.permissions import require_admin, require_team_manager
from tocsin.teams.directory import (
    TeamNotFound,
    change_team,
    create_team,
    delete_team,
)
from tocsin.teams.directory import (
    list_teams as list_teams_page,
)
from tocsin.teams.membership import add_member, change_role, list_members, remove_member
from tocsin.teams.models import Team
from tocsin.teams.schemas import (
    MemberCreate,
    MemberOut,
    MemberUpdate,
    TagCreate,
    TagOut,
    TeamCreate,
    TeamOut,
    TeamUpdate,
)
from tocsin.teams.tags import add_tag, list_tags, remove_tag
from tocsin.web import CurrentUser, Cursor, DbSession, Limit, Now, Page, row_in_path

router = APIRouter(prefix="/api/v1/teams", tags=["teams"])


ExistingTeam = Annotated[Team, row_in_path(Team, TeamNotFound, "team_id")]


@router.get("", response_model=Page[TeamOut])
async def list_teams(
    session: DbSession, _principal: CurrentUser, limit: Limit = 50, cursor: Cursor = None
) -> Page[TeamOut]:
    page, next_cursor = await list_teams_page(session, limit=limit, cursor=cursor)
    return Page[TeamOut].of(page, next_cursor)


@router.post("", status_code=201, response_model=TeamOut)
async def create_team_route(
    body: TeamCreate, session: DbSession, principal: CurrentUser, now: Now
) -> TeamOut:
    """Admin only. The team starts with no members."""
    require_admin(principal)
    team = await create_team(session, name=body.name, description=body.description, now=now)
    await session.commit()
    return TeamOut.model_validate(team)


@router.get("/{team_id}", response_model=TeamOut)
async def get_team_route(team: ExistingTeam) -> TeamOut:
    return TeamOut.model_validate(team)


@router.patch("/{team_id}", response_model=TeamOut)
async def update_team(
    team: ExistingTeam, body: TeamUpdate, session: DbSession, principal: CurrentUser, now: Now
) -> TeamOut:
    """The team's managers or an admin."""
    await require_team_manager(session, principal, team.id)
    await change_team(session, team, body.model_dump(exclude_unset=True), now=now)
    await session.commit()
    return TeamOut.model_validate(team)


@router.delete("/{team_id}", status_code=204)
async def delete_team_route(team: ExistingTeam, session: DbSession, principal: CurrentUser) -> None:
    """Admin only. Members and tags go with the team; while it still owns services,
    escalation policies or incidents the answer is 409 and nothing is deleted."""
    require_admin(principal)
    await delete_team(session, team)
    await session.commit()


@router.get("/{team_id}/members", response_model=Page[MemberOut])
async def list_members_route(team: ExistingTeam, session: DbSession) -> Page[MemberOut]:
    """Every member in one page (next_cursor is always null)."""
    members = await list_members(session, team.id)
    return Page[MemberOut].of(members)


@router.post("/{team_id}/members", status_code=201, response_model=MemberOut)
async def add_member_route(
    team: ExistingTeam, body: MemberCreate, session: DbSession, principal: CurrentUser, now: Now
) -> MemberOut:
    """The team's managers or an admin. Unknown user: 422; already a member: 409."""
    await require_team_manager(session, principal, team.id)
    member = await add_member(
        session, team_id=team.id, user_id=body.user_id, role=body.role, now=now
    )
    await session.commit()
    return MemberOut.model_validate(member)


@router.patch("/{team_id}/members/{user_id}", response_model=MemberOut)
async def change_member_role(
    team: ExistingTeam,
    user_id: uuid.UUID,
    body: MemberUpdate,
    session: DbSession,
    principal: CurrentUser,
) -> MemberOut:
    """The team's managers or an admin."""
    await require_team_manager(session, principal, team.id)
    member = await change_role(session, team_id=team.id, user_id=user_id, role=body.role)
    await session.commit()
    return MemberOut.model_validate(member)


@router.delete("/{team_id}/members/{user_id}", status_code=204)
async def remove_member_route(
    team: ExistingTeam, user_id: uuid.UUID, session: DbSession, principal: CurrentUser
) -> None:
    """The team's managers or an admin. 409 while one of the team's escalation policies
    pages this user, so no level is left paging someone outside the team."""
    await require_team_manager(session, principal, team.id)
    await remove_member(session, team_id=team.id, user_id=user_id)
    await session.commit()


@router.get("/{team_id}/tags", response_model=Page[TagOut])
async def list_tags_route(team: ExistingTeam, session: DbSession) -> Page[TagOut]:
    """Every tag in one page (next_cursor is always null)."""
    tags = await list_tags(session, team.id)
    return Page[TagOut].of(tags)


@router.post("/{team_id}/tags", status_code=201, response_model=TagOut)
async def add_tag_route(
    team: ExistingTeam, body: TagCreate, session: DbSession, principal: CurrentUser, now: Now
) -> TagOut:
    """The team's managers or an admin. A tag the team already has: 409."""
    await require_team_manager(session, principal, team.id)
    tag = await add_tag(session, team_id=team.id, key=body.key, value=body.value, now=now)
    await session.commit()
    return TagOut.model_validate(tag)


@router.delete("/{team_id}/tags/{tag_id}", status_code=204)
async def remove_tag_route(
    team: ExistingTeam, tag_id: uuid.UUID, session: DbSession, principal: CurrentUser
) -> None:
    """The team's managers or an admin."""
    await require_team_manager(session, principal, team.id)
    await remove_tag(session, team_id=team.id, tag_id=tag_id)
    await session.commit()
