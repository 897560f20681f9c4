"""The escalation decisions, as pure functions of (policy snapshot, position, who each level
resolves to, now). Nothing here reads the database or the clock; engine.py loads, calls these,
and applies the frozen answer in one transaction, and simulate.py calls the same functions."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from tocsin.escalation.models import EscalationState, JobKind
from tocsin.escalation.snapshot import PolicySnapshot
from tocsin.escalation.targets import Recipient, Resolved
from tocsin.incidents.models import IncidentStatus


@dataclass(frozen=True, order=True)
class Position:
    """A level of the policy in a given cycle; cycles count from 0."""

    level: int
    repeat: int


FIRST = Position(1, 0)


@dataclass(frozen=True)
class Skip:
    at: Position
    reason: str


@dataclass(frozen=True)
class Advance:
    """What reaching for the next level does: the levels skipped on the way, the level paged
    (with whom) and when its timeout moves on; or that every cycle is done."""

    skipped: tuple[Skip, ...]
    paged: Position | None
    recipients: tuple[Recipient, ...]
    exhausted: bool
    timer_at: datetime | None
    # The position the timer nominally moves to (skips are decided when it fires).
    timer_target: Position | None


def following(snapshot: PolicySnapshot, position: Position) -> Position:
    """The position after `position`'s timeout: the next level, or level 1 of the next cycle."""
    if position.level < len(snapshot.levels):
        return Position(position.level + 1, position.repeat)
    return Position(1, position.repeat + 1)


def reach(
    snapshot: PolicySnapshot, start: Position, resolved: Resolved, *, now: datetime
) -> Advance:
    """Page the first level from `start` on that resolves to someone; levels that resolve to
    nobody are skipped at once. Past the last cycle, escalation is exhausted."""
    position = start
    skipped: list[Skip] = []
    while True:
        if position.level > len(snapshot.levels):
            position = Position(1, position.repeat + 1)
        if position.repeat >= snapshot.repeat_count:
            return Advance(tuple(skipped), None, (), True, None, None)
        resolution = resolved[position.level]
        if resolution.recipients:
            timeout = timedelta(minutes=snapshot.level(position.level).timeout_minutes)
            return Advance(
                tuple(skipped),
                position,
                resolution.recipients,
                False,
                now + timeout,
                following(snapshot, position),
            )
        skipped.append(Skip(position, resolution.why_nobody or "nobody to page"))
        position = Position(position.level + 1, position.repeat)


class Verdict(enum.StrEnum):
    START = "start"  # a new incident: snapshot its policy and page level 1
    ESCALATE = "escalate"  # a level timeout, or escalate now / a policy by hand: move on
    REOPEN = "reopen"  # an acknowledgement timeout: back to OPEN, escalation resumes
    STALE = "stale"  # the incident moved on since the timer was made: do nothing
    RESPONDER = "responder"  # an added responder: page them while the incident is active
    RESUME = "resume"  # OPEN again: page the current level again, restart its timeout
    REASSIGN = "reassign"  # reassigned to a person: page them once


def judge_timer(
    *,
    kind: JobKind,
    job_seq: int,
    status: IncidentStatus,
    state: EscalationState | None,
    seq: int | None,
) -> Verdict:
    """Whether a due timer still applies to the incident as it is now (read under its lock)."""
    if kind == JobKind.START:
        # Started already by hand (escalate now, a reassignment), or no longer open.
        if state is None and status == IncidentStatus.OPEN:
            return Verdict.START
        return Verdict.STALE
    if kind == JobKind.RESPONDER:
        # Independent of the escalation's own steps: only a resolved incident makes it moot.
        if status in (IncidentStatus.OPEN, IncidentStatus.ACKNOWLEDGED):
            return Verdict.RESPONDER
        return Verdict.STALE
    if kind == JobKind.RESUME:
        # Written when the incident became OPEN again; acknowledging, resolving, escalating
        # or reassigning since cancelled it, so an OPEN incident is all it needs.
        if status == IncidentStatus.OPEN:
            return Verdict.RESUME
        return Verdict.STALE
    if kind == JobKind.ACK_TIMEOUT:
        # One written before the escalation started (acknowledged before the start timer
        # fired) has no step to compare; a later acknowledgement cancels it either way.
        if status != IncidentStatus.ACKNOWLEDGED or (state is not None and seq != job_seq):
            return Verdict.STALE
        return Verdict.REOPEN
    if state is None or seq != job_seq:
        return Verdict.STALE
    if kind in (JobKind.LEVEL, JobKind.ESCALATE):
        if status == IncidentStatus.OPEN and state == EscalationState.ESCALATING:
            return Verdict.ESCALATE
        return Verdict.STALE
    if kind == JobKind.REASSIGN:
        # Paged even when acknowledged (a person handed it over); resolving, acknowledging
        # an open incident or moving the escalation since cancelled it.
        if status in (IncidentStatus.OPEN, IncidentStatus.ACKNOWLEDGED) and (
            state == EscalationState.DIRECT
        ):
            return Verdict.REASSIGN
        return Verdict.STALE
    return Verdict.STALE
