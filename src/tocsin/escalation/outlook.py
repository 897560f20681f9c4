"""Who each level of a team's escalation policies would page right now: the same
`resolve_level` the engine runs when an incident reaches a level, for the on-call page."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from tocsin.escalation.models import EscalationLevel, EscalationPolicy, TargetType
from tocsin.escalation.snapshot import LevelSnapshot
from tocsin.escalation.targets import Recipient, resolve_level

# A team with more policies than this shows the first ones by name, and says so.
MAX_POLICIES_SHOWN = 20


@dataclass(frozen=True, slots=True)
class LevelNow:
    number: int
    target_type: TargetType
    target_id: uuid.UUID | None
    timeout_minutes: int
    recipients: tuple[Recipient, ...]
    why_nobody: str


@dataclass(frozen=True, slots=True)
class PolicyNow:
    policy_id: uuid.UUID
    name: str
    is_default: bool
    is_active: bool
    repeat_count: int
    levels: tuple[LevelNow, ...]


async def find_team_policies_now(
    conn: AsyncConnection, team_id: uuid.UUID, now: datetime, *, limit: int = MAX_POLICIES_SHOWN
) -> list[PolicyNow]:
    """The team's policies by name (at most `limit`), each level with whom it pages at `now`."""
    policies = (
        await conn.execute(
            select(
                EscalationPolicy.id,
                EscalationPolicy.name,
                EscalationPolicy.is_default,
                EscalationPolicy.is_active,
                EscalationPolicy.repeat_count,
            )
            .where(EscalationPolicy.team_id == team_id)
            .order_by(EscalationPolicy.name, EscalationPolicy.id)
            .limit(limit)
        )
    ).all()
    if not policies:
        return []
    levels = (
        await conn.execute(
            select(
                EscalationLevel.policy_id,
                EscalationLevel.target_type,
                EscalationLevel.target_id,
                EscalationLevel.timeout_minutes,
            )
            .where(EscalationLevel.policy_id.in_([p.id for p in policies]))
            .order_by(EscalationLevel.policy_id, EscalationLevel.level_number)
        )
    ).all()
    found: list[PolicyNow] = []
    for policy in policies:
        own = [level for level in levels if level.policy_id == policy.id]
        resolved: list[LevelNow] = []
        # Numbered 1..n in order, as the engine's snapshot numbers them.
        for number, level in enumerate(own, start=1):
            snapshot = LevelSnapshot(
                number, level.target_type, level.target_id, level.timeout_minutes
            )
            answer = await resolve_level(conn, snapshot, team_id=team_id, at=now)
            resolved.append(
                LevelNow(
                    number,
                    level.target_type,
                    level.target_id,
                    level.timeout_minutes,
                    answer.recipients,
                    answer.why_nobody,
                )
            )
        found.append(
            PolicyNow(
                policy.id,
                policy.name,
                policy.is_default,
                policy.is_active,
                policy.repeat_count,
                tuple(resolved),
            )
        )
    return found
