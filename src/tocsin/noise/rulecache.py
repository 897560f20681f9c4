"""Silences and inhibition rules, parsed once per process and reused by every ingest batch
until one of them changes.

Every change to a silence or an inhibition rule writes a new random stamp into one row
(`noise_rules_version`) in its own transaction (`note_rules_changed`). A batch reads that
stamp (a primary-key lookup) and reparses the rules only when it differs from the cached
one, so any number of processes on one database stay correct without talking to each other.
A random stamp rather than a counter: a change rolled back after a batch in the same
transaction had cached it, or a database recreated under the same URL, can never come back
with a number the cache already holds. The stamp is read *before* the rules: a change
committed in between leaves the cache holding newer rules under an older stamp, which the
next batch simply reloads; the other order could keep stale rules for good.

Expiry by time needs no change to be noticed: the cache keeps every silence not yet expired by
hand or by the worker, with its start and end, and the decision picks those active at `now`
(the injected clock) on each batch. Parsed rules come indexed (rules.LeadIndex), so an alert
is not tried against every silence.
"""

from __future__ import annotations

import secrets
import weakref
from dataclasses import dataclass

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.noise.matchers import from_stored
from tocsin.noise.models import InhibitionRule, NoiseRulesVersion, Silence
from tocsin.noise.rules import Inhibition, LeadIndex, SilenceRule
from tocsin.store.connection import Connection

_ROW = 1


@dataclass(frozen=True)
class RulesInForce:
    """Every silence not expired (each knows its start and end) and every inhibition rule,
    indexed by their matchers (inhibition rules by their target side)."""

    version: int
    silences: LeadIndex[SilenceRule]
    inhibitions: LeadIndex[Inhibition]


# One entry per engine (a process normally has one per database; tests make many). The
# SQLite ingest committer runs in a thread of its own: entries are only replaced whole.
_CACHE: weakref.WeakKeyDictionary[Engine, RulesInForce] = weakref.WeakKeyDictionary()

_VERSION = select(NoiseRulesVersion.version).where(NoiseRulesVersion.id == _ROW)
_LIVE_SILENCES = select(
    Silence.id,
    Silence.team_id,
    Silence.matchers,
    Silence.comment,
    Silence.starts_at,
    Silence.ends_at,
).where(Silence.expired_at.is_(None))
_INHIBITIONS = select(
    InhibitionRule.id,
    InhibitionRule.team_id,
    InhibitionRule.name,
    InhibitionRule.source_matchers,
    InhibitionRule.target_matchers,
    InhibitionRule.equal,
)
_BUMP = update(NoiseRulesVersion).where(NoiseRulesVersion.id == _ROW)


async def note_rules_changed(db: Connection | AsyncSession) -> None:
    """Write a new stamp in the caller's transaction, so every process reloads the rules
    once it commits."""
    stamp = secrets.randbits(62)
    result = await db.execute(_BUMP.values(version=stamp))
    if not getattr(result, "rowcount", 1):
        # The migration writes the row; this only covers a table emptied by hand.
        await db.execute(insert(NoiseRulesVersion).values(id=_ROW, version=stamp))


async def _load(conn: Connection, version: int) -> RulesInForce:
    silences = [
        SilenceRule(
            row.id,
            row.team_id,
            from_stored(row.matchers),
            row.comment,
            starts_at=row.starts_at,
            ends_at=row.ends_at,
        )
        for row in await conn.execute(_LIVE_SILENCES)
    ]
    inhibitions = [
        Inhibition(
            row.id,
            row.team_id,
            row.name,
            from_stored(row.source_matchers),
            from_stored(row.target_matchers),
            tuple(row.equal),
        )
        for row in await conn.execute(_INHIBITIONS)
    ]
    return RulesInForce(
        version,
        LeadIndex([(s.matchers, s) for s in silences]),
        LeadIndex([(r.target, r) for r in inhibitions]),
    )


async def rules_in_force(conn: Connection) -> RulesInForce:
    """The rules as this process last parsed them, reparsed first if any changed since: one
    primary-key read per batch, plus two when a rule changed."""
    version = (await conn.execute(_VERSION)).scalar_one_or_none()
    if version is None:
        return await _load(conn, -1)  # no stamp row: never trust a cached copy
    engine = conn.sync_engine
    cached = _CACHE.get(engine)
    if cached is None or cached.version != version:
        cached = await _load(conn, version)
        _CACHE[engine] = cached
    return cached


def forget_cached_rules() -> None:
    """Drop every cached copy (the next batch reloads)."""
    _CACHE.clear()
