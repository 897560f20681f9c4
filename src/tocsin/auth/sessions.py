"""Login sessions: an expiring key handed out at sign-in, used as a browser cookie or a
Bearer credential, stored only as its SHA-256, revoked by sign-out or a password change."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.auth.models import LoginSession, User
from tocsin.auth.secrets import hash_token, new_token

SESSION_KEY_PREFIX = "ts"
# The browser cookie holding a session key (the web UI sets it at sign-in).
SESSION_COOKIE = "tocsin_session"


def is_session_key(token: str) -> bool:
    return token.startswith(SESSION_KEY_PREFIX + "_")


async def open_session(
    session: AsyncSession, *, user_id: uuid.UUID, now: datetime, ttl: timedelta
) -> tuple[LoginSession, str]:
    """A new session for the user; returns the row and its key, which is never stored."""
    key = new_token(SESSION_KEY_PREFIX)
    row = LoginSession(
        user_id=user_id, key_hash=hash_token(key), created_at=now, expires_at=now + ttl
    )
    session.add(row)
    await session.flush()
    return row, key


async def find_live_session(
    session: AsyncSession, key: str, *, now: datetime
) -> tuple[LoginSession, User] | None:
    """The unexpired, unrevoked session with this key and its active user, or None."""
    row = (
        await session.execute(
            select(LoginSession, User)
            .join(User, User.id == LoginSession.user_id)
            .where(
                LoginSession.key_hash == hash_token(key),
                LoginSession.revoked_at.is_(None),
                LoginSession.expires_at > now,
                User.is_active.is_(True),
            )
        )
    ).first()
    if row is None:
        return None
    return row[0], row[1]


async def revoke_session(session: AsyncSession, session_id: uuid.UUID, *, now: datetime) -> None:
    """End one session (sign-out); ending an ended one changes nothing."""
    await session.execute(
        update(LoginSession)
        .where(LoginSession.id == session_id, LoginSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )


async def revoke_sessions_of(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    now: datetime,
    keep: uuid.UUID | None = None,
) -> int:
    """End every live session of the user except `keep`; returns how many ended."""
    stmt = (
        update(LoginSession)
        .where(
            LoginSession.user_id == user_id,
            LoginSession.revoked_at.is_(None),
            LoginSession.expires_at > now,
        )
        .values(revoked_at=now)
    )
    if keep is not None:
        stmt = stmt.where(LoginSession.id != keep)
    result = await session.execute(stmt)
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
