"""Creating users and API keys, and finding who a request's key belongs to."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.auth.models import ApiKey, KeyScope, User
from tocsin.auth.secrets import display_prefix, hash_password, hash_token, new_token
from tocsin.auth.sessions import find_live_session, is_session_key
from tocsin.errors import Conflict, NotFound

API_KEY_PREFIX = "tk"


@dataclass(frozen=True)
class Principal:
    """The user behind a request, as far as the credential lets them act."""

    user_id: uuid.UUID
    # False for a key restricted to a team: administrator rights do not carry into it.
    is_admin: bool
    # The login session the request came with; None for an API key.
    session_id: uuid.UUID | None = None
    # The API key the request came with; None for a login session.
    api_key_id: uuid.UUID | None = None
    scope: KeyScope = KeyScope.FULL
    # A key restricted to one team acts only inside it (tocsin.auth.permissions).
    team_id: uuid.UUID | None = None


async def create_user(
    session: AsyncSession,
    *,
    email: str,
    name: str,
    is_admin: bool,
    now: datetime,
    password: str | None = None,
    time_zone: str = "UTC",
) -> User:
    """Add a user; a taken email (case-insensitive) is a Conflict."""
    # Argon2 takes tens of milliseconds of CPU: keep it off the event loop.
    password_hash = await asyncio.to_thread(hash_password, password) if password else None
    user = User(
        email=email.strip().lower(),
        name=name,
        is_admin=is_admin,
        is_active=True,
        time_zone=time_zone,
        password_hash=password_hash,
        created_at=now,
        updated_at=now,
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(f"a user with email {user.email!r} already exists") from exc
    return user


async def find_user_by_email(session: AsyncSession, email: str) -> User | None:
    result = await session.execute(select(User).where(User.email == email.strip().lower()))
    return result.scalar_one_or_none()


async def issue_api_key(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    now: datetime,
    name: str = "",
    scope: KeyScope = KeyScope.FULL,
    team_id: uuid.UUID | None = None,
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """Create an API key for a user; returns the row and the key, which is never stored."""
    if await session.get(User, user_id) is None:
        raise NotFound(f"user {user_id} not found")
    token = new_token(API_KEY_PREFIX)
    key = ApiKey(
        user_id=user_id,
        name=name,
        key_hash=hash_token(token),
        prefix=display_prefix(token),
        created_at=now,
        scope=scope,
        team_id=team_id,
        expires_at=expires_at,
    )
    session.add(key)
    await session.flush()
    return key, token


async def find_principal_by_api_key(
    session: AsyncSession, token: str, *, now: datetime
) -> Principal | None:
    """The active user owning this unrevoked, unexpired key, narrowed to the key, or None."""
    row = (
        await session.execute(
            select(User.id, User.is_admin, ApiKey.id.label("key_id"), ApiKey.scope, ApiKey.team_id)
            .join(ApiKey, ApiKey.user_id == User.id)
            .where(
                ApiKey.key_hash == hash_token(token),
                ApiKey.revoked_at.is_(None),
                or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > now),
                User.is_active.is_(True),
            )
        )
    ).first()
    if row is None:
        return None
    return Principal(
        user_id=row.id,
        is_admin=row.is_admin and row.team_id is None,
        api_key_id=row.key_id,
        scope=row.scope,
        team_id=row.team_id,
    )


async def find_principal(session: AsyncSession, token: str, *, now: datetime) -> Principal | None:
    """Who a Bearer credential belongs to: a login session key (`ts_…`) or an API key."""
    if is_session_key(token):
        found = await find_live_session(session, token, now=now)
        if found is None:
            return None
        login, user = found
        return Principal(user_id=user.id, is_admin=user.is_admin, session_id=login.id)
    return await find_principal_by_api_key(session, token, now=now)


async def count_users(session: AsyncSession) -> int:
    return (await session.execute(select(func.count()).select_from(User))).scalar_one()
