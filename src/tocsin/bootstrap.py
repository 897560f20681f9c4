"""Making a fresh installation usable: the first admin, and admin tasks for scripts."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from tocsin.audit.recorder import act_as, command_line
from tocsin.auth.accounts import count_users, create_user, find_user_by_email, issue_api_key
from tocsin.auth.models import KeyScope
from tocsin.clock import Clock
from tocsin.db import create_session_factory
from tocsin.errors import NotFound

FIRST_ADMIN_EMAIL = "admin@tocsin.local"


@dataclass(frozen=True)
class FirstAdmin:
    email: str
    password: str
    api_key: str


async def create_first_admin_if_empty(engine: AsyncEngine, clock: Clock) -> FirstAdmin | None:
    """On an installation with no users, create an admin with a one-time password and API
    key and return them (they are not stored in the clear, so this is the only chance to
    see them); otherwise None."""
    sessions = create_session_factory(engine)
    async with sessions() as session, session.begin():
        act_as(session, command_line(clock))
        if await count_users(session) > 0:
            return None
        password = secrets.token_urlsafe(12)
        now = clock.now()
        user = await create_user(
            session,
            email=FIRST_ADMIN_EMAIL,
            name="Admin",
            is_admin=True,
            now=now,
            password=password,
        )
        _, key = await issue_api_key(session, user_id=user.id, now=now, name="first start")
    return FirstAdmin(email=FIRST_ADMIN_EMAIL, password=password, api_key=key)


async def add_user(
    engine: AsyncEngine,
    clock: Clock,
    *,
    email: str,
    name: str,
    admin: bool,
    password: str | None,
) -> str:
    sessions = create_session_factory(engine)
    async with sessions() as session, session.begin():
        act_as(session, command_line(clock))
        user = await create_user(
            session, email=email, name=name, is_admin=admin, now=clock.now(), password=password
        )
        return str(user.id)


async def add_api_key(
    engine: AsyncEngine,
    clock: Clock,
    *,
    email: str,
    name: str,
    scope: KeyScope = KeyScope.FULL,
    expires_in_days: float | None = None,
) -> str:
    """A new key for the user with this email; returns the key (shown this once)."""
    sessions = create_session_factory(engine)
    async with sessions() as session, session.begin():
        act_as(session, command_line(clock))
        user = await find_user_by_email(session, email)
        if user is None:
            raise NotFound(f"no user with email {email!r}")
        now = clock.now()
        expires_at = None if expires_in_days is None else now + timedelta(days=expires_in_days)
        _, key = await issue_api_key(
            session, user_id=user.id, now=now, name=name, scope=scope, expires_at=expires_at
        )
        return key
