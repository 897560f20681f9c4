"""Who a level's target means at one instant: a user, whoever a schedule has on call, or every
responder and manager of the team. This is the "load" half of each escalation decision."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from tocsin.auth.models import User
from tocsin.escalation.models import PageVia, TargetType
from tocsin.escalation.snapshot import LevelSnapshot
from tocsin.schedules.shifts import SourceKind
from tocsin.schedules.store import find_on_call
from tocsin.store.connection import Connection
from tocsin.teams.models import TeamMember, TeamRole


@dataclass(frozen=True)
class Recipient:
    """One person to page, and how the level's target led to them."""

    user_id: uuid.UUID
    via: PageVia
    schedule_id: uuid.UUID | None = None
    layer_id: uuid.UUID | None = None
    override_id: uuid.UUID | None = None


@dataclass(frozen=True)
class Resolution:
    """A level's recipients at one instant; `why_nobody` explains an empty answer."""

    recipients: tuple[Recipient, ...]
    why_nobody: str = ""


# Recipients of each level number, resolved at the same instant.
Resolved = Mapping[int, Resolution]


async def _active_users(conn: Connection, user_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    if not user_ids:
        return set()
    rows = await conn.execute(
        select(User.id).where(User.id.in_(user_ids), User.is_active.is_(True))
    )
    return set(rows.scalars())


async def resolve_level(
    conn: Connection, level: LevelSnapshot, *, team_id: uuid.UUID, at: datetime
) -> Resolution:
    """The level's recipients at instant `at` (deactivated users are left out)."""
    if level.target_type == TargetType.USER:
        assert level.target_id is not None
        if level.target_id in await _active_users(conn, [level.target_id]):
            return Resolution((Recipient(level.target_id, PageVia.USER),))
        return Resolution((), f"user {level.target_id} no longer exists or is deactivated")
    if level.target_type == TargetType.ENTIRE_TEAM:
        rows = await conn.execute(
            select(TeamMember.user_id)
            .join(User, User.id == TeamMember.user_id)
            .where(
                TeamMember.team_id == team_id,
                TeamMember.role.in_([TeamRole.MANAGER, TeamRole.RESPONDER]),
                User.is_active.is_(True),
            )
            .order_by(TeamMember.user_id)
        )
        members = tuple(Recipient(uid, PageVia.ENTIRE_TEAM) for uid in rows.scalars())
        return Resolution(members, "" if members else "the team has no responders or managers")
    assert level.target_id is not None
    answer = await find_on_call(conn, level.target_id, at)
    if answer is None:
        return Resolution((), f"schedule {level.target_id} no longer exists")
    source = answer.source
    layer_id = source.id if source is not None and source.kind == SourceKind.LAYER else None
    override_id = source.id if source is not None and source.kind == SourceKind.OVERRIDE else None
    active = await _active_users(conn, list(answer.user_ids))
    on_call = tuple(
        Recipient(uid, PageVia.SCHEDULE, level.target_id, layer_id, override_id)
        for uid in answer.user_ids
        if uid in active
    )
    if on_call:
        return Resolution(on_call)
    return Resolution((), f"nobody is on call in schedule {level.target_id}")


class BatchResolver:
    """Resolves the levels of many incidents at one instant, each distinct target once: a
    storm of new incidents on a few policies costs a few queries, not a few per incident."""

    def __init__(self, conn: Connection, *, at: datetime) -> None:
        self._conn = conn
        self._at = at
        self._memo: dict[tuple[TargetType, uuid.UUID | None, uuid.UUID | None], Resolution] = {}

    @staticmethod
    def _key(
        level: LevelSnapshot, team_id: uuid.UUID
    ) -> tuple[TargetType, uuid.UUID | None, uuid.UUID | None]:
        # A team target depends on the incident's team; the others do not.
        team = team_id if level.target_type == TargetType.ENTIRE_TEAM else None
        return (level.target_type, level.target_id, team)

    async def prefetch_users(self, levels: list[LevelSnapshot]) -> None:
        """Resolve every user target among `levels` in one query."""
        wanted = {
            lv.target_id
            for lv in levels
            if lv.target_type == TargetType.USER
            and lv.target_id is not None
            and (TargetType.USER, lv.target_id, None) not in self._memo
        }
        if not wanted:
            return
        active = await _active_users(self._conn, sorted(wanted))
        for user_id in wanted:
            self._memo[(TargetType.USER, user_id, None)] = (
                Resolution((Recipient(user_id, PageVia.USER),))
                if user_id in active
                else Resolution((), f"user {user_id} no longer exists or is deactivated")
            )

    async def resolve(self, level: LevelSnapshot, *, team_id: uuid.UUID) -> Resolution:
        """The level's recipients at the resolver's instant (as `resolve_level`)."""
        key = self._key(level, team_id)
        found = self._memo.get(key)
        if found is None:
            found = await resolve_level(self._conn, level, team_id=team_id, at=self._at)
            self._memo[key] = found
        return found
