"""Administration: the users (create, deactivate or reactivate, make or unmake
administrator). Administrators only: anyone else gets 403 on every page and form here, as
the API refuses them these changes. The same rules as /api/v1/users (auth/users.py): an
email in use is refused, the last active administrator stays one, and a deactivated user
is signed out everywhere at once."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Form, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.auth.permissions import require_admin
from tocsin.auth.schemas import UserCreate, UserUpdate
from tocsin.auth.users import add_user_from_body, change_user, find_user, list_users
from tocsin.errors import TocsinError
from tocsin.ui.forms import Refusal, checked, optional, refusal, render_form
from tocsin.ui.pages import SignedIn, Viewer, list_links, page_router
from tocsin.web import DbSession, Now

router = page_router()

PAGE_SIZE = 100
DONE = {
    "created": "User created.",
    "admin-on": "Now an administrator.",
    "admin-off": "No longer an administrator.",
    "deactivated": "User deactivated and signed out everywhere.",
    "activated": "User reactivated.",
}


async def _users_page(
    request: Request,
    viewer: Viewer,
    session: AsyncSession,
    *,
    cursor: str | None = None,
    done: str = "",
    refused: Refusal | None = None,
    form: dict[str, Any] | None = None,
) -> Response:
    users, next_cursor = await list_users(session, limit=PAGE_SIZE, cursor=cursor)
    return render_form(
        request,
        "admin/users.html",
        {
            "title": "Users",
            "users": users,
            **list_links("/admin/users?", cursor, next_cursor),
            "done": DONE.get(done, ""),
            "form": form or {"time_zone": "UTC"},
        },
        refused,
    )


@router.get("/admin/users")
async def user_list(
    request: Request,
    viewer: SignedIn,
    session: DbSession,
    cursor: Annotated[str | None, Query()] = None,
    done: Annotated[str, Query()] = "",
) -> Response:
    require_admin(viewer.principal)
    return await _users_page(request, viewer, session, cursor=cursor, done=done)


@router.post("/admin/users")
async def user_create(
    request: Request,
    viewer: SignedIn,
    session: DbSession,
    now: Now,
    email: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    time_zone: Annotated[str, Form()] = "UTC",
    is_admin: Annotated[str, Form()] = "",
) -> Response:
    """As POST /api/v1/users; without a password the user can only use API keys."""
    require_admin(viewer.principal)
    form = {"email": email, "name": name, "time_zone": time_zone, "is_admin": checked(is_admin)}
    try:
        body = UserCreate.model_validate(
            {
                "email": email,
                "name": name,
                "password": optional(password),
                "time_zone": time_zone.strip() or "UTC",
                "is_admin": checked(is_admin),
            }
        )
        await add_user_from_body(session, body, now=now)
    except (ValidationError, TocsinError) as exc:
        await session.rollback()
        return await _users_page(request, viewer, session, refused=refusal(exc), form=form)
    await session.commit()
    return RedirectResponse("/admin/users?done=created", status_code=303)


async def _change(
    request: Request,
    viewer: Viewer,
    session: AsyncSession,
    user_id: uuid.UUID,
    changes: dict[str, Any],
    *,
    now: Any,
    done: str,
) -> Response:
    require_admin(viewer.principal)
    try:
        body = UserUpdate.model_validate(changes)
        user = await find_user(session, user_id)
        await change_user(session, user, body.model_dump(exclude_unset=True), now=now)
    except (ValidationError, TocsinError) as exc:
        await session.rollback()
        return await _users_page(request, viewer, session, refused=refusal(exc))
    await session.commit()
    return RedirectResponse(f"/admin/users?done={done}#user-{user_id}", status_code=303)


@router.post("/admin/users/{user_id}/admin")
async def user_admin(
    request: Request,
    user_id: uuid.UUID,
    viewer: SignedIn,
    session: DbSession,
    now: Now,
    make_admin: Annotated[str, Form()] = "",
) -> Response:
    """Make or unmake an administrator (never the last active one)."""
    on = checked(make_admin)
    return await _change(
        request,
        viewer,
        session,
        user_id,
        {"is_admin": on},
        now=now,
        done="admin-on" if on else "admin-off",
    )


@router.post("/admin/users/{user_id}/active")
async def user_active(
    request: Request,
    user_id: uuid.UUID,
    viewer: SignedIn,
    session: DbSession,
    now: Now,
    active: Annotated[str, Form()] = "",
) -> Response:
    """Deactivate (signed out everywhere, keys stop working) or reactivate a user."""
    on = checked(active)
    return await _change(
        request,
        viewer,
        session,
        user_id,
        {"is_active": on},
        now=now,
        done="activated" if on else "deactivated",
    )
