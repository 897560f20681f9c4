"""User, API key and login routes.

The few rules these routes need (who may change which field of a user, keeping one active
administrator, checking a password without telling whether the email exists) are kept at the
top of this module, as the auth package has no module of its own for them yet.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.auth.accounts import (
    Principal,
    create_user,
    find_user_by_email,
    issue_api_key,
)
from tocsin.auth.login import change_own_password, log_in, login_limits
from tocsin.auth.models import ApiKey, User
from tocsin.auth.permissions import require_admin
from tocsin.auth.schemas import (
    SELF_EDITABLE,
    ApiKeyCreate,
    ApiKeyOut,
    IssuedApiKey,
    LoginIn,
    LoginOut,
    PasswordChange,
    UserCreate,
    UserOut,
    UserUpdate,
)
from tocsin.auth.secrets import hash_password
from tocsin.auth.sessions import revoke_session, revoke_sessions_of
from tocsin.errors import Conflict, Forbidden, InvalidInput, NotFound
from tocsin.teams.models import TeamMember
from tocsin.web import (
    CurrentUser,
    Cursor,
    DbSession,
    Limit,
    Now,
    Page,
    State,
    client_address,
    cut_page,
    newest_first_page,
)


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


# Routes


users = APIRouter(prefix="/api/v1/users", tags=["users"])
auth = APIRouter(prefix="/api/v1/auth", tags=["auth"])


async def get_user(user_id: uuid.UUID, session: DbSession, _principal: CurrentUser) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise UserNotFound(user_id)
    return user


TargetUser = Annotated[User, Depends(get_user)]


@users.get("", response_model=Page[UserOut])
async def list_users(
    session: DbSession, _principal: CurrentUser, limit: Limit = 50, cursor: Cursor = None
) -> Page[UserOut]:
    """Every user, newest first; any signed-in user may list them, to pick assignees."""
    stmt = newest_first_page(
        select(User), created=User.created_at, row_id=User.id, limit=limit, cursor=cursor
    )
    rows = list((await session.execute(stmt)).scalars())
    page, next_cursor = cut_page(rows, limit, lambda u: (u.created_at, u.id))
    return Page[UserOut](items=[UserOut.model_validate(u) for u in page], next_cursor=next_cursor)


@users.post("", status_code=201, response_model=UserOut)
async def create_user_route(
    body: UserCreate, session: DbSession, principal: CurrentUser, now: Now
) -> UserOut:
    """Admin only."""
    require_admin(principal)
    if await find_user_by_email(session, body.email) is not None:
        raise EmailTaken(body.email)
    user = await create_user(
        session,
        email=body.email,
        name=body.name,
        is_admin=body.is_admin,
        now=now,
        password=body.password,
        time_zone=body.time_zone,
    )
    await session.commit()
    return UserOut.model_validate(user)


@users.get("/me", response_model=UserOut)
async def get_me(session: DbSession, principal: CurrentUser) -> UserOut:
    user = await session.get(User, principal.user_id)
    if user is None:  # deleted between the key check and now
        raise UserNotFound(principal.user_id)
    return UserOut.model_validate(user)


@users.get("/{user_id}", response_model=UserOut)
async def get_user_route(user: TargetUser) -> UserOut:
    return UserOut.model_validate(user)


@users.patch("/{user_id}", response_model=UserOut)
async def update_user(
    user: TargetUser, body: UserUpdate, session: DbSession, principal: CurrentUser, now: Now
) -> UserOut:
    """Users may change their own name and time_zone; admins may change anything of anyone."""
    changes = body.model_dump(exclude_unset=True)
    refuse_fields_out_of_reach(principal, user.id, set(changes))
    await change_user(session, user, changes, now=now)
    await session.commit()
    return UserOut.model_validate(user)


@users.post("/{user_id}/api-keys", status_code=201, response_model=IssuedApiKey)
async def create_api_key(
    user: TargetUser, body: ApiKeyCreate, session: DbSession, principal: CurrentUser, now: Now
) -> IssuedApiKey:
    """A new key for the user (self or admin). The key is in this answer only."""
    require_self_or_admin(principal, user.id)
    refuse_wider_key(principal, body)
    if body.team_id is not None:
        await require_key_team(session, user_id=user.id, team_id=body.team_id)
    if body.expires_at is not None and body.expires_at <= now:
        raise InvalidInput("expires_at is in the past", field="expires_at")
    row, key = await issue_api_key(
        session,
        user_id=user.id,
        now=now,
        name=body.name,
        scope=body.scope,
        team_id=body.team_id,
        expires_at=body.expires_at,
    )
    await session.commit()
    return IssuedApiKey(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        created_at=row.created_at,
        scope=row.scope,
        team_id=row.team_id,
        expires_at=row.expires_at,
        key=key,
    )


@users.get("/{user_id}/api-keys", response_model=Page[ApiKeyOut])
async def list_api_keys(
    user: TargetUser,
    session: DbSession,
    principal: CurrentUser,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[ApiKeyOut]:
    """The user's keys, revoked ones included, without the keys themselves (self or admin)."""
    require_self_or_admin(principal, user.id)
    stmt = newest_first_page(
        select(ApiKey).where(ApiKey.user_id == user.id),
        created=ApiKey.created_at,
        row_id=ApiKey.id,
        limit=limit,
        cursor=cursor,
    )
    rows = list((await session.execute(stmt)).scalars())
    page, next_cursor = cut_page(rows, limit, lambda k: (k.created_at, k.id))
    return Page[ApiKeyOut](
        items=[ApiKeyOut.model_validate(k) for k in page], next_cursor=next_cursor
    )


@users.delete("/{user_id}/api-keys/{key_id}", status_code=204)
async def delete_api_key(
    user: TargetUser, key_id: uuid.UUID, session: DbSession, principal: CurrentUser, now: Now
) -> None:
    """Revoke the key (self or admin): it stops working at once and stays listed."""
    require_self_or_admin(principal, user.id)
    await revoke_api_key(session, user_id=user.id, key_id=key_id, now=now)
    await session.commit()


@auth.post(
    "/login",
    response_model=LoginOut,
    responses={429: {"description": "Too many failed attempts; retry after Retry-After s"}},
)
async def login(
    body: LoginIn, request: Request, session: DbSession, now: Now, state: State
) -> LoginOut:
    """Trade an email and password for a session key that expires (`expires_at`), usable as
    a Bearer credential like an API key. Needs no key; wrong credentials: 401; too many
    failed attempts for this email or from this address: 429 with Retry-After."""
    try:
        done = await log_in(
            session,
            email=body.email,
            password=body.password,
            address=client_address(request),
            now=now,
            limits=login_limits(state.settings),
        )
    finally:
        # A failure is counted even though the answer is an error.
        await session.commit()
    return LoginOut(
        api_key=done.key, expires_at=done.session.expires_at, user=UserOut.model_validate(done.user)
    )


@auth.post("/logout", status_code=204)
async def logout(session: DbSession, principal: CurrentUser, now: Now) -> None:
    """End the session whose key this request carries (an API key is left alone)."""
    if principal.session_id is not None:
        await revoke_session(session, principal.session_id, now=now)
        await session.commit()


@users.post("/me/password", status_code=204)
async def change_password(
    body: PasswordChange, session: DbSession, principal: CurrentUser, now: Now
) -> None:
    """Change your own password; the current one is required. Every other session of yours
    ends; the one making the change (if it is a session) stays signed in."""
    await change_own_password(
        session,
        principal,
        old_password=body.old_password,
        new_password=body.new_password,
        now=now,
    )
    await session.commit()


# The same sign-in and sign-out at the top of the API, where clients look for them first.
top = APIRouter(prefix="/api/v1", tags=["auth"])
top.add_api_route(
    "/login",
    login,
    methods=["POST"],
    response_model=LoginOut,
    responses={429: {"description": "Too many failed attempts; retry after Retry-After s"}},
)
top.add_api_route("/logout", logout, methods=["POST"], status_code=204)

router = APIRouter()
router.include_router(users)
router.include_router(auth)
router.include_router(top)
