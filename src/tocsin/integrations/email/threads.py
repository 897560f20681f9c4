"""Mail threads: a reply (In-Reply-To, References) joins the incident its first message
opened, through the dedup key that message got."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from tocsin.integrations.email.message import ParsedEmail
from tocsin.integrations.email.models import EmailThread
from tocsin.store.inserts import insert_ignoring


async def thread_dedup_key(
    conn: AsyncConnection, integration_id: uuid.UUID, parsed: ParsedEmail
) -> str | None:
    """The dedup key of the earliest-known message this one answers, if any."""
    if not parsed.refers_to:
        return None
    rows = await conn.execute(
        select(EmailThread.message_id, EmailThread.dedup_key).where(
            EmailThread.integration_id == integration_id,
            EmailThread.message_id.in_(parsed.refers_to),
        )
    )
    known: dict[str, str] = {row.message_id: row.dedup_key for row in rows}
    for message_id in parsed.refers_to:  # nearest first: In-Reply-To, then References
        if message_id in known:
            return known[message_id]
    return None


async def remember_thread(
    conn: AsyncConnection,
    integration_id: uuid.UUID,
    parsed: ParsedEmail,
    dedup_key: str,
    now: datetime,
) -> None:
    """Record which dedup key this Message-ID got, so replies to it join the same incident.
    A re-delivered message (same id) keeps its first record."""
    if parsed.message_id is None:
        return
    await insert_ignoring(
        conn,
        EmailThread,
        {
            "integration_id": integration_id,
            "message_id": parsed.message_id,
            "dedup_key": dedup_key,
            "received_at": now,
        },
        unique=["integration_id", "message_id"],
    )
