"""The last payloads each integration received and what they were mapped to, for debugging.

Entries are buffered in memory and written in one transaction every half second (and before
the log is read), so keeping the log costs ingest one cheap append rather than a second
write transaction per request. Each integration keeps its newest RING_SIZE entries. Losing
the last half second of entries in a crash is accepted: this is a debugging aid, not a record.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tocsin.db import new_ordered_id
from tocsin.integrations.models import IntegrationPayload
from tocsin.store.connection import Connection, Database

log = logging.getLogger(__name__)

RING_SIZE = 50
MAX_BODY_CHARS = 16_384
FLUSH_SECONDS = 0.5
REDACTED = "<integration key>"


@dataclass(frozen=True)
class PayloadEntry:
    integration_id: uuid.UUID
    received_at: datetime
    status_code: int
    content_type: str
    body: bytes
    mapping: dict[str, Any]
    # The integration key, if the body may carry it (PagerDuty's routing_key): cut out.
    secret: str | None = None


def _row(entry: PayloadEntry) -> dict[str, Any]:
    # Cut before decoding: a multi-byte character split at the cut becomes one U+FFFD.
    text = entry.body[: MAX_BODY_CHARS * 4].decode("utf-8", errors="replace")
    if entry.secret:
        text = text.replace(entry.secret, REDACTED)
    return {
        "id": new_ordered_id(),
        "integration_id": entry.integration_id,
        "received_at": entry.received_at,
        "status_code": entry.status_code,
        "content_type": entry.content_type[:200],
        "body": text[:MAX_BODY_CHARS],
        "body_truncated": len(text) > MAX_BODY_CHARS or len(entry.body) > MAX_BODY_CHARS * 4,
        "mapping": entry.mapping,
    }


async def _trim(conn: Connection, integration_id: uuid.UUID) -> None:
    """Delete all but the integration's newest RING_SIZE entries."""
    keep = (
        select(IntegrationPayload.id)
        .where(IntegrationPayload.integration_id == integration_id)
        .order_by(IntegrationPayload.received_at.desc(), IntegrationPayload.id.desc())
        .limit(RING_SIZE)
    )
    await conn.execute(
        delete(IntegrationPayload).where(
            IntegrationPayload.integration_id == integration_id,
            IntegrationPayload.id.not_in(keep.scalar_subquery()),
        )
    )


def _newest(entries: list[PayloadEntry]) -> list[PayloadEntry]:
    """The last RING_SIZE entries of each integration, in the order they came."""
    kept: list[PayloadEntry] = []
    per_integration: dict[uuid.UUID, int] = {}
    for entry in reversed(entries):
        seen = per_integration.get(entry.integration_id, 0)
        if seen < RING_SIZE:
            per_integration[entry.integration_id] = seen + 1
            kept.append(entry)
    kept.reverse()
    return kept


class PayloadLog:
    def __init__(self, engine: Database) -> None:
        self._engine = engine
        self._pending: list[PayloadEntry] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def record(self, entry: PayloadEntry) -> None:
        self._pending.append(entry)
        self._wake.set()

    async def flush(self) -> None:
        """Write every buffered entry now."""
        async with self._lock:
            entries, self._pending = self._pending, []
            if not entries:
                return
            # Only each integration's newest RING_SIZE entries could survive the trim.
            entries = _newest(entries)
            try:
                async with self._engine.begin() as conn:
                    await conn.execute(insert(IntegrationPayload), [_row(e) for e in entries])
                    for integration_id in {e.integration_id for e in entries}:
                        await _trim(conn, integration_id)
            except Exception:
                # An integration deleted meanwhile, a database hiccup: the entries are lost,
                # ingest is not affected.
                log.exception("writing %d payload log entries failed", len(entries))

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(FLUSH_SECONDS)
            await self.flush()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="payload-log")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()


async def recent_payloads(conn: AsyncConnection, integration_id: uuid.UUID) -> list[Any]:
    """The integration's logged payloads, newest first (rows with the table's columns)."""
    result = await conn.execute(
        select(*IntegrationPayload.__table__.columns)
        .where(IntegrationPayload.integration_id == integration_id)
        .order_by(IntegrationPayload.received_at.desc(), IntegrationPayload.id.desc())
        .limit(RING_SIZE)
    )
    return list(result.all())


async def read_recent_payloads(
    plog: PayloadLog | None, engine: AsyncEngine, integration_id: uuid.UUID
) -> list[Any]:
    """The integration's logged payloads, newest first, buffered ones written first."""
    if plog is not None:
        await plog.flush()
    # A fresh connection: a request's session may have begun reading before the flush, and
    # on SQLite would not see what the flush just wrote.
    async with engine.connect() as conn:
        return await recent_payloads(conn, integration_id)
