"""Escalation policy routes. A team's members (observers too) and admins read its policies;
its managers and admins create, change and delete them."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter

from tocsin.auth.models import KeyScope
from tocsin.auth.permissions import require_team_manager
from tocsin.auth.scopes import needs_scope
from tocsin.escalation.models import EscalationPolicy
from tocsin.escalation.policies import (
    PolicyNotFound,
    change_policy,
    create_policy_from_body,
    delete_policy,
    list_visible_policies,
    load_levels,
)
from tocsin.escalation.schemas import (
    PolicyCreate,
    PolicyOut,
    PolicyUpdate,
    SimulateIn,
    SimulationOut,
)
from tocsin.escalation.simulate import simulate_as
from tocsin.web import CurrentUser, Cursor, DbSession, Limit, Now, Page, State, team_row_in_path

router = APIRouter(prefix="/api/v1/escalation-policies", tags=["escalation policies"])


ReadablePolicy = Annotated[
    EscalationPolicy, team_row_in_path(EscalationPolicy, PolicyNotFound, "policy_id")
]


@router.get("", response_model=Page[PolicyOut])
async def list_policies(
    session: DbSession,
    principal: CurrentUser,
    team_id: uuid.UUID | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[PolicyOut]:
    """Policies of the teams the caller belongs to (all of them for admins), newest first."""
    page, next_cursor = await list_visible_policies(
        session, principal, team_id=team_id, limit=limit, cursor=cursor
    )
    levels = await load_levels(session, [p.id for p in page])
    return Page[PolicyOut](
        items=[PolicyOut.of(p, levels[p.id]) for p in page], next_cursor=next_cursor
    )


@router.post("", status_code=201, response_model=PolicyOut)
async def create_policy_route(
    body: PolicyCreate, session: DbSession, principal: CurrentUser, now: Now
) -> PolicyOut:
    """Managers of team_id or an admin. is_default=true takes over from the team's old
    default policy in the same transaction."""
    await require_team_manager(session, principal, body.team_id)
    created = await create_policy_from_body(session, body, now=now)
    await session.commit()
    return PolicyOut.of(created.policy, created.levels)


@router.get("/{policy_id}", response_model=PolicyOut)
async def get_policy(policy: ReadablePolicy, session: DbSession) -> PolicyOut:
    levels = await load_levels(session, [policy.id])
    return PolicyOut.of(policy, levels[policy.id])


@router.patch("/{policy_id}", response_model=PolicyOut)
async def update_policy(
    policy: ReadablePolicy, body: PolicyUpdate, session: DbSession, principal: CurrentUser, now: Now
) -> PolicyOut:
    """Managers of the policy's team or an admin. `levels`, when sent, replaces them all."""
    await require_team_manager(session, principal, policy.team_id)
    changes = body.model_dump(exclude_unset=True, exclude={"levels"})
    levels = [level.spec() for level in body.levels] if body.levels is not None else None
    changed = await change_policy(session, policy, changes, levels=levels, now=now)
    await session.commit()
    return PolicyOut.of(changed.policy, changed.levels)


@router.delete("/{policy_id}", status_code=204)
async def delete_policy_route(
    policy: ReadablePolicy, session: DbSession, principal: CurrentUser
) -> None:
    """Managers of the policy's team or an admin. 409, naming them, while services use the
    policy or unfinished incidents escalate through it."""
    await require_team_manager(session, principal, policy.team_id)
    await delete_policy(session, policy)
    await session.commit()


simulate_router = APIRouter(prefix="/api/v1/simulate", tags=["simulate"])


@simulate_router.post("", response_model=SimulationOut, openapi_extra=needs_scope(KeyScope.READ))
async def simulate_alert(
    body: SimulateIn, state: State, session: DbSession, principal: CurrentUser, now: Now
) -> SimulationOut:
    """Dry run: where this payload, sent to the integration at `at`, would route, whether it
    would join an open incident, and who would be paged when, level by level and cycle by
    cycle, if nobody acknowledged. Nothing is stored and nothing is sent (an SNS subscription
    is not confirmed, its signature not fetched). Members of the routed team (or admins) see
    the plan; an open incident it would join is named only if the caller may see it."""
    async with state.read_engine.connect() as conn:
        result = await simulate_as(
            session,
            conn,
            principal,
            integration_id=body.integration_id,
            payload=body.payload,
            at=body.at or now,
            settings=state.settings,
        )
    return SimulationOut.of(result)
