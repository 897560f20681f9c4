"""Escalation policies as people configure them: creating, changing and deleting a policy
and its levels, with the checks that need the database (targets exist and belong to the
team, one default policy per team, no deleting a policy still in use)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.auth.accounts import Principal
from tocsin.auth.models import User
from tocsin.auth.permissions import visible_team_ids
from tocsin.catalog.models import Service
from tocsin.errors import Conflict, InvalidInput, NotFound
from tocsin.escalation.models import EscalationLevel, EscalationPolicy, TargetType
from tocsin.incidents.models import Incident, IncidentStatus
from tocsin.schedules.store import schedule_belongs_to_team
from tocsin.store.pages import newest_first
from tocsin.teams.models import Team, TeamMember

if TYPE_CHECKING:
    from tocsin.escalation.schemas import PolicyCreate

UNFINISHED = (IncidentStatus.OPEN, IncidentStatus.ACKNOWLEDGED)


class PolicyNotFound(NotFound):
    def __init__(self, policy_id: uuid.UUID) -> None:
        super().__init__(f"escalation policy {policy_id} not found")


class PolicyInUse(Conflict):
    """Services route to the policy, or unfinished incidents escalate through it."""

    def __init__(
        self, policy_id: uuid.UUID, *, services: list[str], unfinished_incidents: int
    ) -> None:
        reasons = []
        if services:
            reasons.append("services " + ", ".join(repr(name) for name in services) + " use it")
        if unfinished_incidents:
            reasons.append(f"{unfinished_incidents} unfinished incidents escalate through it")
        super().__init__(f"escalation policy {policy_id} is in use: {'; '.join(reasons)}")
        self.services = services
        self.unfinished_incidents = unfinished_incidents


@dataclass(frozen=True)
class LevelSpec:
    """One level as asked for, before it is stored."""

    level_number: int
    target_type: TargetType
    target_id: uuid.UUID | None
    timeout_minutes: int


@dataclass(frozen=True)
class PolicyWithLevels:
    policy: EscalationPolicy
    levels: list[EscalationLevel]


async def schedule_exists(
    session: AsyncSession, *, team_id: uuid.UUID, schedule_id: uuid.UUID
) -> bool:
    """Whether the team has this on-call schedule."""
    conn = await session.connection()
    return await schedule_belongs_to_team(conn, team_id=team_id, schedule_id=schedule_id)


async def _refuse_bad_targets(
    session: AsyncSession, *, team_id: uuid.UUID, levels: Sequence[LevelSpec]
) -> None:
    """A user target must be a member of the team, a schedule target one of its schedules.
    Errors name the level by its position in the request (levels.<i>.target_id)."""
    user_ids = {lv.target_id for lv in levels if lv.target_type == TargetType.USER}
    users: set[uuid.UUID] = set()
    members: set[uuid.UUID] = set()
    if user_ids:
        users = set((await session.execute(select(User.id).where(User.id.in_(user_ids)))).scalars())
        members = set(
            (
                await session.execute(
                    select(TeamMember.user_id).where(
                        TeamMember.team_id == team_id, TeamMember.user_id.in_(user_ids)
                    )
                )
            ).scalars()
        )
    for index, level in enumerate(levels):
        field = f"levels.{index}.target_id"
        target = level.target_id
        if target is None:
            continue
        if level.target_type == TargetType.USER:
            if target not in users:
                raise InvalidInput(f"user {target} does not exist", field=field)
            if target not in members:
                raise InvalidInput(f"user {target} is not a member of team {team_id}", field=field)
        elif level.target_type == TargetType.SCHEDULE and not await schedule_exists(
            session, team_id=team_id, schedule_id=target
        ):
            raise InvalidInput(f"schedule {target} does not exist", field=field)


async def _clear_team_default(
    session: AsyncSession, *, team_id: uuid.UUID, except_id: uuid.UUID | None = None
) -> None:
    """Unset is_default on the team's policies (but one), so another may take it. Must run
    before the new default is flushed: the partial unique index allows one at a time."""
    stmt = (
        update(EscalationPolicy)
        .where(EscalationPolicy.team_id == team_id, EscalationPolicy.is_default.is_(True))
        .values(is_default=False)
    )
    if except_id is not None:
        stmt = stmt.where(EscalationPolicy.id != except_id)
    await session.execute(stmt)


def _level_rows(policy_id: uuid.UUID, levels: Sequence[LevelSpec]) -> list[EscalationLevel]:
    return [
        EscalationLevel(
            policy_id=policy_id,
            level_number=level.level_number,
            target_type=level.target_type,
            target_id=level.target_id,
            timeout_minutes=level.timeout_minutes,
        )
        for level in sorted(levels, key=lambda lv: lv.level_number)
    ]


async def find_policy(session: AsyncSession, policy_id: uuid.UUID) -> EscalationPolicy | None:
    return await session.get(EscalationPolicy, policy_id)


async def list_visible_policies(
    session: AsyncSession,
    principal: Principal,
    *,
    team_id: uuid.UUID | None = None,
    limit: int,
    cursor: str | None = None,
) -> tuple[list[EscalationPolicy], str | None]:
    """Policies of the teams the caller belongs to (all of them for admins), newest first,
    and the cursor of the next page (None on the last)."""
    stmt = select(EscalationPolicy)
    visible = await visible_team_ids(session, principal)
    if visible is not None:
        stmt = stmt.where(EscalationPolicy.team_id.in_(visible))
    if team_id is not None:
        stmt = stmt.where(EscalationPolicy.team_id == team_id)
    return await newest_first(session, stmt, limit=limit, cursor=cursor)


async def load_levels(
    session: AsyncSession, policy_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[EscalationLevel]]:
    """The levels of each policy, in level_number order; one query for a whole page."""
    by_policy: dict[uuid.UUID, list[EscalationLevel]] = {pid: [] for pid in policy_ids}
    if not policy_ids:
        return by_policy
    result = await session.execute(
        select(EscalationLevel)
        .where(EscalationLevel.policy_id.in_(policy_ids))
        .order_by(EscalationLevel.policy_id, EscalationLevel.level_number)
    )
    for level in result.scalars():
        by_policy[level.policy_id].append(level)
    return by_policy


async def create_policy(
    session: AsyncSession,
    *,
    team_id: uuid.UUID,
    name: str,
    description: str,
    is_default: bool,
    repeat_count: int,
    is_active: bool,
    levels: Sequence[LevelSpec],
    now: datetime,
    ack_timeout_minutes: int | None = None,
) -> PolicyWithLevels:
    """A new policy with its levels; a default policy takes over from the team's old one."""
    if await session.get(Team, team_id) is None:
        raise InvalidInput(f"team {team_id} does not exist", field="team_id")
    await _refuse_bad_targets(session, team_id=team_id, levels=levels)
    if is_default:
        await _clear_team_default(session, team_id=team_id)
    policy = EscalationPolicy(
        team_id=team_id,
        name=name,
        description=description,
        is_default=is_default,
        repeat_count=repeat_count,
        is_active=is_active,
        ack_timeout_minutes=ack_timeout_minutes,
        created_at=now,
        updated_at=now,
    )
    session.add(policy)
    await session.flush()
    rows = _level_rows(policy.id, levels)
    session.add_all(rows)
    await session.flush()
    return PolicyWithLevels(policy, rows)


async def create_policy_from_body(
    session: AsyncSession, body: PolicyCreate, *, now: datetime
) -> PolicyWithLevels:
    """create_policy with what a create body asks for (the API's, or the page's form)."""
    return await create_policy(
        session,
        team_id=body.team_id,
        name=body.name,
        description=body.description,
        is_default=body.is_default,
        repeat_count=body.repeat_count,
        is_active=body.is_active,
        ack_timeout_minutes=body.ack_timeout_minutes,
        levels=[level.spec() for level in body.levels],
        now=now,
    )


async def change_policy(
    session: AsyncSession,
    policy: EscalationPolicy,
    changes: dict[str, Any],
    *,
    levels: Sequence[LevelSpec] | None,
    now: datetime,
) -> PolicyWithLevels:
    """Apply the changed fields; `levels`, unless None, replaces every level."""
    if levels is not None:
        await _refuse_bad_targets(session, team_id=policy.team_id, levels=levels)
    if changes.get("is_default"):
        await _clear_team_default(session, team_id=policy.team_id, except_id=policy.id)
    for name, value in changes.items():
        setattr(policy, name, value)
    policy.updated_at = now
    if levels is not None:
        # Old rows go first: (policy_id, level_number) is unique.
        await session.execute(delete(EscalationLevel).where(EscalationLevel.policy_id == policy.id))
        session.add_all(_level_rows(policy.id, levels))
    await session.flush()
    return PolicyWithLevels(policy, (await load_levels(session, [policy.id]))[policy.id])


async def delete_policy(session: AsyncSession, policy: EscalationPolicy) -> None:
    """Delete the policy and its levels; PolicyInUse while a service routes to it or an
    unfinished incident escalates through it (deleting would quietly stop its paging)."""
    services = list(
        (
            await session.execute(
                select(Service.name)
                .where(Service.escalation_policy_id == policy.id)
                .order_by(Service.name)
            )
        ).scalars()
    )
    unfinished = (
        await session.execute(
            select(func.count()).where(
                Incident.escalation_policy_id == policy.id, Incident.status.in_(UNFINISHED)
            )
        )
    ).scalar_one()
    if services or unfinished:
        raise PolicyInUse(policy.id, services=services, unfinished_incidents=unfinished)
    await session.delete(policy)
    await session.flush()
