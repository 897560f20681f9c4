"""Inhibition rules: creating and deleting them (each change tells every process's cache)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.noise.models import InhibitionRule
from tocsin.noise.rulecache import note_rules_changed
from tocsin.noise.schemas import InhibitionRuleCreate


async def create_inhibition(
    session: AsyncSession, body: InhibitionRuleCreate, *, by: uuid.UUID, now: datetime
) -> InhibitionRule:
    rule = InhibitionRule(
        team_id=body.team_id,
        name=body.name,
        source_matchers=[m.matcher().as_dict() for m in body.source_matchers],
        target_matchers=[m.matcher().as_dict() for m in body.target_matchers],
        equal=list(body.equal),
        created_by=by,
        created_at=now,
    )
    session.add(rule)
    await session.flush()
    await note_rules_changed(session)
    return rule


async def delete_inhibition(session: AsyncSession, rule: InhibitionRule) -> None:
    await session.delete(rule)
    await session.flush()
    await note_rules_changed(session)
