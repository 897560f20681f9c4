"""Managing user accounts: adding users, who may change which field of whom, keeping one
active administrator, and a user's API keys. Shared by /api/v1/users and the web UI's
profile and admin pages."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.auth.accounts import Principal, create_user, find_user_by_email, issue_api_key
from tocsin.auth.models import ApiKey, User
from tocsin.auth.schemas import SELF_EDITABLE, ApiKeyCreate, UserCreate
from tocsin.auth.secrets import hash_password
from tocsin.auth.sessions import revoke_sessions_of
from tocsin.errors import Conflict, Forbidden, InvalidInput, NotFound
from tocsin.store.pages import newest_first
from tocsin.teams.models import TeamMember


class UserNotFound(NotFound):
    def __init__(self, user_id: uuid.UUID) -> None:
        super().__init__(f"user {user_id} not found")


class ApiKeyNotFound(NotFound):
    def __init__(self, key_id: uuid.UUID) -> None:
        super().__init__(f"API key {key_id} not found")


class EmailTaken(Conflict):
    def __init__(self, email: str) -> None:
        super().__init__(f"a user with email {email!r} already exists")


class LastAdministrator(Conflict):
    def __init__(self) -> None:
        super().__init__("this is the last active administrator; make another one first")


def require_self_or_admin(principal: Principal, user_id: uuid.UUID) -> None:
    if principal.user_id != user_id and not principal.is_admin:
        raise Forbidden("only the user themselves or an administrator may do this")


def refuse_fields_out_of_reach(principal: Principal, user_id: uuid.UUID, fields: set[str]) -> None:
    """Users may change a few fields of their own account; the rest is for administrators."""
    if principal.is_admin:
        return
    if principal.user_id != user_id:
        raise Forbidden("only an administrator may change another user")
    refused = sorted(fields - SELF_EDITABLE)
    if refused:
        raise Forbidden(f"only an administrator may change {', '.join(refused)}")


async def count_other_active_admins(session: AsyncSession, user_id: uuid.UUID) -> int:
    return (
        await session.execute(
            select(func.count())
            .select_from(User)
            .where(User.is_admin.is_(True), User.is_active.is_(True), User.id != user_id)
        )
    ).scalar_one()


async def change_user(
    session: AsyncSession, user: User, changes: dict[str, Any], *, now: datetime
) -> None:
    """Apply already-permitted changes; refuses a taken email and losing the last admin."""
    email = changes.get("email")
    if (
        email is not None
        and email != user.email
        and await find_user_by_email(session, email) is not None
    ):
        raise EmailTaken(email)
    loses_admin = changes.get("is_admin") is False or changes.get("is_active") is False
    if (
        user.is_admin
        and user.is_active
        and loses_admin
        and await count_other_active_admins(session, user.id) == 0
    ):
        raise LastAdministrator()
    password = changes.pop("password", None)
    if password is not None:
        # Argon2 takes tens of milliseconds of CPU: keep it off the event loop.
        user.password_hash = await asyncio.to_thread(hash_password, password)
        # A password set by someone else: whoever was signed in with the old one is not.
        await revoke_sessions_of(session, user.id, now=now)
    for name, value in changes.items():
        setattr(user, name, value)
    user.updated_at = now
    await session.flush()


def refuse_wider_key(principal: Principal, body: ApiKeyCreate) -> None:
    """A key may not make a key that can do more than itself (a read key minting a full one)."""
    if not principal.scope.covers(body.scope):
        raise Forbidden(f"a key with scope {principal.scope.value!r} may not create a wider key")
    if principal.team_id is not None and body.team_id != principal.team_id:
        raise Forbidden("a key restricted to a team may only create keys for that team")


async def require_key_team(
    session: AsyncSession, *, user_id: uuid.UUID, team_id: uuid.UUID
) -> None:
    """A key restricted to a team: the team must exist and the user must belong to it."""
    member = (
        await session.execute(
            select(TeamMember.role).where(
                TeamMember.team_id == team_id, TeamMember.user_id == user_id
            )
        )
    ).first()
    if member is None:
        raise InvalidInput(f"the user is not a member of team {team_id}", field="team_id")


async def make_api_key(
    session: AsyncSession,
    principal: Principal,
    *,
    user_id: uuid.UUID,
    body: ApiKeyCreate,
    now: datetime,
) -> tuple[ApiKey, str]:
    """A new key for the user, made by the user themselves or an administrator, no wider than
    the key asking for it; returns the row and the key, which is never stored."""
    require_self_or_admin(principal, user_id)
    refuse_wider_key(principal, body)
    if body.team_id is not None:
        await require_key_team(session, user_id=user_id, team_id=body.team_id)
    if body.expires_at is not None and body.expires_at <= now:
        raise InvalidInput("expires_at is in the past", field="expires_at")
    return await issue_api_key(
        session,
        user_id=user_id,
        now=now,
        name=body.name,
        scope=body.scope,
        team_id=body.team_id,
        expires_at=body.expires_at,
    )


async def revoke_api_key(
    session: AsyncSession, *, user_id: uuid.UUID, key_id: uuid.UUID, now: datetime
) -> None:
    """Mark the key revoked; revoking a revoked key keeps its first revocation time."""
    key = (
        await session.execute(select(ApiKey).where(ApiKey.id == key_id, ApiKey.user_id == user_id))
    ).scalar_one_or_none()
    if key is None:
        raise ApiKeyNotFound(key_id)
    if key.revoked_at is None:
        key.revoked_at = now
        await session.flush()


async def add_user(
    session: AsyncSession,
    *,
    email: str,
    name: str,
    is_admin: bool,
    time_zone: str,
    password: str | None,
    now: datetime,
) -> User:
    """A new active user; an email already in use is EmailTaken."""
    if await find_user_by_email(session, email) is not None:
        raise EmailTaken(email)
    return await create_user(
        session,
        email=email,
        name=name,
        is_admin=is_admin,
        now=now,
        password=password,
        time_zone=time_zone,
    )


async def add_user_from_body(session: AsyncSession, body: UserCreate, *, now: datetime) -> User:
    """add_user with what a create body asks for (the API's, or the admin page's form)."""
    return await add_user(
        session,
        email=body.email,
        name=body.name,
        is_admin=body.is_admin,
        time_zone=body.time_zone,
        password=body.password,
        now=now,
    )


async def find_user(session: AsyncSession, user_id: uuid.UUID) -> User:
    """The user, or UserNotFound."""
    user = await session.get(User, user_id)
    if user is None:
        raise UserNotFound(user_id)
    return user


async def list_users(
    session: AsyncSession, *, limit: int, cursor: str | None
) -> tuple[list[User], str | None]:
    """One page of users, newest first, and the cursor of the next page."""
    return await newest_first(
        session, select(User), created=User.created_at, row_id=User.id, limit=limit, cursor=cursor
    )


async def list_api_keys(
    session: AsyncSession, user_id: uuid.UUID, *, limit: int, cursor: str | None
) -> tuple[list[ApiKey], str | None]:
    """One page of the user's API keys (revoked ones included), newest first."""
    return await newest_first(
        session,
        select(ApiKey).where(ApiKey.user_id == user_id),
        created=ApiKey.created_at,
        row_id=ApiKey.id,
        limit=limit,
        cursor=cursor,
    )
