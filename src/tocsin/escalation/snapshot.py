"""The policy an incident escalates through, frozen when the incident opens.

Editing a policy never changes the escalation of incidents already running on it: each one
carries a copy of the policy's levels, repeat count and acknowledgement timeout as they were
when it opened (or was reassigned to the policy). New incidents get the new version.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select

from tocsin.escalation.models import (
    EscalationLevel,
    EscalationPolicy,
    IncidentEscalation,
    TargetType,
)
from tocsin.incidents.models import Incident
from tocsin.store.connection import Connection
from tocsin.timers import attached


@dataclass(frozen=True)
class LevelSnapshot:
    number: int
    target_type: TargetType
    target_id: uuid.UUID | None
    timeout_minutes: int


@dataclass(frozen=True)
class PolicySnapshot:
    policy_id: uuid.UUID | None
    name: str
    repeat_count: int
    ack_timeout_minutes: int | None
    levels: tuple[LevelSnapshot, ...]

    def level(self, number: int) -> LevelSnapshot:
        return self.levels[number - 1]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "repeat_count": self.repeat_count,
            "ack_timeout_minutes": self.ack_timeout_minutes,
            "levels": [
                {
                    "level_number": lv.number,
                    "target_type": lv.target_type.value,
                    "target_id": str(lv.target_id) if lv.target_id else None,
                    "timeout_minutes": lv.timeout_minutes,
                }
                for lv in self.levels
            ],
        }

    @classmethod
    def from_json(cls, policy_id: uuid.UUID | None, data: dict[str, Any]) -> PolicySnapshot:
        return cls(
            policy_id=policy_id,
            name=str(data["name"]),
            repeat_count=int(data["repeat_count"]),
            ack_timeout_minutes=data.get("ack_timeout_minutes"),
            levels=tuple(
                LevelSnapshot(
                    number=int(lv["level_number"]),
                    target_type=TargetType(lv["target_type"]),
                    target_id=uuid.UUID(lv["target_id"]) if lv["target_id"] else None,
                    timeout_minutes=int(lv["timeout_minutes"]),
                )
                for lv in data["levels"]
            ),
        )


# A policy's row joined to each of its levels; a policy with no levels has no rows.
_POLICY_LEVEL_ROWS = select(
    EscalationPolicy.id,
    EscalationPolicy.name,
    EscalationPolicy.repeat_count,
    EscalationPolicy.ack_timeout_minutes,
    EscalationLevel.target_type,
    EscalationLevel.target_id,
    EscalationLevel.timeout_minutes,
).join(EscalationLevel, EscalationLevel.policy_id == EscalationPolicy.id)

_POLICY_WITH_LEVELS = _POLICY_LEVEL_ROWS.where(
    EscalationPolicy.id == bindparam("policy_id")
).order_by(EscalationLevel.level_number)

_POLICIES_WITH_LEVELS = _POLICY_LEVEL_ROWS.where(
    EscalationPolicy.id.in_(bindparam("policy_ids", expanding=True))
).order_by(EscalationPolicy.id, EscalationLevel.level_number)


def _snapshot(policy_id: uuid.UUID, rows: Sequence[Any]) -> PolicySnapshot:
    """The snapshot of one policy from its level rows, in level order."""
    policy = rows[0]
    return PolicySnapshot(
        policy_id=policy_id,
        name=policy.name,
        repeat_count=policy.repeat_count,
        ack_timeout_minutes=policy.ack_timeout_minutes,
        # Renumbered 1..n in order, whatever was stored, so level(n) is always an index.
        levels=tuple(
            LevelSnapshot(
                number=index,
                target_type=row.target_type,
                target_id=row.target_id,
                timeout_minutes=row.timeout_minutes,
            )
            for index, row in enumerate(rows, start=1)
        ),
    )


async def load_policy_snapshot(conn: Connection, policy_id: uuid.UUID) -> PolicySnapshot | None:
    """The policy and its levels as they are now; None if it does not exist or has no levels."""
    rows = (await conn.execute(_POLICY_WITH_LEVELS, {"policy_id": policy_id})).all()
    return _snapshot(policy_id, rows) if rows else None


async def load_policy_snapshots(
    conn: Connection, policy_ids: set[uuid.UUID]
) -> dict[uuid.UUID, PolicySnapshot]:
    """Several policies with their levels in one query; one with no levels is left out."""
    if not policy_ids:
        return {}
    rows = (await conn.execute(_POLICIES_WITH_LEVELS, {"policy_ids": sorted(policy_ids)})).all()
    by_policy: dict[uuid.UUID, list[Any]] = {}
    for row in rows:
        by_policy.setdefault(row.id, []).append(row)
    return {policy_id: _snapshot(policy_id, levels) for policy_id, levels in by_policy.items()}


_ACK_TIMEOUT_OF = (
    select(
        IncidentEscalation.policy_snapshot,
        IncidentEscalation.level,
        IncidentEscalation.repeat,
        IncidentEscalation.seq,
        EscalationPolicy.ack_timeout_minutes,
    )
    .select_from(Incident)
    .outerjoin(IncidentEscalation, IncidentEscalation.incident_id == Incident.id)
    .outerjoin(EscalationPolicy, EscalationPolicy.id == Incident.escalation_policy_id)
    .where(Incident.id == bindparam("incident_id"))
)


@attached.finds_ack_timeouts
async def find_ack_timeout(
    conn: Connection, incident_id: uuid.UUID
) -> attached.AckTimeoutSource | None:
    """The incident's acknowledgement timeout: its snapshot's, where its escalation stands,
    once the escalation started; before that its policy's as it is now, at level 1. The
    timers ask for it when an acknowledgement writes its timeout's timer."""
    row = (await conn.execute(_ACK_TIMEOUT_OF, {"incident_id": incident_id})).first()
    if row is None:
        return None
    if row.policy_snapshot is not None:
        minutes = row.policy_snapshot.get("ack_timeout_minutes")
        return attached.AckTimeoutSource(minutes, row.level, row.repeat, row.seq)
    return attached.AckTimeoutSource(row.ack_timeout_minutes, level=1, repeat=0, seq=0)
