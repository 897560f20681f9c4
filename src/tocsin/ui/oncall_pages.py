"""/oncall: for every team the viewer may see, who is on call now in each schedule and on each
level of the team's escalation policies, until when, and the next hand-off.

Schedules are read with the same functions as `/api/v1/oncall` and `/api/v1/schedules/{id}/
shifts`; levels with the engine's own `resolve_level`, so the page names whom an incident
reaching that level now would page.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Query, Request, Response

from tocsin.auth.permissions import require_team_reader
from tocsin.errors import Forbidden, InvalidInput, NotFound
from tocsin.escalation.outlook import MAX_POLICIES_SHOWN, PolicyNow, find_team_policies_now
from tocsin.incidents.choices import Choice, user_names, visible_teams
from tocsin.schedules.outlook import OUTLOOK_HORIZON, ScheduleOutlook, find_team_outlooks
from tocsin.ui.pages import SignedIn, page_router, render
from tocsin.web import DbSession, Now

router = page_router()

# Teams per page: each costs a few queries and a fortnight of shifts per schedule.
TEAMS_PER_PAGE = 10


@dataclass(frozen=True)
class TeamOnCall:
    team: Choice
    schedules: list[ScheduleOutlook]
    policies: list[PolicyNow]

    @property
    def schedule_by_id(self) -> dict[uuid.UUID, ScheduleOutlook]:
        return {schedule.schedule_id: schedule for schedule in self.schedules}


@router.get("/oncall")
async def on_call_page(
    request: Request,
    viewer: SignedIn,
    session: DbSession,
    now: Now,
    team: Annotated[str, Query()] = "",
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    teams = await visible_teams(session, viewer.principal)
    chosen = teams
    if team:
        try:
            team_id = uuid.UUID(team)
        except ValueError as exc:
            raise InvalidInput(f"{team!r} is not a team id", field="team") from exc
        try:
            await require_team_reader(session, viewer.principal, team_id)
        except Forbidden as exc:
            raise NotFound("there is no such team") from exc
        chosen = [choice for choice in teams if choice.id == team_id]
    first = (page - 1) * TEAMS_PER_PAGE
    shown = chosen[first : first + TEAMS_PER_PAGE]
    conn = await session.connection()
    found: list[TeamOnCall] = []
    for choice in shown:
        found.append(
            TeamOnCall(
                choice,
                await find_team_outlooks(conn, choice.id, now),
                await find_team_policies_now(conn, choice.id, now),
            )
        )
    ids: set[uuid.UUID] = set()
    for item in found:
        for schedule in item.schedules:
            ids |= set(schedule.outlook.now.user_ids)
            if schedule.outlook.next is not None:
                ids |= set(schedule.outlook.next.user_ids)
        for policy in item.policies:
            for level in policy.levels:
                ids |= {r.user_id for r in level.recipients}
                if level.target_id is not None:
                    ids.add(level.target_id)
    query = f"team={team}&" if team else ""
    return render(
        request,
        "oncall/index.html",
        {
            "title": "On call",
            "teams": teams,
            "chosen_team": team,
            "found": found,
            "names": await user_names(session, ids),
            "horizon_days": OUTLOOK_HORIZON.days,
            "max_policies": MAX_POLICIES_SHOWN,
            "previous_url": f"/oncall?{query}page={page - 1}" if page > 1 else None,
            "next_url": f"/oncall?{query}page={page + 1}"
            if first + TEAMS_PER_PAGE < len(chosen)
            else None,
        },
    )
