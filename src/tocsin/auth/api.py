"""User, API key and login routes. The rules they apply live in auth/users.py (shared with
the web UI's profile and admin pages) and auth/login.py."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request

from tocsin.auth.login import change_own_password, log_in, login_limits
from tocsin.auth.models import User
from tocsin.auth.permissions import require_admin
from tocsin.auth.schemas import (
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
from tocsin.auth.sessions import revoke_session
from tocsin.auth.users import (
    add_user_from_body,
    change_user,
    find_user,
    make_api_key,
    refuse_fields_out_of_reach,
    require_self_or_admin,
    revoke_api_key,
)
from tocsin.auth.users import (
    list_api_keys as list_api_keys_page,
)
from tocsin.auth.users import (
    list_users as list_users_page,
)
from tocsin.web import CurrentUser, Cursor, DbSession, Limit, Now, Page, State, client_address

__all__ = ["require_self_or_admin", "router"]


# Routes


users = APIRouter(prefix="/api/v1/users", tags=["users"])
auth = APIRouter(prefix="/api/v1/auth", tags=["auth"])


async def get_user(user_id: uuid.UUID, session: DbSession, _principal: CurrentUser) -> User:
    return await find_user(session, user_id)


TargetUser = Annotated[User, Depends(get_user)]


@users.get("", response_model=Page[UserOut])
async def list_users(
    session: DbSession, _principal: CurrentUser, limit: Limit = 50, cursor: Cursor = None
) -> Page[UserOut]:
    """Every user, newest first; any signed-in user may list them, to pick assignees."""
    page, next_cursor = await list_users_page(session, limit=limit, cursor=cursor)
    return Page[UserOut].of(page, next_cursor)


@users.post("", status_code=201, response_model=UserOut)
async def create_user_route(
    body: UserCreate, session: DbSession, principal: CurrentUser, now: Now
) -> UserOut:
    """Admin only."""
    require_admin(principal)
    user = await add_user_from_body(session, body, now=now)
    await session.commit()
    return UserOut.model_validate(user)


@users.get("/me", response_model=UserOut)
async def get_me(session: DbSession, principal: CurrentUser) -> UserOut:
    # find_user: the user may have been deleted between the key check and now.
    return UserOut.model_validate(await find_user(session, principal.user_id))


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
    row, key = await make_api_key(session, principal, user_id=user.id, body=body, now=now)
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
    page, next_cursor = await list_api_keys_page(session, user.id, limit=limit, cursor=cursor)
    return Page[ApiKeyOut].of(page, next_cursor)


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
